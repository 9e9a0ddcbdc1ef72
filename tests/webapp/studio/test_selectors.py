from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from tests.helpers import fake_result
from webapp.studio import selectors, services
from webapp.studio.models import Asset

pytestmark = pytest.mark.django_db


def _finished(job):
    job = services.job_start(job_id=job.pk, worker="w1")
    return services.job_complete(job=job, result=fake_result(job))


def test_job_get_for_member_hides_jobs_from_an_outsider(project, bob, mallory, make_job):
    job = make_job(project=project, author=bob)
    assert selectors.job_get_for_member(user=bob, project_id=project.pk, job_id=job.pk) == job
    with pytest.raises(Http404):
        selectors.job_get_for_member(user=mallory, project_id=project.pk, job_id=job.pk)


def test_job_get_for_member_does_not_find_a_job_through_another_project(project, other_project, bob, mallory, make_job):
    job = make_job(project=other_project, author=mallory)
    with pytest.raises(Http404):
        selectors.job_get_for_member(user=bob, project_id=project.pk, job_id=job.pk)


def test_job_queue_for_user_lists_own_active_jobs_with_their_place_in_the_fair_order(
    project, other_project, alice, bob, mallory, make_job
):
    running = make_job(project=project, author=bob)
    services.job_start(job_id=running.pk, worker="w1")
    make_job(project=other_project, author=mallory)  # somebody else's job, ahead in the queue
    mine = make_job(project=project, author=bob)
    make_job(project=project, author=alice)
    done = _finished(make_job(project=project, author=bob))
    queue = selectors.job_queue_for_user(project=project, user=bob)
    assert [job.pk for job in queue] == [running.pk, mine.pk]
    # mallory's and alice's first jobs go before bob's second (his first is running)
    assert [job.queue_position for job in queue] == [None, 3]
    assert done.pk not in [job.pk for job in queue]


def test_asset_get_for_member_gives_outsiders_404(project, bob, carol, mallory, make_job):
    asset = _finished(make_job(project=project, author=bob)).assets.get()
    assert selectors.asset_get_for_member(user=carol, project_id=project.pk, asset_id=asset.pk) == asset
    with pytest.raises(Http404):
        selectors.asset_get_for_member(user=mallory, project_id=project.pk, asset_id=asset.pk)


def test_asset_list_is_newest_first_and_filters_by_author_model_date_and_job(project, alice, bob, make_job):
    old = _finished(make_job(project=project, author=alice)).assets.get()
    Asset.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    by_bob_job = _finished(make_job(project=project, author=bob))
    new = by_bob_job.assets.get()
    assert list(selectors.asset_list(project=project)) == [new, old]
    assert list(selectors.asset_list(project=project, author_id=alice.pk)) == [old]
    assert list(selectors.asset_list(project=project, model_name="atelier-shapes")) == [new, old]
    assert list(selectors.asset_list(project=project, model_name="other")) == []
    assert list(selectors.asset_list(project=project, date_from=timezone.now().date())) == [new]
    assert list(selectors.asset_list(project=project, date_to=timezone.now().date() - timedelta(days=1))) == [old]
    assert list(selectors.asset_list(project=project, job_id=by_bob_job.pk)) == [new]


@pytest.mark.parametrize("queued", [1, 12])
def test_job_queue_for_user_takes_the_same_queries_however_long_the_queue(
    project, alice, bob, make_job, django_assert_num_queries, queued
):
    for _ in range(queued):
        make_job(project=project, author=bob)
        make_job(project=project, author=alice)
    with django_assert_num_queries(2):
        queue = selectors.job_queue_for_user(project=project, user=bob)
    assert [job.queue_position for job in queue] == list(range(1, 2 * queued, 2))
