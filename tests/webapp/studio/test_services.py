from __future__ import annotations

import errno
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.utils import timezone

from generation.errors import ValidationError
from generation.image import read_png_metadata
from tests.factories import membership_of
from tests.helpers import fake_result, tiny_request
from webapp.core import jobs
from webapp.prompts.models import PromptRecord
from webapp.studio import services
from webapp.studio.models import Asset, Job, JobOrigin, JobStatus

pytestmark = pytest.mark.django_db


def test_job_create_records_the_job_and_its_prompt_and_enqueues_after_commit(
    project, bob, no_enqueue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = services.job_create(project=project, actor=membership_of(bob), request=tiny_request(prompt="a blue square"))
    assert job.status == JobStatus.QUEUED
    assert job.params["prompt"] == "a blue square"
    record = PromptRecord.objects.get(pk=job.prompt_record_id)
    assert (record.kind, record.text, record.project_id, record.author_id) == ("image", "a blue square", project.pk, bob.pk)
    assert record.params == job.params
    assert len(callbacks) == 1
    assert [(task.name, task.args, task.queue, task.task_id) for task in no_enqueue] == [
        ("studio.run_image_job", [job.pk], "image", job.task_id)
    ]


def test_job_create_does_not_enqueue_before_commit(project, bob, no_enqueue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        services.job_create(project=project, actor=membership_of(bob), request=tiny_request())
    assert no_enqueue == []


def test_job_create_draws_and_records_a_seed_when_none_is_given(project, bob, no_enqueue):
    job = services.job_create(project=project, actor=membership_of(bob), request=tiny_request(seed=None))
    assert isinstance(job.params["seed"], int)
    assert PromptRecord.objects.get(pk=job.prompt_record_id).params["seed"] == job.params["seed"]


def test_job_create_rejects_a_bad_value_by_field_and_writes_nothing(project, bob, no_enqueue):
    with pytest.raises(ValidationError) as caught:
        services.job_create(project=project, actor=membership_of(bob), request=tiny_request(steps=100_000))
    assert caught.value.field == "steps"
    assert not Job.objects.exists()
    assert not PromptRecord.objects.exists()


def test_job_create_rejects_a_viewer(project, carol, no_enqueue):
    with pytest.raises(PermissionDenied):
        services.job_create(project=project, actor=membership_of(carol), request=tiny_request())
    assert not Job.objects.exists()


def test_job_create_rejects_an_outsider(project, mallory, other_team, no_enqueue):
    with pytest.raises(PermissionDenied):
        services.job_create(project=project, actor=membership_of(mallory), request=tiny_request())


def test_job_create_fails_the_job_when_the_queue_is_unreachable(
    project, bob, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    from webapp.core import jobs

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(jobs, "task_send", broken)
    monkeypatch.setattr(jobs, "job_publish", lambda **kwargs: None)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(project=project, actor=membership_of(bob), request=tiny_request())
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    # The user reads a generic reason with an error id; the detail is in the log under that id.
    assert "Could not reach the job queue" in job.reason and "broker down" not in job.reason
    error_id = job.reason.split("error id ")[1].rstrip(").")
    assert any(error_id in record.getMessage() and "broker down" in (record.exc_text or str(record.exc_info))
               for record in caplog.records)


def test_job_cancel_cancels_a_queued_job_at_once(project, bob, make_job):
    job = make_job(project=project, author=bob)
    job = services.job_cancel(job=job, actor=membership_of(bob))
    assert job.status == JobStatus.STOPPED
    assert job.reason == "Cancelled by bob."
    assert services.job_start(job_id=job.pk, worker="w1") is None  # the worker skips it


def test_job_cancel_refuses_somebody_elses_job(project, alice, bob, make_job):
    job = make_job(project=project, author=bob)
    with pytest.raises(PermissionDenied):
        services.job_cancel(job=job, actor=membership_of(alice))
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


@pytest.mark.stack
def test_job_cancel_flags_a_running_job_for_its_worker(project, bob, make_job, redis_server):
    from webapp.core.redis import get_redis

    job = make_job(project=project, author=bob)
    services.job_start(job_id=job.pk, worker="w1")
    key = jobs.stop_flag_key(kind=services.IMAGE_JOB, job=job)
    assert not get_redis().exists(key)
    job = services.job_cancel(job=job, actor=membership_of(bob))
    assert job.status == JobStatus.RUNNING  # the worker ends it, within a step
    assert get_redis().get(key) == b"Cancelled by bob."
    assert jobs.job_finish(kind=services.IMAGE_JOB, job_id=job.pk, status=JobStatus.STOPPED, reason="Cancelled by bob.")
    job.refresh_from_db()
    assert job.status == JobStatus.STOPPED


def test_job_start_claims_a_queued_job_with_worker_lineage(project, bob, make_job):
    job = make_job(project=project, author=bob)
    started = services.job_start(job_id=job.pk, worker="image@box")
    assert started.status == JobStatus.RUNNING
    assert started.worker == "image@box"
    assert started.worker_host and started.code_version
    assert services.job_start(job_id=job.pk, worker="image@box") is None  # a redelivery does not run it twice


def test_job_complete_stores_one_asset_per_image_with_lineage_and_png_metadata(project, bob, make_job):
    job = make_job(project=project, author=bob, num_images=2)
    job = services.job_start(job_id=job.pk, worker="w1")
    job = services.job_complete(job=job, result=fake_result(job, colours=("red", "blue")))
    assert job.status == JobStatus.DONE
    assets = list(job.assets.order_by("batch_index"))
    assert [a.batch_index for a in assets] == [0, 1]
    first = assets[0]
    assert (first.model_name, first.model_revision, first.seed, first.steps) == ("atelier-shapes", "abc123", 7, 4)
    assert (first.width, first.height, first.scheduler) == (32, 32, job.params["scheduler"])
    assert first.worker_host == job.worker_host and first.code_version == job.code_version
    assert first.file.name.startswith(f"studio/{project.pk}/") and first.file.name.endswith(".png")
    assert "circle" not in first.file.name  # names are the server's, never the prompt's
    with default_storage.open(first.file.name, "rb") as fh:
        metadata = read_png_metadata(fh)
    assert metadata["params"]["seed"] == 7
    assert metadata["params"]["job_id"] == job.pk
    assert metadata["params"]["model_revision"] == "abc123"
    assert "Seed: 7" in metadata["parameters"]
    assert default_storage.exists(first.thumbnail.name)


def test_job_complete_leaves_no_asset_rows_or_files_when_saving_fails(project, bob, make_job, monkeypatch):
    job = make_job(project=project, author=bob, num_images=2)
    job = services.job_start(job_id=job.pk, worker="w1")
    saved: list[str] = []
    real_save = default_storage.save
    monkeypatch.setattr(default_storage, "save", lambda name, content: saved.append(real_save(name, content)) or saved[-1])
    calls = {"n": 0}
    real_asset_save = Asset.save

    def failing_save(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real_asset_save(self, *args, **kwargs)

    monkeypatch.setattr(Asset, "save", failing_save)
    with pytest.raises(RuntimeError):
        services.job_complete(job=job, result=fake_result(job, colours=("red", "blue")))
    assert not Asset.objects.exists()
    assert len(saved) == 4
    assert not any(default_storage.exists(name) for name in saved)


def test_job_complete_removes_a_file_a_full_disk_left_half_written(project, bob, make_job, monkeypatch):
    """The fast twin of tests/reliability/test_disk_full.py (which fills a real tmpfs)."""
    job = make_job(project=project, author=bob, num_images=2)
    job = services.job_start(job_id=job.pk, worker="w1")
    written: list[str] = []
    real_save = default_storage._save

    def save(name, content):
        if len(written) == 2:  # the second original: half of it reaches the disk, then the disk is full
            path = Path(default_storage.path(name))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.read()[: content.size // 2])
            written.append(name)
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(real_save(name, content))
        return written[-1]

    monkeypatch.setattr(default_storage, "_save", save)
    with pytest.raises(OSError):
        services.job_complete(job=job, result=fake_result(job, colours=("red", "blue")))
    assert not Asset.objects.exists()
    assert len(written) == 3
    assert not any(default_storage.exists(name) for name in written)


def test_job_fail_keeps_the_parameters_and_the_reason(project, bob, make_job):
    job = make_job(project=project, author=bob)
    services.job_start(job_id=job.pk, worker="w1")
    assert services.job_fail(job_id=job.pk, reason="CUDA out of memory")
    job.refresh_from_db()
    assert (job.status, job.reason) == (JobStatus.FAILED, "CUDA out of memory")
    assert job.params["seed"] == 7
    assert not services.job_fail(job_id=job.pk, reason="again")  # an ended job stays as it ended


def test_job_sweep_stale_fails_a_running_job_whose_heartbeat_stopped(project, bob, make_job, settings):
    settings.JOB_STALE_SECONDS = 60
    stale = make_job(project=project, author=bob)
    fresh = make_job(project=project, author=bob)
    for job in (stale, fresh):
        services.job_start(job_id=job.pk, worker="w1")
    Job.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
    assert jobs.jobs_sweep_stale() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    assert "stopped responding" in stale.reason
    assert fresh.status == JobStatus.RUNNING


def test_job_sweep_stale_at_worker_start_fails_the_jobs_that_worker_had_claimed(project, bob, make_job):
    mine = make_job(project=project, author=bob)
    theirs = make_job(project=project, author=bob)
    services.job_start(job_id=mine.pk, worker="image@a")
    services.job_start(job_id=theirs.pk, worker="image@b")
    assert jobs.jobs_sweep_stale(worker="image@a") == 1
    assert Job.objects.get(pk=mine.pk).status == JobStatus.FAILED
    assert Job.objects.get(pk=theirs.pk).status == JobStatus.RUNNING


def test_job_rerun_keeps_the_seed_and_vary_draws_a_new_one(project, bob, make_job):
    job = make_job(project=project, author=bob)
    job = services.job_start(job_id=job.pk, worker="w1")
    asset = services.job_complete(job=job, result=fake_result(job)).assets.get()
    rerun = services.job_rerun(asset=asset, actor=membership_of(bob))
    assert rerun.params == job.params
    assert (rerun.origin, rerun.source_asset_id) == (JobOrigin.RERUN, asset.pk)
    varied = services.job_rerun(asset=asset, actor=membership_of(bob), vary=True)
    assert varied.origin == JobOrigin.VARY
    assert {k: v for k, v in varied.params.items() if k != "seed"} == {
        k: v for k, v in job.params.items() if k != "seed"
    }
    assert varied.params["seed"] != job.params["seed"]


def test_run_again_draws_an_old_asset_with_the_weights_it_was_drawn_with(project, bob, make_job, tmp_path,
                                                                        monkeypatch):
    """After the default model's weights change, "Run again" on an asset of the old weights runs the entry
    that keeps them (atelier-shapes-v1 for the first default model)."""
    from generation.image.engine import _weights_revision
    from generation.image.train import build_pipeline

    build_pipeline(seed=1).save_pretrained(tmp_path / "new")
    build_pipeline(seed=2).save_pretrained(tmp_path / "old")
    sizes = {"kind": "atelier-shapes", "default_width": 32, "default_height": 32, "min_size": 32}
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", json.dumps([
        {"name": "shapes", "source": str(tmp_path / "new"), **sizes},
        {"name": "shapes-old", "source": str(tmp_path / "old"), **sizes},
    ]))
    job = services.job_start(job_id=make_job(project=project, author=bob, model="shapes").pk, worker="w1")
    asset = services.job_complete(job=job, result=fake_result(job)).assets.get()
    asset.model_revision = _weights_revision(str(tmp_path / "old"))
    asset.save(update_fields=["model_revision"])

    rerun = services.job_rerun(asset=asset, actor=membership_of(bob))

    assert (rerun.model_name, rerun.params["model"]) == ("shapes-old", "shapes-old")
    assert {k: v for k, v in rerun.params.items() if k != "model"} == {
        k: v for k, v in job.params.items() if k != "model"}
    asset.model_revision = _weights_revision(str(tmp_path / "new"))
    asset.save(update_fields=["model_revision"])
    assert services.job_rerun(asset=asset, actor=membership_of(bob)).model_name == "shapes"


def test_job_params_are_json_as_stored(project, bob, make_job):
    job = make_job(project=project, author=bob)
    assert json.loads(json.dumps(Job.objects.get(pk=job.pk).params)) == job.params


def test_job_progress_sends_a_few_updates_and_fewer_previews_per_second(project, bob, make_job, monkeypatch, settings):
    from PIL import Image

    settings.STUDIO_PROGRESS_PER_SECOND = 8
    settings.STUDIO_PREVIEWS_PER_SECOND = 4
    sent: list[tuple[str, dict]] = []
    clock = {"now": 100.0}
    monkeypatch.setattr(services.runner, "get_publisher", lambda: type("P", (), {"publish": lambda self, g, m: sent.append((g, m))})())
    monkeypatch.setattr(services.runner.time, "monotonic", lambda: clock["now"])
    job = make_job(project=project, author=bob, steps=20)
    progress = services.JobProgress(job=job)
    preview = Image.new("RGB", (32, 32), "red")
    for step in range(1, 21):
        clock["now"] += 0.0625  # 16 steps per second
        progress(step, 20, preview)
    assert [m["step"] for _, m in sent] == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 20]  # every 1/8 s, and the last
    with_preview = [m["step"] for _, m in sent if "preview" in m]
    assert with_preview == [1, 5, 9, 13, 17, 20]  # every 0.25 s, and the last step
    assert {group for group, _ in sent} == {f"studio_p{project.pk}_u{bob.pk}"}
    assert sent[5][1]["eta"] == pytest.approx(0.6)  # at step 11, 9 steps left at 1/16 s


@pytest.mark.stack
def test_the_stop_watch_sees_a_cancel_sent_before_or_while_the_job_runs(project, bob, make_job, redis_server):
    first, second = make_job(project=project, author=bob), make_job(project=project, author=bob)
    for job in (first, second):
        services.job_start(job_id=job.pk, worker="w1")
    services.job_cancel(job=first, actor=membership_of(bob))
    with jobs.job_running(kind=services.IMAGE_JOB, job=first) as run:
        assert run.should_stop() and run.stop_reason == "Cancelled by bob."
    with jobs.job_running(kind=services.IMAGE_JOB, job=second) as run:
        assert not run.should_stop()
        services.job_cancel(job=second, actor=membership_of(bob))
        deadline = time.monotonic() + 5
        while not run.should_stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run.stopped and run.stop_reason == "Cancelled by bob."
