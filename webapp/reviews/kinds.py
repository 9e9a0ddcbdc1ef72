"""The kinds of asset a review can point at, behind one small interface.

Adding a kind means adding one ``_load_<kind>`` here: everything else in
reviews only sees ``AssetRef``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import Http404

from webapp.reviews.models import AssetKind


@dataclass(frozen=True)
class AssetRef:
    kind: str
    id: int
    project_id: int
    team_id: int
    author_id: int | None
    title: str
    url: str
    obj: Any
    width: int | None = None
    height: int | None = None

    @property
    def is_image(self) -> bool:
        return self.kind == AssetKind.IMAGE


def _load_image(*, project: Any, asset_id: int) -> AssetRef:
    from webapp.studio.models import Asset

    try:
        asset = Asset.objects.select_related("job", "author").get(pk=asset_id, project=project)
    except (Asset.DoesNotExist, ValueError, TypeError):
        raise Http404("No such image") from None
    return AssetRef(
        kind=AssetKind.IMAGE, id=asset.pk, project_id=project.pk, team_id=project.team_id, author_id=asset.author_id,
        title=f"Image {asset.pk}: {asset.prompt[:80]}", url=asset.get_absolute_url(), obj=asset,
        width=asset.width, height=asset.height,
    )


def _load_reply(*, project: Any, asset_id: int) -> AssetRef:
    from webapp.chat.models import Message, Role
    from webapp.core.jobs import JobStatus as Status

    try:
        message = Message.objects.select_related("conversation").get(
            pk=asset_id, conversation__project=project, role=Role.ASSISTANT, status=Status.DONE
        )
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("No such reply") from None
    url = message.conversation.get_absolute_url()
    return AssetRef(
        kind=AssetKind.REPLY, id=message.pk, project_id=project.pk, team_id=project.team_id,
        author_id=message.author_id, title=f"Reply {message.pk}: {message.text[:80]}", url=url, obj=message,
    )


_LOADERS = {AssetKind.IMAGE: _load_image, AssetKind.REPLY: _load_reply}


def asset_resolve(*, project: Any, kind: str, asset_id: int) -> AssetRef:
    """The asset ``kind``/``asset_id`` of ``project``; 404 when there is none (or the kind is unknown)."""
    loader = _LOADERS.get(kind)  # type: ignore[call-overload]
    if loader is None:
        raise Http404("No such kind of asset")
    return loader(project=project, asset_id=asset_id)
