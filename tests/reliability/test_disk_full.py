"""Disk full while storing an image: the job fails clearly, and no half-written asset is left.

A worker of its own keeps its media on a tiny tmpfs (a real filesystem that runs out of
space: the write fails with ENOSPC half-way through the PNG), and takes its job from a
queue of its own, so the suite's worker and media are never touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import membership_of
from tests.helpers import tiny_request, wait_for, worker_running
from webapp.core.jobs import END_STATUSES, JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.model, pytest.mark.django_db(transaction=True)]
QUEUE = f"diskfull-{os.getpid()}"
FREE = 4096  # bytes left on the filesystem: less than one 64x64 PNG, so its write fails half-way
FILLER = "filler.bin"


def _fill(media: Path) -> None:
    """Write a filler file until the filesystem is full, then free ``FREE`` bytes of it."""
    path = media / FILLER
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    os.truncate(path, path.stat().st_size - FREE)
    assert 0 < shutil.disk_usage(media).free <= 2 * FREE


@pytest.fixture
def full_media(tmp_path: Path) -> Iterator[Path]:
    if settings.STORAGE_BACKEND != "local":
        pytest.skip("a full local disk is a fault of local storage (this run stores media in S3)")
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    var_dir = tmp_path / "var"
    media = var_dir / "media"
    media.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(media)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode:  # root without CAP_SYS_ADMIN (an unprivileged container)
        pytest.skip(f"could not mount a tmpfs: {mounted.stderr.strip()}")
    try:
        _fill(media)
        yield media
    finally:
        subprocess.run(["umount", "-l", str(media)], check=False)


@pytest.fixture
def full_worker(full_media: Path, redis_server) -> Iterator[subprocess.Popen]:
    env = {"ATELIER_VAR_DIR": str(full_media.parent), "ATELIER_PRELOAD_TEXT_MODEL": "0"}
    with worker_running("all", "-Q", QUEUE, "-n", f"{QUEUE}@test", log="diskfull-worker.log", env=env) as worker:
        yield worker


def test_a_full_disk_fails_the_image_job_clearly_and_leaves_no_asset(project, bob, full_media, full_worker,
                                                                     no_enqueue):
    from webapp.studio import services
    from webapp.studio.models import Asset, Job

    job = services.job_create(project=project, actor=membership_of(bob),
                              request=tiny_request(steps=2, width=64, height=64))
    no_enqueue.send(queue=QUEUE)
    ended = wait_for(lambda: (row := Job.objects.get(pk=job.pk)).status in END_STATUSES and row, 300,
                     "the job to end")
    assert ended.status == JobStatus.FAILED
    assert not Asset.objects.filter(job=job).exists()
    left = sorted(str(path.relative_to(full_media)) for path in full_media.rglob("*") if path.is_file())
    assert left == [FILLER], f"files left in storage: {left}"
    assert "no space left" in ended.reason.lower()
