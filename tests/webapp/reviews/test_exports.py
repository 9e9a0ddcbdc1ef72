from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.core.files.storage import default_storage

from generation.image import read_png_metadata
from tests.helpers import membership
from webapp.audit.models import AuditEntry
from webapp.reviews import services
from webapp.reviews.models import ApprovedExport, AssetKind
from webapp.reviews.tasks import build_approved_export

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_server")]  # the lifecycle's stop watch


def _approved(project, image, requester, reviewer):
    (review,) = services.review_request_create(
        actor=membership(requester, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
        reviewer_ids=[reviewer.pk],
    )
    services.verdict_give(actor=membership(reviewer, project), review=review, decision="approve")
    return review


def _build(project, user, review_round=None) -> tuple[ApprovedExport, zipfile.ZipFile]:
    export = services.export_create(actor=membership(user, project), project=project, review_round=review_round)
    build_approved_export(export.pk)
    export.refresh_from_db()
    assert export.status == "done", export.reason
    with default_storage.open(export.file, "rb") as stored:
        data = stored.read()
    assert len(data) == export.byte_size
    return export, zipfile.ZipFile(io.BytesIO(data))


def test_the_export_holds_only_approved_images_and_their_lineage(project, make_image, alice, bob, carol):
    approved = make_image(project=project, author=bob, seed=11, prompt="a blue square")
    pending = make_image(project=project, author=bob, seed=12)
    review = _approved(project, approved, bob, alice)
    services.review_request_create(actor=membership(bob, project), project=project, kind=AssetKind.IMAGE,
                                   asset_ids=[pending.pk], reviewer_ids=[alice.pk])
    export, archive = _build(project, carol)

    names = sorted(archive.namelist())
    image_name = f"images/v1-image{approved.pk}-seed11.png"
    assert names == sorted([image_name, "manifest.json", "manifest.csv"])
    assert (export.files_done, export.files_total) == (1, 1)

    manifest = json.loads(archive.read("manifest.json"))
    (entry,) = manifest["files"]
    embedded = read_png_metadata(io.BytesIO(archive.read(image_name)))["params"]
    assert entry["file"] == image_name and entry["review_id"] == review.pk
    assert (entry["prompt"], entry["seed"], entry["steps"], entry["guidance_scale"], entry["scheduler"]) == (
        embedded["prompt"], embedded["seed"], embedded["steps"], embedded["guidance_scale"], embedded["scheduler"])
    assert (entry["model"], entry["weights_hash"]) == (embedded["model"], embedded["model_revision"])
    assert (entry["width"], entry["height"], entry["author"]) == (embedded["width"], embedded["height"], "bob")
    assert [a["by"] for a in entry["approvals"]] == ["alice"]

    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert len(rows) == 1
    assert (rows[0]["file"], rows[0]["seed"], rows[0]["approved_by"], rows[0]["prompt"]) == (
        image_name, "11", "alice", "a blue square")
    assert AuditEntry.objects.filter(action="exported", object_id=export.pk, actor_name="carol").exists()


def test_a_round_export_holds_only_that_rounds_approved_images(project, make_image, alice, bob):
    first = _approved(project, make_image(project=project, author=bob, seed=1), bob, alice)
    _approved(project, make_image(project=project, author=bob, seed=2), bob, alice)
    _export, archive = _build(project, bob, review_round=first.round)
    assert [n for n in archive.namelist() if n.endswith(".png")] == [f"images/v1-image{first.asset_id}-seed1.png"]


def test_an_export_of_nothing_is_an_empty_set_with_a_manifest(project, alice):
    export, archive = _build(project, alice)
    assert sorted(archive.namelist()) == ["manifest.csv", "manifest.json"]
    assert export.files_total == 0


def test_an_export_that_is_not_queued_is_not_built_twice(project, alice):
    export, _archive = _build(project, alice)
    assert services.export_build(export_id=export.pk) is None


def test_a_failing_export_shows_a_generic_reason_and_logs_the_detail(project, make_image, alice, bob, monkeypatch,
                                                                     caplog):
    _approved(project, make_image(project=project, author=bob), bob, alice)
    export = services.export_create(actor=membership(alice, project), project=project)

    def broken(*args, **kwargs):
        raise OSError("disk full at /srv/media")

    monkeypatch.setattr(default_storage, "save", broken)
    build_approved_export(export.pk)
    export.refresh_from_db()
    assert export.status == "failed" and export.reason.startswith("The export failed because of an internal error")
    assert "/srv/media" not in export.reason
    error_id = export.reason.split("error id ")[1][:8]
    assert any(error_id in r.getMessage() and "/srv/media" in (r.exc_text or "") for r in caplog.records)


def test_an_outsider_cannot_export_a_project(project, other_project, mallory):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.export_create(actor=membership(mallory, other_project), project=project)


def test_the_manifest_names_the_template_version_an_image_was_made_with(project, make_image, alice, bob):
    from webapp.prompt_templates.models import TemplateUse

    image = make_image(project=project, author=bob)
    TemplateUse.objects.create(project=project, user=bob, command="poster", version_number=3, output_kind="job",
                               output_id=image.job_id)
    _approved(project, image, bob, alice)
    _export, archive = _build(project, alice)
    (entry,) = json.loads(archive.read("manifest.json"))["files"]
    assert entry["template_version"] == "/poster v3"
