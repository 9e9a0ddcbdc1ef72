"""The studio on the real stack: embedded Redis, a real Celery worker, the default image model.

Jobs are tiny (32x32, a few steps) so the whole file runs in seconds of CPU.
"""
from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.core.files.storage import default_storage
from PIL import Image

from generation.image import read_png_metadata
from tests.factories import membership_of
from tests.helpers import tiny_request
from webapp.studio import lineage, services
from webapp.studio.events import studio_group_name
from webapp.studio.models import Job, JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT = 180  # the worker may still be loading the model for the first job


class GroupListener:
    """Receives a studio group's events, as the consumer would, on an event loop in its own thread.

    Its own thread because Playwright's sync API keeps a loop running in the
    main thread once a browser test has run in this session.
    """

    def __init__(self, group: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="group-listener", daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()
        self.group = group
        self.channel = self._run(self.layer.new_channel())
        self._run(self.layer.group_add(group, self.channel))
        self.events: list[dict[str, Any]] = []

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event; got {[e.get('type') for e in self.events][-10:]}")
            message = self._run(asyncio.wait_for(self.layer.receive(self.channel), remaining))
            self.events.append(message)
            if predicate(message):
                return message

    def job_ended(self, job_id: int) -> Callable[[dict[str, Any]], bool]:
        return lambda m: m["type"] == "studio.job" and m["job_id"] == job_id and m["status"] not in ("queued", "running")

    def steps(self, job_id: int) -> list[int]:
        return [m["step"] for m in self.events if m["type"] == "studio.progress" and m["job_id"] == job_id]

    def close(self) -> None:
        self._run(self.layer.group_discard(self.group, self.channel))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        # Not closed: channels_redis would run the loop once more from this thread to flush.


@pytest.fixture
def listen(project, bob, celery_worker):
    listener = GroupListener(studio_group_name(project_id=project.pk, user_id=bob.pk))
    yield listener
    listener.close()


def _pixels(asset) -> bytes:
    with default_storage.open(asset.file.name, "rb") as fh:
        return Image.open(io.BytesIO(fh.read())).convert("RGB").tobytes()


def test_a_job_makes_assets_with_metadata_and_lineage_and_its_progress_arrives_in_step_order(project, bob, listen):
    job = services.job_create(project=project, actor=membership_of(bob), request=tiny_request(steps=8, num_images=2, seed=11))
    ended = listen.until(listen.job_ended(job.pk))
    assert ended["status"] == JobStatus.DONE
    steps = listen.steps(job.pk)
    assert steps == sorted(set(steps)) and steps[0] == 1 and steps[-1] == 8
    assert any(m.get("preview", "").startswith("data:image/png;base64,") for m in listen.events)
    statuses = [m["status"] for m in listen.events if m["type"] == "studio.job"]
    assert statuses == ["running", "done"]

    job.refresh_from_db()
    assets = list(job.assets.order_by("batch_index"))
    assert [a.batch_index for a in assets] == [0, 1]
    for asset in assets:
        assert (asset.seed, asset.steps, asset.width, asset.height) == (11, 8, 32, 32)
        assert asset.model_name == "atelier-shapes" and len(asset.model_revision) >= 8
        assert asset.worker_host == socket.gethostname()
        assert asset.code_version == lineage.code_version()
        with default_storage.open(asset.file.name, "rb") as fh:
            params = read_png_metadata(fh)["params"]
        assert params["seed"] == 11 and params["job_id"] == job.pk and params["batch_index"] == asset.batch_index
        assert params["model_revision"] == asset.model_revision
        assert params["scheduler"] == asset.scheduler and params["guidance_scale"] == asset.guidance_scale
    assert job.worker_host == socket.gethostname() and job.seconds_per_step > 0


def test_rerunning_an_asset_with_its_seed_gives_identical_pixels(project, bob, listen):
    job = services.job_create(project=project, actor=membership_of(bob), request=tiny_request(steps=6, seed=None))
    assert listen.until(listen.job_ended(job.pk))["status"] == JobStatus.DONE
    original = job.assets.get()
    rerun = services.job_rerun(asset=original, actor=membership_of(bob))
    varied = services.job_rerun(asset=original, actor=membership_of(bob), vary=True)
    assert listen.until(listen.job_ended(rerun.pk))["status"] == JobStatus.DONE
    assert listen.until(listen.job_ended(varied.pk))["status"] == JobStatus.DONE
    assert _pixels(rerun.assets.get()) == _pixels(original)
    assert varied.assets.get().seed != original.seed
    assert _pixels(varied.assets.get()) != _pixels(original)


def test_cancel_stops_a_running_job_within_a_step(project, bob, listen):
    job = services.job_create(project=project, actor=membership_of(bob), request=tiny_request(steps=150))
    listen.until(lambda m: m["type"] == "studio.progress" and m["job_id"] == job.pk and m["step"] >= 3)
    job.refresh_from_db()
    services.job_cancel(job=job, actor=membership_of(bob))
    seen_at_cancel = listen.steps(job.pk)[-1]
    ended = listen.until(listen.job_ended(job.pk))
    assert ended["status"] == JobStatus.STOPPED
    # The engine reads the flag after every step; the few steps past the one
    # seen here were already done (their events in flight) when the flag was set.
    job.refresh_from_db()
    assert listen.steps(job.pk)[-1] - seen_at_cancel <= 5, (seen_at_cancel, listen.steps(job.pk)[-1])
    assert job.reason == "Cancelled by bob."
    assert not job.assets.exists()
    assert job.params["steps"] == 150


def _pool_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_a_job_whose_worker_process_dies_ends_failed_not_running(project, bob, listen, celery_worker):
    job = services.job_create(project=project, actor=membership_of(bob), request=tiny_request(steps=150))
    listen.until(lambda m: m["type"] == "studio.progress" and m["job_id"] == job.pk and m["step"] >= 2)
    for child in _pool_children(celery_worker.pid):
        os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=job.pk).status == JobStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "worker process was lost" in job.reason
    assert not job.assets.exists()
    # The worker replaces its process and takes the next job.
    after = services.job_create(project=project, actor=membership_of(bob), request=tiny_request(steps=2))
    assert listen.until(listen.job_ended(after.pk), timeout=60)["status"] == JobStatus.DONE
