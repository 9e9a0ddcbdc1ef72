from __future__ import annotations

from types import SimpleNamespace

import pytest

from webapp.core import jobs
from webapp.studio import services, tasks
from webapp.studio.models import Job, JobStatus

pytestmark = pytest.mark.django_db


def test_run_image_job_marks_the_job_failed_with_the_engines_error(project, bob, make_job, monkeypatch):
    job = make_job(project=project, author=bob)

    def broken(*, job):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(services, "job_run", broken)
    tasks.run_image_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "error id" in job.reason and "CUDA" not in job.reason


def test_a_lost_worker_process_fails_the_job_its_ticket_picked(project, bob, make_job):
    bought, picked_later = make_job(project=project, author=bob), make_job(project=project, author=bob)
    picked = services.job_pick(worker="image@a", task_id=picked_later.task_id)  # tickets are interchangeable
    assert picked is not None and picked.pk == bought.pk
    jobs.fail_job_of_a_lost_task(
        sender=tasks.run_image_job, args=[picked_later.pk], task_id=picked_later.task_id, exception=RuntimeError("signal 9")
    )
    bought.refresh_from_db()
    picked_later.refresh_from_db()
    assert bought.status == JobStatus.FAILED and "worker process was lost" in bought.reason
    assert picked_later.status == JobStatus.QUEUED  # its own ticket is still to come


def test_run_image_job_runs_the_next_fair_job_and_a_redelivered_ticket_runs_nothing(project, bob, make_job, monkeypatch):
    first, second = make_job(project=project, author=bob), make_job(project=project, author=bob)
    ran: list[int] = []
    monkeypatch.setattr(services, "job_run", lambda *, job: ran.append(job.pk))
    tasks.run_image_job.apply(args=[second.pk], task_id=second.task_id)
    tasks.run_image_job.apply(args=[second.pk], task_id=second.task_id)  # delivered twice
    assert ran == [first.pk]
    assert Job.objects.get(pk=second.pk).status == JobStatus.QUEUED


def test_a_starting_worker_fails_the_jobs_it_had_claimed_before(project, bob, make_job):
    job = make_job(project=project, author=bob)
    services.job_start(job_id=job.pk, worker="image@a")
    jobs.sweep_on_worker_start(sender=SimpleNamespace(hostname="image@a"))
    assert Job.objects.get(pk=job.pk).status == JobStatus.FAILED
