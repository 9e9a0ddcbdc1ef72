"""Writes about stored images that are not jobs."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studio.models import Asset


def asset_record_download(*, asset: Asset, user: Any, via: str = "download") -> None:
    """Add the download to the audit trail (the only write a download makes).

    ``via`` says how the bytes left: ``download`` (the attachment), ``view``
    (``image.png``, shown in a page), ``api`` (``/v1/images/<id>/content``).
    """
    audit_record(
        actor=user, team_id=asset.project.team_id, project_id=asset.project_id, action=AuditAction.DOWNLOADED,
        object_kind="image", object_id=asset.pk, detail={"via": via},
    )


def assets_record_download(*, assets: Sequence[Asset], user: Any, via: str) -> None:
    """One audit entry for a batch of one job's images that left together (an API ``b64_json`` answer)."""
    if not assets:
        return
    first = assets[0]
    audit_record(
        actor=user, team_id=first.project.team_id, project_id=first.project_id, action=AuditAction.DOWNLOADED,
        object_kind="job", object_id=first.job_id, detail={"via": via, "assets": [asset.pk for asset in assets]},
    )


# What an image may be served as: the formats the studio writes and browsers show, nothing that runs.
IMPORT_IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def _stored_image_type(name: str, *, what: str) -> tuple[str, int, str]:
    """(content type, size, SHA-256) of a stored file, from its bytes; ValidationError naming ``what``
    unless Pillow reads it as one of IMPORT_IMAGE_TYPES."""
    import hashlib
    import warnings

    from django.core.exceptions import ValidationError
    from django.core.files.storage import default_storage
    from PIL import Image

    digest, size = hashlib.sha256(), 0
    with default_storage.open(name, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        fh.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(fh) as image:  # reads the header only
                    kind = image.format or ""
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
            kind = ""
    if kind not in IMPORT_IMAGE_TYPES:
        raise ValidationError({what: f"is not a PNG, JPEG or WebP image ({name!r:.80})."})
    return IMPORT_IMAGE_TYPES[kind], size, digest.hexdigest()


def asset_import_clean(*, asset: Asset) -> None:
    """An imported asset's content type, size and hash, read from its stored bytes (never the archive's
    word: a served content type decides what a browser does with the file); its thumbnail must be an image."""
    asset.content_type, asset.byte_size, asset.sha256 = _stored_image_type(asset.file.name, what="file")
    _stored_image_type(asset.thumbnail.name, what="thumbnail")
