"""A project's activity: finished jobs and review and export events by day, what runs now, the month against
the budget; the project's overview loads the feed."""
from __future__ import annotations

from urllib.parse import unquote

import pytest
from django.urls import reverse

from tests.helpers import finished_image_job, membership, tiny_request
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studio import services as studio
from webapp.usage import services

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]


def test_an_outsider_gets_404_on_the_activity_page(project, mallory, client_for):
    assert client_for(mallory).get(reverse("activity:project", args=[project.pk])).status_code == 404


def test_the_activity_lists_finished_jobs_running_ones_and_the_month_against_the_budget(
        project, alice, bob, carol, client_for, no_enqueue):
    done = finished_image_job(project=project, user=bob, colours=("red", "blue"))
    waiting = studio.job_create(project=project, actor=membership(bob, project), request=tiny_request())
    services.budget_set(actor=membership(alice, project), project=project, images=10)
    page = client_for(carol).get(reverse("activity:project", args=[project.pk])).content.decode()
    assert f'data-record="studio.image:{done.pk}"' in page and "2 images" in page
    assert f'data-job="studio.image:{waiting.pk}"' in page and "queued" in page
    assert "2 images of 10" in page


def test_the_activity_filters_by_kind_and_person(project, alice, bob, client_for, no_enqueue):
    mine = finished_image_job(project=project, user=alice)
    theirs = finished_image_job(project=project, user=bob)
    url = reverse("activity:project", args=[project.pk])
    page = client_for(alice).get(url, {"person": bob.pk}).content.decode()
    assert f"studio.image:{theirs.pk}" in page and f'data-record="studio.image:{mine.pk}"' not in page
    assert "Nothing has happened" in client_for(alice).get(url, {"kind": "chat.reply"}).content.decode()
    assert f'data-record="studio.image:{mine.pk}"' in client_for(alice).get(url, {"kind": "studio.image"}).content.decode()


def test_the_feed_shows_review_and_export_events_and_image_thumbnails(project, alice, bob, carol, client_for,
                                                                      no_enqueue):
    job = finished_image_job(project=project, user=bob, colours=("red",))
    audit_record(actor=alice, team_id=project.team_id, project_id=project.pk, action=AuditAction.REVIEW_REQUESTED,
                 object_kind="review", object_id=7)
    audit_record(actor=alice, team_id=project.team_id, project_id=project.pk, action=AuditAction.DOWNLOADED,
                 object_kind="export", object_id=8)  # a download is the audit page's business, not the feed's
    page = client_for(carol).get(reverse("activity:project", args=[project.pk])).content.decode()
    asset = job.assets.get()
    assert 'data-entry="review_requested:' in page and "review requested" in page and "alice" in page
    assert "downloaded:" not in page
    assert reverse("studio:asset_thumbnail", args=[project.pk, asset.pk]) in page
    only_reviews = client_for(carol).get(reverse("activity:project", args=[project.pk]),
                                         {"kind": "review_requested"}).content.decode()
    assert 'data-entry="review_requested:' in only_reviews and f'data-record="studio.image:{job.pk}"' not in only_reviews


def test_the_feed_pages_back_in_time(project, bob, client_for, no_enqueue, monkeypatch):
    from webapp.activity import selectors

    monkeypatch.setattr(selectors, "PAGE", 2)
    jobs = [finished_image_job(project=project, user=bob) for _ in range(3)]
    url = reverse("activity:project", args=[project.pk])
    first = client_for(bob).get(url).content.decode()
    assert first.count("data-record=") == 2 and "before=" in first
    older = unquote(first.split("before=")[1].split('"')[0])
    second = client_for(bob).get(url, {"before": older}).content.decode()
    assert second.count("data-record=") == 1 and f'data-record="studio.image:{jobs[0].pk}"' in second


def test_the_project_overview_loads_the_feed(project, bob, client_for, no_enqueue):
    job = finished_image_job(project=project, user=bob)
    overview = client_for(bob).get(reverse("workspaces:project_detail", args=[project.pk])).content.decode()
    assert reverse("activity:project", args=[project.pk]) + "?embed=1" in overview
    feed = client_for(bob).get(reverse("activity:project", args=[project.pk]), {"embed": "1"}).content.decode()
    assert f'data-record="studio.image:{job.pk}"' in feed and "<html" not in feed


def test_the_feed_shows_each_template_version_published_with_its_name_and_number(project, alice, carol, client_for):
    from webapp.prompt_templates import services as templates

    owner = membership(alice, project)
    template = templates.template_create(actor=owner, project=project, name="Launch tweet", command="tweet",
                                         kind="chat", body="Write a tweet about {topic}")
    second = templates.template_save(actor=owner, template=template, body="A tweet about {topic}, with a pun",
                                     settings={}, note="punnier")
    templates.template_publish(actor=owner, version=second)
    templates.template_publish(actor=owner, version=template.versions.get(number=1))  # the rollback is published too
    page = client_for(carol).get(reverse("activity:project", args=[project.pk])).content.decode()
    assert page.count('data-entry="template_published:') == 3 and "template version published" in page
    assert page.index("Launch tweet (/tweet) version 1") < page.index("Launch tweet (/tweet) version 2")  # newest first
    only = client_for(carol).get(reverse("activity:project", args=[project.pk]),
                                 {"kind": "template_published"}).content.decode()
    assert only.count('data-entry="template_published:') == 3
