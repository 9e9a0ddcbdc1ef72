"""Two workers race for one queue on PostgreSQL: every job runs exactly once.

Each of 40 image jobs is delivered twice (as a broker redelivers after a
lost connection), so the two workers really do try to claim the same rows
at the same moment. A claim is one conditional UPDATE (``... WHERE id = %s
AND status = 'queued'``): under READ COMMITTED the second updater waits for
the first one's row lock, re-reads the row, and updates nothing. A claim that
read first and wrote later would let both run the job, and the job would
end with two sets of assets.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from contextlib import ExitStack

import pytest
from django.conf import settings

from tests.factories import membership_of
from tests.helpers import tiny_request, wait_for, worker_running
from webapp.core.workers import workers_seen
from webapp.studio import services
from webapp.studio.models import Asset, Job

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("ATELIER_TEST_SCALE"), reason="make test-scale: PostgreSQL"),
]

QUEUE = "race-image"  # a queue of its own: the suite's shared worker must not join the race
JOBS = 40


@pytest.fixture
def two_workers(redis_server, django_db_setup, tmp_path):
    with ExitStack() as stack:
        processes = [stack.enter_context(worker_running("image", "-Q", QUEUE, "-n", f"{name}@%h",
                                                        log=tmp_path / f"{name}.log"))
                     for name in ("race-a", "race-b")]
        wait_for(lambda: {w.name.split("@")[0] for w in workers_seen() if w.alive and QUEUE in w.queues}
                 >= {"race-a", "race-b"}, timeout=300, what="both race workers")
        yield processes


def test_two_workers_on_one_queue_run_each_of_40_jobs_exactly_once(two_workers, project, bob, no_enqueue, monkeypatch):
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    monkeypatch.setattr(settings, "MAX_QUEUED_IMAGE_JOBS", JOBS)  # one author queues all 40
    membership = membership_of(bob)
    jobs = [services.job_create(project=project, actor=membership, request=tiny_request(steps=1, seed=n))
            for n in range(JOBS)]
    assert len(no_enqueue) == JOBS
    no_enqueue.extend(list(no_enqueue))  # every job twice, interleaved: 1..40, 1..40
    no_enqueue.send(queue=QUEUE)

    ids = [job.pk for job in jobs]
    wait_for(lambda: not Job.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists(),
             timeout=900, what=f"{JOBS} jobs to end", interval=1)
    time.sleep(2)  # let the last duplicate deliveries arrive and be turned away

    statuses = Counter(Job.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert set(statuses) == {"done"}, statuses
    assets_per_job = Counter(Asset.objects.filter(job_id__in=ids).values_list("job_id", flat=True))
    assert assets_per_job == dict.fromkeys(ids, 1)  # exactly once: one image each, none twice
    by_worker = Counter(name.split("@")[0] for name in Job.objects.filter(pk__in=ids).values_list("worker", flat=True))
    assert set(by_worker) == {"race-a", "race-b"}, by_worker  # both really took part
