"""Finding 9: every way an image's bytes leave the server is in the audit trail, not only ``/download/``.

The attack: a member (or a script holding their key) pulls a project's images through the inline
``image.png``, the API's ``/v1/images/<id>/content`` or a ``b64_json`` answer, and the team's audit
trail shows nothing.
"""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.helpers import ApiClient, finished_image_job, make_key
from webapp.api.models import ImageCall
from webapp.api.services import image_job_assets
from webapp.audit.models import AuditAction, AuditEntry

pytestmark = [pytest.mark.django_db]


def _downloads():
    return AuditEntry.objects.filter(action=AuditAction.DOWNLOADED)


def test_viewing_image_png_is_recorded(client_for, project, bob, carol, no_enqueue):
    asset = finished_image_job(project=project, user=bob).assets.get()
    url = reverse("studio:asset_image", kwargs={"project_id": project.pk, "asset_id": asset.pk})
    response = client_for(carol).get(url)
    assert response.status_code == 200
    entry = _downloads().get()
    assert (entry.actor_id, entry.object_kind, entry.object_id, entry.detail["via"]) == (carol.pk, "image", asset.pk, "view")


def test_fetching_v1_image_content_is_recorded(project, bob, redis_server, no_enqueue):
    key = make_key(bob, project)
    job = finished_image_job(project=project, user=bob, via=key.key.label)
    ImageCall.objects.create(key=key.key, job=job)
    asset = job.assets.get()
    response = ApiClient(key.secret).get(reverse("api:image_file", kwargs={"asset_id": asset.pk}))
    assert response.status_code == 200
    entry = _downloads().get()
    assert (entry.actor_id, entry.object_kind, entry.object_id, entry.detail["via"]) == (bob.pk, "image", asset.pk, "api")


def test_a_b64_json_answer_is_recorded_once_for_its_batch(project, bob, no_enqueue):
    key = make_key(bob, project)
    job = finished_image_job(project=project, user=bob, via=key.key.label, colours=("red", "blue", "green"))
    rows = image_job_assets(job_id=job.pk, key_id=key.key.pk, with_bytes=True, user=bob)
    assert len(rows) == 3 and all(row["b64_json"] for row in rows)
    entry = _downloads().get()  # one entry for the batch, not one per image
    assert (entry.actor_id, entry.object_kind, entry.object_id) == (bob.pk, "job", job.pk)
    assert entry.detail["assets"] == sorted(asset.pk for asset in job.assets.all())


def test_a_url_answer_is_not_a_download_until_the_url_is_fetched(project, bob, no_enqueue):
    key = make_key(bob, project)
    job = finished_image_job(project=project, user=bob, via=key.key.label)
    image_job_assets(job_id=job.pk, key_id=key.key.pk, with_bytes=False, user=bob)
    assert not _downloads().exists()
