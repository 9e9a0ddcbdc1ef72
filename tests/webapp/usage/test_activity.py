"""A project's activity: its finished jobs by day, what runs now, and this month's use against its budget."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.helpers import finished_image_job, membership, tiny_request
from webapp.studio import services as studio
from webapp.usage import services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def test_an_outsider_gets_404_on_the_activity_page(project, mallory, client_for):
    assert client_for(mallory).get(reverse("usage:project_activity", args=[project.pk])).status_code == 404


def test_the_activity_lists_finished_jobs_running_ones_and_the_month_against_the_budget(
        project, alice, bob, carol, client_for, no_enqueue):
    done = finished_image_job(project=project, user=bob, colours=("red", "blue"))
    waiting = studio.job_create(project=project, actor=membership(bob, project), request=tiny_request())
    services.budget_set(actor=membership(alice, project), project=project, images=10)
    page = client_for(carol).get(reverse("usage:project_activity", args=[project.pk])).content.decode()
    assert f'data-record="studio.image:{done.pk}"' in page and "2 images" in page
    assert f'data-job="studio.image:{waiting.pk}"' in page and "queued" in page
    assert "2 images of 10" in page


def test_the_activity_filters_by_kind_and_person(project, alice, bob, client_for, no_enqueue):
    mine = finished_image_job(project=project, user=alice)
    theirs = finished_image_job(project=project, user=bob)
    url = reverse("usage:project_activity", args=[project.pk])
    page = client_for(alice).get(url, {"person": bob.pk}).content.decode()
    assert f"studio.image:{theirs.pk}" in page and f'data-record="studio.image:{mine.pk}"' not in page
    assert "Nothing has finished" in client_for(alice).get(url, {"kind": "chat.reply"}).content.decode()
    assert f'data-record="studio.image:{mine.pk}"' in client_for(alice).get(url, {"kind": "studio.image"}).content.decode()
