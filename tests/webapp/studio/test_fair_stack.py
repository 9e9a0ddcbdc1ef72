"""Fair order with a real Celery worker, the embedded Redis and the default image model:
four people queue three jobs each, one person after the other, and the worker interleaves them."""
from __future__ import annotations

import time

import pytest
from django.db import transaction

from tests.factories import MembershipFactory, UserFactory, membership_of
from tests.helpers import tiny_request
from webapp.studio import services
from webapp.studio.models import Job, JobStatus

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

PEOPLE, JOBS_EACH = 4, 3
TIMEOUT = 300  # the worker may still be loading the model for the first job


def test_a_real_worker_starts_every_persons_first_job_before_anyones_second(project, team, celery_worker):
    people = [UserFactory(username=f"fair{n}") for n in range(PEOPLE)]
    for user in people:
        MembershipFactory(team=team, user=user)
    with transaction.atomic():  # every ticket leaves at the commit: first come would run fair0's three first
        for user in people:
            for _ in range(JOBS_EACH):
                services.job_create(project=project, actor=membership_of(user), request=tiny_request(steps=2))
    deadline = time.monotonic() + TIMEOUT
    while Job.objects.exclude(status__in=[JobStatus.DONE, JobStatus.FAILED, JobStatus.STOPPED]).exists():
        assert time.monotonic() < deadline, "the worker did not finish the jobs"
        time.sleep(0.2)
    started = list(Job.objects.order_by("started_at", "pk").values_list("author_id", "status", "task_id"))
    assert {status for _, status, _ in started} == {JobStatus.DONE}
    authors = [author for author, _, _ in started]
    first_rank = {user.pk: authors.index(user.pk) + 1 for user in people}
    assert max(first_rank.values()) == PEOPLE  # every first job among the first four to start
    assert authors == [user.pk for user in people] * JOBS_EACH  # round by round, each round oldest first
    assert len({task_id for _, _, task_id in started}) == PEOPLE * JOBS_EACH  # one ticket ran each job
