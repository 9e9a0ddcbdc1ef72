"""Fair order of image jobs (``core.jobs.job_fair_order``, ``job_pick``) and the lifecycle's quota check."""
from __future__ import annotations

import pytest

from tests.factories import MembershipFactory, UserFactory, membership_of
from tests.helpers import tiny_request
from webapp.core import jobs
from webapp.core.jobs import JobStatus, QuotaExceeded
from webapp.studio import services
from webapp.studio.models import Job

pytestmark = pytest.mark.django_db


def _people(team, count):
    users = [UserFactory(username=f"person{n}") for n in range(count)]
    for user in users:
        MembershipFactory(team=team, user=user)
    return users


def _queue(project, user, count):
    return [
        services.job_create(project=project, actor=membership_of(user), request=tiny_request()).pk
        for _ in range(count)
    ]


def test_five_people_with_ten_jobs_each_are_served_round_by_round(project, team, no_enqueue):
    people = _people(team, 5)
    for user in people:  # each queues all ten at once, one after the other: first come would be person0 x10
        _queue(project, user, 10)
    order = list(jobs.job_fair_order(kind=services.IMAGE_JOB).values_list("author_id", "fair_round"))
    assert [author for author, _ in order[:5]] == [user.pk for user in people]
    assert [round_ for _, round_ in order] == [r for r in range(1, 11) for _ in range(5)]


def test_a_running_job_counts_against_its_authors_round(project, alice, bob, no_enqueue):
    alice_jobs = _queue(project, alice, 2)
    bob_job = _queue(project, bob, 1)[0]
    services.job_start(job_id=alice_jobs[0], worker="w1")
    assert list(jobs.job_fair_order(kind=services.IMAGE_JOB).values_list("pk", flat=True)) == [bob_job, alice_jobs[1]]


def test_a_single_worker_that_finishes_each_job_first_still_serves_round_by_round(project, alice, bob, no_enqueue):
    alice_jobs = _queue(project, alice, 2)
    bob_jobs = _queue(project, bob, 2)
    served = []
    while (job := services.job_pick(worker="w1", task_id=f"ticket-{len(served)}")) is not None:
        served.append(job.pk)
        jobs.job_finish(kind=services.IMAGE_JOB, job_id=job.pk, status=JobStatus.DONE)
    assert served == [alice_jobs[0], bob_jobs[0], alice_jobs[1], bob_jobs[1]]


def test_job_pick_claims_in_fair_order_and_records_the_ticket(project, alice, bob, no_enqueue):
    alice_jobs = _queue(project, alice, 3)
    bob_job = _queue(project, bob, 1)[0]
    picked = [services.job_pick(worker="w1", task_id=f"ticket-{n}") for n in range(5)]
    assert [job.pk if job else None for job in picked] == [alice_jobs[0], bob_job, alice_jobs[1], alice_jobs[2], None]
    first = Job.objects.get(pk=alice_jobs[0])
    assert (first.status, first.task_id, first.worker) == (JobStatus.RUNNING, "ticket-0", "w1")


def test_job_pick_skips_a_job_stopped_in_the_queue_and_never_claims_twice(project, alice, no_enqueue):
    first, second = _queue(project, alice, 2)
    services.job_cancel(job=Job.objects.get(pk=first), actor=membership_of(alice))
    assert services.job_pick(worker="w1", task_id="t1").pk == second
    assert services.job_pick(worker="w2", task_id="t2") is None
    assert not jobs.job_claim(kind=services.IMAGE_JOB, job_id=second, worker="w2")


def test_job_fair_positions_number_every_queued_job(project, alice, bob, no_enqueue):
    a1, a2 = _queue(project, alice, 2)
    (b1,) = _queue(project, bob, 1)
    assert jobs.job_fair_positions(kind=services.IMAGE_JOB) == {a1: 1, b1: 2, a2: 3}


def test_job_quota_check_counts_live_jobs_only(project, alice, no_enqueue):
    first, _ = _queue(project, alice, 2)
    with pytest.raises(QuotaExceeded, match="limit is 2"):
        jobs.job_quota_check(kind=services.IMAGE_JOB, limit=2, what="image jobs", author=alice)
    services.job_cancel(job=Job.objects.get(pk=first), actor=membership_of(alice))
    jobs.job_quota_check(kind=services.IMAGE_JOB, limit=2, what="image jobs", author=alice)
