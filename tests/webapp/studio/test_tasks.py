from __future__ import annotations

from types import SimpleNamespace

import pytest

from webapp.core import jobs
from webapp.studio import services, tasks
from webapp.studio.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def test_run_image_job_marks_the_job_failed_with_the_engines_error(project, bob, make_job, monkeypatch):
    job = make_job(project=project, author=bob)

    def broken(*, job_id, worker):
        services.job_start(job_id=job_id, worker=worker)
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(services, "job_run", broken)
    tasks.run_image_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "error id" in job.reason and "CUDA" not in job.reason


def test_a_lost_worker_process_fails_its_job(project, bob, make_job):
    job = make_job(project=project, author=bob)
    services.job_start(job_id=job.pk, worker="image@a")
    jobs.fail_job_of_a_lost_task(sender=tasks.run_image_job, args=[job.pk], exception=RuntimeError("signal 9"))
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "worker process was lost" in job.reason


def test_a_starting_worker_fails_the_jobs_it_had_claimed_before(project, bob, make_job):
    job = make_job(project=project, author=bob)
    services.job_start(job_id=job.pk, worker="image@a")
    jobs.sweep_on_worker_start(sender=SimpleNamespace(hostname="image@a"))
    assert Job.objects.get(pk=job.pk).status == JobStatus.FAILED
