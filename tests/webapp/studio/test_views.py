from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from tests.helpers import fake_result
from webapp.prompts.models import PromptRecord
from webapp.studio import services
from webapp.studio.models import Job, JobOrigin, JobStatus

pytestmark = pytest.mark.django_db

FORM = {
    "prompt": "a green triangle", "negative_prompt": "", "model": "atelier-shapes", "scheduler": "dpmpp_2m",
    "steps": "6", "guidance_scale": "3", "width": "32", "height": "32", "num_images": "1", "seed": "",
}


def _asset(project, author, make_job, **overrides):
    job = make_job(project=project, author=author, **overrides)
    job = services.job_start(job_id=job.pk, worker="w1")
    return services.job_complete(job=job, result=fake_result(job)).assets.get()


def test_studio_shows_the_form_with_the_models_and_schedulers(project, bob, client_for):
    response = client_for(bob).get(reverse("studio:index", args=[project.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="prompt"' in html and 'value="atelier-shapes"' in html and 'value="euler_a"' in html
    assert f'ws-connect="/ws/projects/{project.pk}/studio/"' in html


def test_studio_tells_a_viewer_they_cannot_generate(project, carol, client_for):
    response = client_for(carol).get(reverse("studio:index", args=[project.pk]))
    assert response.status_code == 200
    assert 'name="prompt"' not in response.content.decode()
    assert "viewer" in response.content.decode()


def test_studio_submit_creates_a_job_and_returns_its_card(project, bob, client_for, no_enqueue):
    response = client_for(bob).post(reverse("studio:index", args=[project.pk]), FORM, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    job = Job.objects.get()
    assert (job.author, job.status, job.params["steps"], job.params["prompt"]) == (bob, "queued", 6, "a green triangle")
    html = response.content.decode()
    assert f'id="job-{job.pk}"' in html and 'hx-swap-oob="afterbegin:#job-list"' in html
    assert 'id="queue-panel"' in html and "position 1" in html


def test_studio_submit_without_htmx_redirects_to_the_studio(project, bob, client_for, no_enqueue):
    response = client_for(bob).post(reverse("studio:index", args=[project.pk]), FORM)
    assert response.status_code == 302
    assert Job.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps", "100000"), ("guidance_scale", "-4"), ("width", "33"), ("num_images", "99"), ("prompt", "   "),
     ("seed", "-1"), ("model", "no-such-model")],
)
def test_studio_shows_a_bad_value_next_to_its_field_and_enqueues_nothing(
    project, bob, client_for, no_enqueue, field, value
):
    response = client_for(bob).post(reverse("studio:index", args=[project.pk]), {**FORM, field: value}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert f'id="id_{field}-error"' in response.content.decode()
    assert not Job.objects.exists()
    assert not PromptRecord.objects.exists()
    assert no_enqueue == []


def test_studio_refuses_a_viewer_submission(project, carol, client_for, no_enqueue):
    response = client_for(carol).post(reverse("studio:index", args=[project.pk]), FORM)
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_studio_reuse_fills_the_form_from_the_prompt_history(project, bob, client_for, make_job):
    job = make_job(project=project, author=bob, prompt="a yellow star", steps=9, seed=1234)
    response = client_for(bob).get(reverse("studio:index", args=[project.pk]) + f"?reuse={job.prompt_record_id}")
    html = response.content.decode()
    assert "a yellow star</textarea>" in html
    assert 'name="steps" value="9"' in html and 'name="seed" value="1234"' in html


def test_studio_reuse_of_an_outsiders_prompt_is_404(project, other_project, bob, mallory, client_for, make_job):
    job = make_job(project=other_project, author=mallory, prompt="secret plans")
    response = client_for(bob).get(reverse("studio:index", args=[project.pk]) + f"?reuse={job.prompt_record_id}")
    assert response.status_code == 404


def test_history_reuse_link_opens_the_studio(project, bob, client_for, make_job):
    job = make_job(project=project, author=bob)
    response = client_for(bob).get(reverse("prompts:reuse", args=[project.pk, job.prompt_record_id]))
    assert response.url == reverse("studio:index", args=[project.pk]) + f"?reuse={job.prompt_record_id}"


def test_queue_panel_never_shows_other_projects_prompts(project, other_project, bob, mallory, client_for, make_job):
    make_job(project=other_project, author=mallory, prompt="secret plans")
    make_job(project=project, author=bob, prompt="my own idea")
    html = client_for(bob).get(reverse("studio:queue", args=[project.pk])).content.decode()
    assert "my own idea" in html and "position 2" in html
    assert "secret plans" not in html


def test_queue_panel_renders_with_the_same_queries_for_a_short_and_a_long_queue(
    project, alice, bob, client_for, make_job, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client, url = client_for(bob), reverse("studio:queue", args=[project.pk])
    make_job(project=project, author=bob)
    make_job(project=project, author=alice)
    client.get(url)  # the session's first request
    with CaptureQueriesContext(connection) as short:
        assert client.get(url).content.decode().count("position ") == 1
    for _ in range(14):
        make_job(project=project, author=bob)
        make_job(project=project, author=alice)
    with django_assert_num_queries(len(short)):
        assert client.get(url).content.decode().count("position ") == 15


def test_job_cancel_cancels_own_queued_job(project, bob, client_for, make_job):
    job = make_job(project=project, author=bob)
    response = client_for(bob).post(reverse("studio:job_cancel", args=[project.pk, job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert Job.objects.get(pk=job.pk).status == JobStatus.STOPPED
    assert "Cancelled by bob." in response.content.decode()


def test_job_cancel_refuses_a_teammates_job(project, alice, bob, client_for, make_job):
    job = make_job(project=project, author=bob)
    response = client_for(alice).post(reverse("studio:job_cancel", args=[project.pk, job.pk]))
    assert response.status_code == 403
    assert Job.objects.get(pk=job.pk).status == JobStatus.QUEUED


def test_job_card_shows_a_failed_jobs_reason(project, bob, client_for, make_job):
    job = make_job(project=project, author=bob)
    services.job_fail(job_id=job.pk, reason="out of memory")
    html = client_for(bob).get(reverse("studio:job_card", args=[project.pk, job.pk])).content.decode()
    assert "Failed" in html and "out of memory" in html


def test_gallery_shows_thumbnails_newest_first(project, alice, bob, carol, client_for, make_job):
    first = _asset(project, alice, make_job, prompt="a red circle")
    second = _asset(project, bob, make_job, prompt="a blue square")
    html = client_for(carol).get(reverse("studio:gallery", args=[project.pk])).content.decode()
    assert html.index(f"/gallery/{second.pk}/thumb.png") < html.index(f"/gallery/{first.pk}/thumb.png")


def test_gallery_filters_by_author_as_an_htmx_partial(project, alice, bob, client_for, make_job):
    mine = _asset(project, alice, make_job)
    theirs = _asset(project, bob, make_job)
    response = client_for(alice).get(
        reverse("studio:gallery", args=[project.pk]), {"author": alice.pk}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "<html" not in html
    assert f"/gallery/{mine.pk}/thumb.png" in html and f"/gallery/{theirs.pk}/thumb.png" not in html


def test_gallery_pages_load_more_when_revealed(project, bob, client_for, make_job, monkeypatch):
    from webapp.studio import views

    monkeypatch.setattr(views, "GALLERY_PAGE_SIZE", 2)
    assets = [_asset(project, bob, make_job) for _ in range(3)]
    html = client_for(bob).get(reverse("studio:gallery", args=[project.pk])).content.decode()
    assert 'hx-trigger="revealed"' in html and "page=2" in html
    page2 = client_for(bob).get(reverse("studio:gallery", args=[project.pk]), {"page": 2}, HTTP_HX_REQUEST="true")
    assert f"/gallery/{assets[0].pk}/thumb.png" in page2.content.decode()
    assert 'hx-trigger="revealed"' not in page2.content.decode()


def test_asset_page_shows_the_full_lineage(project, bob, carol, client_for, make_job):
    asset = _asset(project, bob, make_job)
    html = client_for(carol).get(reverse("studio:asset_detail", args=[project.pk, asset.pk])).content.decode()
    for text in ("atelier-shapes", "abc123", asset.scheduler, ">7<", "32\u00d732", asset.worker_host, asset.code_version,
                 f"#{asset.job_id}"):
        assert text in html, text
    assert "Download PNG" in html
    assert "Re-run" not in html  # carol is a viewer


def test_asset_download_is_the_original_png_with_headers(project, bob, carol, client_for, make_job):
    asset = _asset(project, bob, make_job)
    response = client_for(carol).get(reverse("studio:asset_download", args=[project.pk, asset.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'attachment; filename="{asset.download_name}"'
    body = b"".join(response.streaming_content)
    assert Image.open(io.BytesIO(body)).text["atelier"]


def test_asset_image_and_thumbnail_are_served_inline(project, bob, client_for, make_job):
    asset = _asset(project, bob, make_job)
    for name in ("studio:asset_image", "studio:asset_thumbnail"):
        response = client_for(bob).get(reverse(name, args=[project.pk, asset.pk]))
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("inline; filename=")


def test_asset_rerun_and_vary_create_jobs_from_the_asset(project, bob, client_for, make_job):
    asset = _asset(project, bob, make_job)
    client = client_for(bob)
    assert client.post(reverse("studio:asset_rerun", args=[project.pk, asset.pk])).status_code == 302
    assert client.post(reverse("studio:asset_vary", args=[project.pk, asset.pk])).status_code == 302
    rerun, vary = Job.objects.exclude(pk=asset.job_id).order_by("pk")
    assert (rerun.origin, rerun.params["seed"]) == (JobOrigin.RERUN, asset.seed)
    assert vary.origin == JobOrigin.VARY


def test_asset_rerun_is_refused_to_a_viewer(project, bob, carol, client_for, make_job):
    asset = _asset(project, bob, make_job)
    assert client_for(carol).post(reverse("studio:asset_rerun", args=[project.pk, asset.pk])).status_code == 403


@pytest.mark.parametrize(
    ("url_name", "method", "kind"),
    [
        ("studio:index", "get", "project"),
        ("studio:queue", "get", "project"),
        ("studio:gallery", "get", "project"),
        ("studio:job_card", "get", "job"),
        ("studio:job_cancel", "post", "job"),
        ("studio:asset_detail", "get", "asset"),
        ("studio:asset_image", "get", "asset"),
        ("studio:asset_thumbnail", "get", "asset"),
        ("studio:asset_download", "get", "asset"),
        ("studio:asset_rerun", "post", "asset"),
        ("studio:asset_vary", "post", "asset"),
    ],
)
def test_studio_urls_give_an_outsider_404(project, bob, mallory, client_for, make_job, url_name, method, kind):
    asset = _asset(project, bob, make_job)
    args = {"project": [project.pk], "job": [project.pk, asset.job_id], "asset": [project.pk, asset.pk]}[kind]
    response = getattr(client_for(mallory), method)(reverse(url_name, args=args))
    assert response.status_code == 404
    assert Job.objects.count() == 1


def test_studio_urls_send_anonymous_visitors_to_log_in(project):
    from django.test import Client

    response = Client().get(reverse("studio:gallery", args=[project.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_assets_are_stored_and_served_through_whatever_storage_is_configured(project, bob, client_for, make_job, settings):
    # What S3 (django-storages) relies on: only the storage API, never a local path or a public URL.
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    from django.core.files.storage import default_storage

    asset = _asset(project, bob, make_job)
    assert default_storage.__class__.__name__ == "InMemoryStorage"
    assert default_storage.exists(asset.file.name) and default_storage.exists(asset.thumbnail.name)
    response = client_for(bob).get(reverse("studio:asset_download", args=[project.pk, asset.pk]))
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (32, 32)


def test_the_studio_page_never_writes_the_sweep_fails_a_silent_job(project, bob, client_for, make_job, settings):
    from datetime import timedelta

    from django.utils import timezone

    from webapp.core.tasks import sweep_stale_jobs

    settings.JOB_STALE_SECONDS = 60
    job = make_job(project=project, author=bob)
    services.job_start(job_id=job.pk, worker="w1")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    client_for(bob).get(reverse("studio:index", args=[project.pk]))
    client_for(bob).get(reverse("studio:job_card", args=[project.pk, job.pk]))
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING  # a GET leaves it as it is
    assert sweep_stale_jobs() == 1  # Celery beat runs this
    html = client_for(bob).get(reverse("studio:job_card", args=[project.pk, job.pk])).content.decode()
    assert Job.objects.get(pk=job.pk).status == JobStatus.FAILED
    assert "The worker stopped responding" in html


def test_studio_reuse_of_a_chat_prompt_brings_only_its_text(project, bob, client_for):
    from webapp.prompts.services import prompt_record_create

    record = prompt_record_create(project=project, author=bob, kind="chat", text="draw me a sheep",
                                  params={"seed": 99, "model": "smollm2-135m-instruct"}, model_name="smollm2")
    html = client_for(bob).get(reverse("studio:index", args=[project.pk]) + f"?reuse={record.pk}").content.decode()
    assert "draw me a sheep</textarea>" in html
    assert 'value="99"' not in html
