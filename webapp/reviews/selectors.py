"""Reads of reviews. Everything is reached through the user's membership: outsiders get 404."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from webapp.chat.markdown import render_markdown
from webapp.core.sql import Precompiled, precompile
from webapp.reviews.kinds import AssetRef, asset_resolve
from webapp.reviews.models import (
    OPEN_STATES,
    PENDING_STATES,
    ApprovedExport,
    Comment,
    ReviewRequest,
    ReviewRound,
    ReviewState,
    Verdict,
)
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import roles_allowed
from webapp.workspaces.selectors import project_get_for_member


def review_get_for_member(*, user: Any, project_id: int, review_id: int) -> ReviewRequest:
    """A review of a project the user belongs to, with ``review.project.membership`` set; 404 otherwise."""
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        review = ReviewRequest.objects.select_related("requested_by", "asset_author", "round").get(
            pk=review_id, project=project
        )
    except (ReviewRequest.DoesNotExist, ValueError, TypeError):
        raise Http404("No such review") from None
    review.project = project
    return review


def review_asset(*, review: ReviewRequest) -> AssetRef:
    return asset_resolve(project=review.project, kind=review.asset_kind, asset_id=review.asset_id)


def review_for_asset(*, project: Any, kind: str, asset_id: int) -> ReviewRequest | None:
    """The latest review of an asset (open or not), or None."""
    return (
        ReviewRequest.objects.filter(project=project, asset_kind=kind, asset_id=asset_id)
        .select_related("requested_by").order_by("-created_at", "-id").first()
    )


def review_chain(*, review: ReviewRequest) -> list[ReviewRequest]:
    """Every version of the reviewed asset, v1 first: the review and its predecessors and successors."""
    chain = [review]
    current = review
    while current.previous_id is not None:
        current = ReviewRequest.objects.get(pk=current.previous_id)
        chain.insert(0, current)
    current = review
    while True:
        successor = ReviewRequest.objects.filter(previous=current).first()
        if successor is None:
            break
        chain.append(successor)
        current = successor
    return chain


def images_not_in_review(*, project: Any, limit: int = 48) -> list[Any]:
    """The project's latest images that are in no open review (for asking about a selection)."""
    from webapp.studio.models import Asset

    busy = ReviewRequest.objects.filter(project=project, asset_kind="image", state__in=OPEN_STATES).values("asset_id")
    return list(Asset.objects.filter(project=project).exclude(pk__in=busy).order_by("-created_at", "-id")[:limit])


def review_list(*, project: Any, state: str = "") -> QuerySet[ReviewRequest]:
    reviews = ReviewRequest.objects.filter(project=project).select_related("requested_by")
    if state:
        reviews = reviews.filter(state=state)
    return reviews.order_by("-state_changed_at", "-id")


def verdict_history(*, review: ReviewRequest) -> list[Verdict]:
    return list(review.verdicts.select_related("reviewer").order_by("created_at", "id"))


def verdicts_current(*, review: ReviewRequest) -> list[Verdict]:
    return list(review.verdicts.filter(is_current=True).select_related("reviewer").order_by("created_at", "id"))


@dataclass
class CommentNode:
    comment: Comment
    html: str
    replies: list[CommentNode] = field(default_factory=list)


def comment_tree(*, review: ReviewRequest) -> list[CommentNode]:
    """The review's comments as threads, oldest first, each with its markdown rendered and sanitized."""
    nodes = {c.pk: CommentNode(comment=c, html=render_markdown(c.text))
             for c in review.comments.select_related("author", "resolved_by").order_by("created_at", "id")}
    roots: list[CommentNode] = []
    for node in nodes.values():
        parent = nodes.get(node.comment.parent_id) if node.comment.parent_id else None
        (parent.replies if parent else roots).append(node)
    return roots


def comment_get(*, review: ReviewRequest, comment_id: int) -> Comment:
    try:
        comment = review.comments.get(pk=comment_id)
    except (Comment.DoesNotExist, ValueError, TypeError):
        raise Http404("No such comment") from None
    comment.review = review
    return comment


def round_get(*, project: Any, round_id: int) -> ReviewRound:
    try:
        return ReviewRound.objects.get(pk=round_id, project=project)
    except (ReviewRound.DoesNotExist, ValueError, TypeError):
        raise Http404("No such review round") from None


def _writer_team_ids(user: Any) -> Any:
    return Membership.objects.filter(user=user, role__in=roles_allowed("reviews.decide")).values("team_id")


def inbox_waiting(*, user: Any) -> QuerySet[ReviewRequest]:
    """Open requests that wait for ``user``'s verdict: named (or "anyone"), not theirs, not yet decided by them."""
    if user is None or not user.is_authenticated:
        return ReviewRequest.objects.none()
    decided = Verdict.objects.filter(reviewer=user, is_current=True).values("review_id")
    return (
        ReviewRequest.objects.filter(state__in=PENDING_STATES, project__team_id__in=_writer_team_ids(user))
        .filter(Q(reviewers=user) | Q(anyone=True))
        .exclude(asset_author=user)
        .exclude(iterated_by=user)
        .exclude(pk__in=decided)
        .select_related("project", "requested_by")
        .distinct()
        .order_by("-state_changed_at", "-id")
    )


def inbox_submitted(*, user: Any, limit: int = 30) -> list[ReviewRequest]:
    """What ``user`` asked to be reviewed, the latest change of state first (superseded versions left out)."""
    if user is None or not user.is_authenticated:
        return []
    return list(
        ReviewRequest.objects.filter(requested_by=user, project__team__memberships__user=user)
        .exclude(state=ReviewState.SUPERSEDED)
        .select_related("project")
        .order_by("-state_changed_at", "-id")[:limit]
    )


_USER_MARK = 9_876_543_210_555  # stands for the user's id in the compiled count below


@cache
def _inbox_count_query() -> Precompiled:
    from django.contrib.auth import get_user_model

    waiting = inbox_waiting(user=get_user_model()(pk=_USER_MARK)).order_by().values("pk")
    return precompile(waiting, wrap="SELECT COUNT(*) FROM ({}) AS waiting", user=_USER_MARK)


def inbox_count(*, user: Any) -> int:
    """How many requests wait for ``user``'s verdict (the nav's badge, on every page): ``inbox_waiting``
    counted, its SQL compiled once per process (compiling it took longer than running it)."""
    if user is None or not user.is_authenticated:
        return 0
    return int(_inbox_count_query().rows(user=user.pk)[0][0])


def export_list(*, project: Any, limit: int = 10) -> list[ApprovedExport]:
    return list(ApprovedExport.objects.filter(project=project).select_related("requested_by")[:limit])


def export_get_for_member(*, user: Any, project_id: int, export_id: int) -> ApprovedExport:
    project = project_get_for_member(user=user, project_id=project_id)
    try:
        export = ApprovedExport.objects.select_related("requested_by").get(pk=export_id, project=project)
    except (ApprovedExport.DoesNotExist, ValueError, TypeError):
        raise Http404("No such export") from None
    export.project = project
    return export
