"""Issue 23, finding 3: a project archive is untrusted input.

Each test exports a real project, then edits the archive as an attacker would (recomputing
every checksum it can, so only the import's own checks stand in the way) and imports it.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.helpers import membership
from webapp.audit.models import AuditEntry
from webapp.chat.markdown import render_markdown
from webapp.chat.models import Conversation, Message
from webapp.prompt_templates.services import template_create
from webapp.prompts.services import prompt_record_create
from webapp.reviews import services as review_services
from webapp.reviews.models import AssetKind, Comment, Verdict
from webapp.studio.models import Asset
from webapp.workspaces import transfer
from webapp.workspaces.models import Membership, Project

pytestmark = pytest.mark.django_db

SCRIPT = "<script src='/media/evil.js'></script><img src=x onerror=alert(1)>"


@pytest.fixture
def source(project, image, alice, bob):
    """Launch: a chat message, bob's image, alice's verdict and comment on it."""
    conversation = Conversation.objects.create(project=project, created_by=bob, title="Plans")
    Message.objects.create(conversation=conversation, role="user", author=bob, text="**hello**",
                           html=render_markdown("**hello**"))
    (review,) = review_services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[image.pk],
        reviewer_ids=[alice.pk])
    review_services.verdict_give(actor=membership(alice, project), review=review, decision="request_changes",
                                 comment="Warmer")
    review_services.comment_add(actor=membership(alice, project), review=review, text="This corner")
    template_create(actor=membership(alice, project), project=project, name="Fruit", command="fruit", kind="chat",
                    body="Name a {{kind}}")
    prompt_record_create(project=project, author=bob, kind="chat", text="Name a fruit", params={})
    return project


def _export(project: Project, tmp_path: Path) -> Path:
    path = tmp_path / "launch.tar.gz"
    transfer.project_export(project=project, path=path)
    return path


class Zeros(io.RawIOBase):
    """``size`` zero bytes, made as they are read (a bomb's payload, never whole in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def _zeros_sha256(size: int) -> str:
    digest, chunk = hashlib.sha256(), bytes(1 << 20)
    for start in range(0, size, len(chunk)):
        digest.update(chunk[: min(len(chunk), size - start)])
    return digest.hexdigest()


def rewrite(path: Path, *, manifest: Callable[[dict], None] | None = None, media: dict[str, bytes | int] | None = None,
            extra: dict[str, bytes] | None = None, fix_sums: bool = True) -> Path:
    """The attacker's edit of an archive: change the manifest and media (an int: that many zeros), then
    recompute every checksum (unless ``fix_sums`` is off) so that only the import's own checks are left."""
    with tarfile.open(path, "r:gz") as archive:
        members = [(m.name, archive.extractfile(m).read()) for m in archive.getmembers()]
    files = dict(members)
    data = json.loads(files["manifest.json"])
    if manifest:
        manifest(data)
    for name, content in (media or {}).items():
        files["media/" + name] = content
        if fix_sums and "checksums" in data:
            size = content if isinstance(content, int) else len(content)
            digest = _zeros_sha256(content) if isinstance(content, int) else hashlib.sha256(content).hexdigest()
            data["checksums"][name] = {"sha256": digest, "size": size}
    if manifest or (fix_sums and media):
        files["manifest.json"] = json.dumps(data).encode()
    if fix_sums and "manifest.sha256" in files:
        files["manifest.sha256"] = hashlib.sha256(files["manifest.json"]).hexdigest().encode()
    out = path.with_name("edited.tar.gz")
    with tarfile.open(out, "w:gz") as archive:
        for name in [n for n, _ in members] + list(extra or {}):
            content = (extra or {}).get(name, files.get(name))
            info = tarfile.TarInfo(name)
            info.size = content if isinstance(content, int) else len(content)
            archive.addfile(info, Zeros(content) if isinstance(content, int) else io.BytesIO(content))
    return out


def _manifest(path: Path) -> dict:
    with tarfile.open(path) as archive:
        return json.loads(archive.extractfile("manifest.json").read())


def _rows(data: dict, model: str) -> list[dict]:
    return [row for row in data["rows"] if row["model"] == model]


def _import(path: Path, other_team, **kwargs) -> Project:
    return transfer.project_import(path=path, team=other_team, **kwargs)


def test_stored_message_html_is_rendered_again_from_the_text(source, other_team, tmp_path):
    def inject(data):
        for row in _rows(data, "chat.message"):
            row["fields"]["html"] = SCRIPT

    copy = _import(rewrite(_export(source, tmp_path), manifest=inject), other_team)
    message = Message.objects.get(conversation__project=copy)
    assert "<script" not in message.html and "onerror" not in message.html
    assert message.html == render_markdown("**hello**")


def test_an_asset_content_type_comes_from_its_bytes(source, other_team, tmp_path):
    def relabel(data):
        for row in _rows(data, "studio.asset"):
            row["fields"]["content_type"] = "text/javascript"
            row["fields"]["sha256"] = "0" * 64

    copy = _import(rewrite(_export(source, tmp_path), manifest=relabel), other_team)
    asset = Asset.objects.get(project=copy)
    assert asset.content_type == "image/png"
    with asset.file.open("rb") as fh:
        assert asset.sha256 == hashlib.sha256(fh.read()).hexdigest()


def test_a_script_dressed_as_an_image_is_refused(source, other_team, tmp_path, client_for, mallory):
    """The stored-XSS chain: a script served from our own origin passes ``script-src 'self'``."""
    path = _export(source, tmp_path)
    name = _rows(_manifest(path), "studio.asset")[0]["fields"]["file"]

    def relabel(data):
        for row in _rows(data, "studio.asset"):
            row["fields"]["content_type"] = "text/javascript"

    before = Project.objects.count()
    with pytest.raises(ValidationError) as raised:
        _import(rewrite(path, manifest=relabel, media={name: b"alert(document.cookie)"}), other_team)
    assert "archive" in raised.value.message_dict and "image" in str(raised.value)
    assert Project.objects.count() == before


def test_imported_acts_are_marked_with_the_archive_and_who_imported_it(source, other_team, tmp_path, mallory,
                                                                        client_for, alice):
    copy = _import(_export(source, tmp_path), other_team, actor=mallory)
    (record,) = copy.imports.all()
    assert (record.archive_name, record.imported_by, record.imported_by_name) == ("launch.tar.gz", mallory, "mallory")
    verdict = Verdict.objects.get(review__project=copy)
    comment = Comment.objects.get(review__project=copy)
    assert verdict.imported_from == record and comment.imported_from == record
    assert verdict.reviewer == alice  # the archive's history, told apart by the mark
    entries = AuditEntry.objects.filter(project_id=copy.pk)
    assert entries.exists()
    for entry in entries:
        assert entry.detail["imported"]["archive"] == "launch.tar.gz"
        assert entry.detail["imported"]["by"] == "mallory"
        assert entry.detail["imported"]["import_id"] == record.pk
    # The live rows of the source are not marked; the pages say "imported".
    assert not Verdict.objects.filter(review__project=source, imported_from__isnull=False).exists()
    page = client_for(mallory).get(reverse("reviews:detail", args=[copy.pk, verdict.review_id]))
    assert b">imported<" in page.content
    audit = client_for(mallory).get(reverse("audit:team_audit", args=[other_team.pk]))
    assert b">imported<" in audit.content


def test_an_archive_cannot_forge_its_own_import_mark(source, other_team, tmp_path):
    def forge(data):
        for row in _rows(data, "audit.auditentry"):
            row["fields"]["detail"] = {"imported": {"archive": "trusted.tar.gz", "by": "admin"}}

    copy = _import(rewrite(_export(source, tmp_path), manifest=forge), other_team, actor_name="ops")
    for entry in AuditEntry.objects.filter(project_id=copy.pk):
        assert entry.detail["imported"]["by"] == "ops" and entry.detail["imported"]["archive"] == "edited.tar.gz"


def test_team_roles_are_validated(source, tmp_path):
    def promote(data):
        data["team"]["members"][0]["role"] = "superuser"

    before = Membership.objects.count()
    with pytest.raises(ValidationError, match="role"):
        transfer.project_import(path=rewrite(_export(source, tmp_path), manifest=promote))
    assert Membership.objects.count() == before


@pytest.mark.parametrize(("model", "field", "value"), [
    ("chat.message", "role", "root"),
    ("chat.conversation", "title", "t" * 5000),
    ("reviews.verdict", "decision", "approve_everything"),
    ("reviews.comment", "text", "c" * 6000),
    ("chat.message", "text", "m" * 20001),
    ("prompts.promptrecord", "text", "p" * 20001),
    ("prompt_templates.templateversion", "body", "{{kind|colour}}"),
])
def test_every_row_is_validated_as_the_model_says(source, other_team, tmp_path, model, field, value):
    def corrupt(data):
        _rows(data, model)[0]["fields"][field] = value

    with pytest.raises(ValidationError) as raised:
        _import(rewrite(_export(source, tmp_path), manifest=corrupt), other_team)
    assert field in str(raised.value)
    assert not Project.objects.filter(team=other_team).exists()


def test_a_changed_manifest_is_refused(source, other_team, tmp_path):
    def edit(data):
        data["project"]["description"] = "changed after export"

    with pytest.raises(ValidationError, match=r"manifest\.sha256|checksum"):
        _import(rewrite(_export(source, tmp_path), manifest=edit, fix_sums=False), other_team)


def test_a_changed_media_file_is_refused(source, other_team, tmp_path):
    path = _export(source, tmp_path)
    name = _manifest(path)["media"][0]
    with pytest.raises(ValidationError, match=r"checksum|bytes"):
        _import(rewrite(path, media={name: b"\x89PNG not the same"}, fix_sums=False), other_team)


def test_an_unlisted_member_is_refused(source, other_team, tmp_path):
    with pytest.raises(ValidationError, match=r"not in the manifest|Unexpected"):
        _import(rewrite(_export(source, tmp_path), extra={"media/studio/evil.js": b"alert(1)"}), other_team)


def test_a_storage_name_that_climbs_out_is_refused(source, other_team, tmp_path):
    path = _export(source, tmp_path)

    def climb(data):
        old = data["media"][0]
        data["media"][0] = "../../outside.png"
        for row in data["rows"]:
            for key, value in row["fields"].items():
                if value == old:
                    row["fields"][key] = "../../outside.png"
        if "checksums" in data:
            data["checksums"]["../../outside.png"] = data["checksums"].pop(old)

    with pytest.raises(ValidationError, match="storage name"):
        _import(rewrite(path, manifest=climb), other_team)
    assert not (Path(transfer.default_storage.location).parent / "outside.png").exists()


def test_a_gzip_bomb_is_refused_without_being_read_into_memory(source, other_team, tmp_path, monkeypatch):
    """256 MB of zeros squeezed into ~256 KB, as an asset's image: refused from the tar header, never read whole."""
    monkeypatch.setattr(transfer, "RATIO_FLOOR", 4 * 1024 * 1024, raising=False)
    path = _export(source, tmp_path)
    name = _rows(_manifest(path), "studio.asset")[0]["fields"]["file"]
    bomb = rewrite(path, media={name: 256 * 1024 * 1024})
    assert bomb.stat().st_size < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as raised:
            _import(bomb, other_team)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "expands" in str(raised.value)
    assert peak < 16 * 1024 * 1024


def test_one_member_over_the_size_limit_is_refused(source, other_team, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "MAX_MEMBER_BYTES", 100, raising=False)
    with pytest.raises(ValidationError, match="over"):
        _import(_export(source, tmp_path), other_team)


def test_a_moved_project_still_imports(source, other_team, tmp_path):
    copy = _import(_export(source, tmp_path), other_team)
    assert Message.objects.get(conversation__project=copy).html == render_markdown("**hello**")
    assert Asset.objects.get(project=copy).content_type == "image/png"
