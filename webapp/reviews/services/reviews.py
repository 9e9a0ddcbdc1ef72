"""Writes of reviews: ask, give verdicts, comment, resolve, withdraw, iterate to a next version.

Every write takes the actor's ``Membership`` and asks the one gate
(``webapp.workspaces.permissions``): PermissionDenied for what the role (or
being the author) forbids, Django's
ValidationError (naming the field where there is one) for bad input or a
request that is closed. Each write adds to the audit trail in its own
transaction, and tells the people involved after the commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.core import bounds
from webapp.reviews.events import publish_review_changed
from webapp.reviews.kinds import AssetRef, asset_resolve
from webapp.reviews.models import (
    OPEN_STATES,
    AssetKind,
    Comment,
    Decision,
    ReviewRequest,
    ReviewRound,
    ReviewState,
    Verdict,
)
from webapp.workspaces.models import Membership
from webapp.workspaces.permissions import membership_may, membership_require, roles_allowed


@dataclass(frozen=True)
class Region:
    """A rectangle of an image, in image pixels."""

    x: int
    y: int
    w: int
    h: int


def _involved_user_ids(review: ReviewRequest) -> set[int]:
    """Who hears about a change: the requester, the author, and the reviewers (everyone who may, for "anyone")."""
    ids = {review.requested_by_id, review.asset_author_id}
    if review.anyone:
        ids |= set(
            Membership.objects.filter(team_id=review.project.team_id, role__in=roles_allowed("reviews.decide"))
            .values_list("user_id", flat=True)
        )
    ids |= set(review.reviewers.values_list("pk", flat=True))
    return {i for i in ids if i is not None}


def _announce(review: ReviewRequest) -> None:
    user_ids = _involved_user_ids(review)
    transaction.on_commit(
        partial(publish_review_changed, review_id=review.pk, project_id=review.project_id, user_ids=user_ids)
    )


def _sync_asset_state(review: ReviewRequest) -> None:
    """Copy the state onto the image, which the gallery filters on (studio cannot read reviews' tables)."""
    if review.asset_kind == AssetKind.IMAGE:
        from webapp.studio.models import Asset

        Asset.objects.filter(pk=review.asset_id).update(review_state=review.state)


def _audit(review: ReviewRequest, *, actor: Any, action: str, **detail: Any) -> None:
    audit_record(
        actor=actor, team_id=review.project.team_id, project_id=review.project_id, action=action,
        object_kind=review.asset_kind, object_id=review.asset_id, detail={"review": review.pk, **detail},
    )


def _check_reviewers(*, actor: Membership, reviewer_ids: list[int], authors: set[int | None]) -> list[Membership]:
    memberships = {m.user_id: m for m in Membership.objects.filter(team_id=actor.team_id, user_id__in=reviewer_ids)
                   .select_related("user")}
    chosen = []
    for user_id in dict.fromkeys(reviewer_ids):
        membership = memberships.get(user_id)
        if membership is None:
            raise ValidationError({"reviewers": f"User #{user_id} is not a member of this team."})
        if not membership_may(actor=membership, action="reviews.decide"):
            raise ValidationError(
                {"reviewers": f"{membership.user.get_username()} is a viewer here and cannot give verdicts."}
            )
        if user_id in authors:
            raise ValidationError({"reviewers": f"{membership.user.get_username()} made this asset and cannot approve it."})
        chosen.append(membership)
    return chosen


def review_request_create(
    *,
    actor: Membership,
    project: Any,
    kind: str,
    asset_ids: list[int],
    reviewer_ids: list[int],
    anyone: bool = False,
    note: str = "",
) -> list[ReviewRequest]:
    """Ask for review of one or more assets of ``project`` (one round), by named team members or anyone.

    Named reviewers must be members of the team who can give verdicts and
    must not have made the asset. An asset that is already in an open review
    cannot be asked about again. Raises ValidationError naming ``reviewers``
    or ``assets``; 404 (Http404) for an asset that is not in the project.
    """
    membership_require(actor=actor, action="reviews.request", project=project)
    bounds.check_lengths(note=(note.strip(), bounds.REVIEW_NOTE))
    if not asset_ids:
        raise ValidationError({"assets": "Choose at least one asset to review."})
    if not reviewer_ids and not anyone:
        raise ValidationError({"reviewers": "Name at least one reviewer, or ask anyone in the project."})
    refs = [asset_resolve(project=project, kind=kind, asset_id=asset_id) for asset_id in dict.fromkeys(asset_ids)]
    chosen = _check_reviewers(actor=actor, reviewer_ids=reviewer_ids, authors={ref.author_id for ref in refs})
    with transaction.atomic():
        busy = ReviewRequest.objects.filter(
            asset_kind=kind, asset_id__in=[ref.id for ref in refs], state__in=OPEN_STATES
        ).values_list("asset_id", flat=True).first()
        if busy is not None:
            raise ValidationError({"assets": f"{kind.capitalize()} {busy} is already in review."})
        review_round = ReviewRound.objects.create(project=project, requested_by=actor.user)
        created = []
        for ref in refs:
            review = ReviewRequest.objects.create(
                project=project, round=review_round, asset_kind=kind, asset_id=ref.id, asset_author_id=ref.author_id,
                requested_by=actor.user, anyone=anyone, note=note.strip(),
            )
            review.reviewers.set([m.user for m in chosen])
            _sync_asset_state(review)
            _audit(review, actor=actor.user, action=AuditAction.REVIEW_REQUESTED,
                   reviewers=[m.user.get_username() for m in chosen], anyone=anyone)
            _announce(review)
            created.append(review)
    return created


def _closed_message(review: ReviewRequest) -> str | None:
    if review.state == ReviewState.WITHDRAWN:
        return "This review was withdrawn, so it takes no more verdicts or comments."
    if review.state == ReviewState.SUPERSEDED:
        successor = getattr(review, "superseded_by", None)
        version = f"version {successor.version}" if successor is not None else "the next version"
        return f"This review moved on to {version}; give your verdict there."
    return None


def review_state_from_verdicts(*, review: ReviewRequest) -> str:
    """The state the current verdicts imply: any reject wins, then any request for changes,
    then approved when every named reviewer (or, for "anyone", somebody) approved."""
    current = list(review.verdicts.filter(is_current=True).values_list("reviewer_id", "decision"))
    decisions = {decision for _, decision in current}
    if Decision.REJECT in decisions:
        return ReviewState.REJECTED
    if Decision.REQUEST_CHANGES in decisions:
        return ReviewState.CHANGES_REQUESTED
    approvals = {reviewer for reviewer, decision in current if decision == Decision.APPROVE}
    if review.anyone:
        return ReviewState.APPROVED if approvals else ReviewState.IN_REVIEW
    named = set(review.reviewers.values_list("pk", flat=True))
    return ReviewState.APPROVED if named and named <= approvals else ReviewState.IN_REVIEW


def verdict_may_give(*, review: ReviewRequest, actor: Membership) -> bool:
    """Whether ``actor`` may give a verdict now (for showing the form; ``verdict_give`` decides)."""
    if not review.is_open or not membership_may(actor=actor, action="reviews.decide", project=review.project):
        return False
    return review.anyone or review.reviewers.filter(pk=actor.user_id).exists()


def verdict_give(*, actor: Membership, review: ReviewRequest, decision: str, comment: str = "") -> Verdict:
    """Record ``actor``'s verdict, replacing their current one (the history keeps it), and move the state.

    The request row is locked for the whole write, so two reviewers deciding
    at the same moment are applied one after the other and both count.
    """
    membership_require(actor=actor, action="reviews.decide", project=review.project)
    if decision not in Decision.values:
        raise ValidationError({"decision": f"Unknown verdict {decision!r}."})
    comment = comment.strip()
    bounds.check_lengths(comment=(comment, bounds.VERDICT_COMMENT))
    if decision == Decision.REQUEST_CHANGES and not comment:
        raise ValidationError({"comment": "Say what should change: a comment is required to request changes."})
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().select_related("project").get(pk=review.pk)
        closed = _closed_message(locked)
        if closed:
            raise ValidationError(closed)
        if not locked.anyone and not locked.reviewers.filter(pk=actor.user_id).exists():
            raise PermissionDenied("You are not a reviewer of this request.")
        if decision == Decision.APPROVE and actor.user_id in (locked.asset_author_id, locked.iterated_by_id):
            raise PermissionDenied("You made this asset, so you cannot approve it.")
        Verdict.objects.filter(review=locked, reviewer_id=actor.user_id, is_current=True).update(is_current=False)
        verdict = Verdict.objects.create(review=locked, reviewer_id=actor.user_id, decision=decision, comment=comment)
        state = review_state_from_verdicts(review=locked)
        if state != locked.state:
            ReviewRequest.objects.filter(pk=locked.pk).update(state=state, state_changed_at=timezone.now())
            locked.state = state
            _sync_asset_state(locked)
        _audit(locked, actor=actor.user, action=AuditAction.VERDICT, decision=decision, state=state)
        _announce(locked)
    review.state = locked.state
    return verdict


def _check_region(*, ref: AssetRef, region: Region) -> None:
    if not ref.is_image or ref.width is None or ref.height is None:
        raise ValidationError({"region": "Only images take region comments."})
    if region.w <= 0 or region.h <= 0:
        raise ValidationError({"region": "The region must have a width and a height."})
    if region.x < 0 or region.y < 0 or region.x + region.w > ref.width or region.y + region.h > ref.height:
        raise ValidationError(
            {"region": f"The region must lie inside the image ({ref.width} by {ref.height} pixels)."}
        )


def comment_add(
    *, actor: Membership, review: ReviewRequest, text: str, parent: Comment | None = None, region: Region | None = None
) -> Comment:
    """A comment (any role, viewers included), optionally a reply and optionally pinned to an image region."""
    membership_require(actor=actor, action="reviews.comment", project=review.project)
    text = text.strip()
    if not text:
        raise ValidationError({"text": "Write something first."})
    bounds.check_lengths(text=(text, bounds.REVIEW_COMMENT))
    closed = _closed_message(review)
    if closed:
        raise ValidationError(closed.replace("verdict", "comment"))
    if parent is not None and parent.review_id != review.pk:
        raise ValidationError({"parent": "That comment belongs to another review."})
    if region is not None:
        _check_region(ref=asset_resolve(project=review.project, kind=review.asset_kind, asset_id=review.asset_id),
                      region=region)
    with transaction.atomic():
        comment = Comment.objects.create(
            review=review, parent=parent, author=actor.user, text=text,
            region_x=region.x if region else None, region_y=region.y if region else None,
            region_w=region.w if region else None, region_h=region.h if region else None,
        )
        _audit(review, actor=actor.user, action=AuditAction.COMMENTED, comment=comment.pk,
               region=[region.x, region.y, region.w, region.h] if region else None)
        _announce(review)
    return comment


def comment_set_resolved(*, actor: Membership, comment: Comment, resolved: bool) -> Comment:
    """Resolve or reopen a comment: its author or any member who can write (``reviews.resolve``)."""
    review = comment.review
    membership_require(actor=actor, action="reviews.resolve", project=review.project, owner_id=comment.author_id)
    comment.resolved_at = timezone.now() if resolved else None
    comment.resolved_by = actor.user if resolved else None
    comment.save(update_fields=["resolved_at", "resolved_by"])
    return comment


def review_withdraw(*, actor: Membership, review: ReviewRequest) -> ReviewRequest:
    """Withdraw an open request: whoever asked, or a team admin or owner (``reviews.withdraw``)."""
    membership_require(actor=actor, action="reviews.withdraw", project=review.project, owner_id=review.requested_by_id)
    with transaction.atomic():
        updated = ReviewRequest.objects.filter(pk=review.pk, state__in=OPEN_STATES).update(
            state=ReviewState.WITHDRAWN, state_changed_at=timezone.now()
        )
        if not updated:
            raise ValidationError("This review is already closed.")
        review.state = ReviewState.WITHDRAWN
        _sync_asset_state(review)
        _audit(review, actor=actor.user, action=AuditAction.REVIEW_WITHDRAWN)
        _announce(review)
    return review


def review_iterate(*, actor: Membership, review: ReviewRequest, vary: bool, prompt: str = "") -> Any:
    """From "changes requested", make the image again ("Vary": new seed; "Re-run with changes": a new prompt).

    Returns the studio job. When its first image is stored, ``review_attach_next_version``
    moves the review onto it (see signals.py). Any role that may ``reviews.iterate``
    may do it; the next version keeps the asset's original author (who still
    may not approve it) and records ``actor`` as ``iterated_by`` (issue 23 #11).
    """
    from generation.image import ImageRequest
    from webapp.studio.models import JobOrigin
    from webapp.studio.services import job_create

    membership_require(actor=actor, action="reviews.iterate", project=review.project)
    if review.asset_kind != AssetKind.IMAGE:
        raise ValidationError("Only images can be made again from a review.")
    if review.state != ReviewState.CHANGES_REQUESTED:
        raise ValidationError("A new version can be made once a reviewer has requested changes.")
    ref = asset_resolve(project=review.project, kind=review.asset_kind, asset_id=review.asset_id)
    params = dict(ref.obj.job.params)
    if vary:
        params["seed"] = None
    if prompt.strip():
        params["prompt"] = prompt.strip()
    with transaction.atomic():
        locked = ReviewRequest.objects.select_for_update().get(pk=review.pk)
        if locked.next_job_id and locked.next_job.is_live:  # type: ignore[union-attr]
            raise ValidationError("A new version is already being made.")
        job = job_create(
            project=review.project, actor=actor, request=ImageRequest.from_dict(params),
            origin=JobOrigin.VARY if vary else JobOrigin.RERUN, source_asset=ref.obj,
        )
        ReviewRequest.objects.filter(pk=review.pk).update(next_job=job)
        review.next_job = job
    return job


def review_attach_next_version(*, asset: Any) -> ReviewRequest | None:
    """Move the review whose re-run made ``asset`` onto it, as the next version; None if none waits.

    Runs in the worker, inside the transaction that stores the image. The old
    request is marked superseded and keeps its verdicts and comments. The new
    one keeps the old one's asset author: whoever ran the re-run (the image's
    author) is recorded as ``iterated_by``, and neither of them may approve it.
    """
    if asset.batch_index != 0:
        return None
    old = (
        ReviewRequest.objects.select_for_update().select_related("project")
        .filter(next_job_id=asset.job_id, state=ReviewState.CHANGES_REQUESTED).first()
    )
    if old is None:
        return None
    new = ReviewRequest.objects.create(
        project=old.project, round=old.round, asset_kind=AssetKind.IMAGE, asset_id=asset.pk,
        asset_author_id=old.asset_author_id, iterated_by_id=asset.author_id, requested_by_id=old.requested_by_id,
        anyone=old.anyone, note=old.note, version=old.version + 1, previous=old,
    )
    new.reviewers.set(old.reviewers.all())
    ReviewRequest.objects.filter(pk=old.pk).update(state=ReviewState.SUPERSEDED, state_changed_at=timezone.now())
    old.state = ReviewState.SUPERSEDED
    _sync_asset_state(old)
    _sync_asset_state(new)
    _audit(new, actor=None, action=AuditAction.REVIEW_REQUESTED, previous_version=old.pk, version=new.version)
    _announce(new)
    return new


# --- "Revise this region" (issue 19) ------------------------------------------------

MAX_LINEAGE_DEPTH = 50


def _region_comment(*, review: ReviewRequest, comment: Comment) -> None:
    if comment.review_id != review.pk:
        raise ValidationError({"comment": "That comment is not on this review."})
    if not comment.has_region:
        raise ValidationError({"comment": "Only a comment pinned to a region can be revised."})
    if review.asset_kind != AssetKind.IMAGE:
        raise ValidationError({"comment": "Only images can be revised."})
    if review.state not in OPEN_STATES:
        raise ValidationError("This review is closed.")


def revision_start(*, actor: Membership, review: ReviewRequest, comment: Comment) -> str:
    """Start "Revise this region": check, audit, and return the studio's edit URL for it.

    The edit page opens on the reviewed image in inpaint mode, with the comment's
    rectangle as the mask and its text as the prompt; the job's result page then
    offers to submit its image as the next version (``revision_submit``).
    """
    from urllib.parse import urlencode

    from django.urls import reverse

    membership_require(actor=actor, action="reviews.iterate", project=review.project)
    _region_comment(review=review, comment=comment)
    _audit(review, actor=actor.user, action=AuditAction.COMMENTED, comment=comment.pk, step="revision_started")
    query = urlencode({
        "asset": review.asset_id, "mode": "inpaint", "prompt": comment.text[:2000],
        "region": f"{comment.region_x},{comment.region_y},{comment.region_w},{comment.region_h}",
        "review": review.pk, "comment": comment.pk,
    })
    return f"{reverse('studio:edit', kwargs={'project_id': review.project_id})}?{query}"


def _descends_from(asset: Any, ancestor_id: int) -> bool:
    from webapp.studio.models import Asset

    parent_id, depth = asset.parent_id, 0
    while parent_id is not None and depth < MAX_LINEAGE_DEPTH:
        if parent_id == ancestor_id:
            return True
        parent_id = Asset.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
        depth += 1
    return False


def revision_submit(*, actor: Membership, review: ReviewRequest, comment: Comment, asset_id: int) -> ReviewRequest:
    """Submit an edit of the reviewed image as the review's next version, resolving ``comment`` by it.

    The image must be in the project and descend (by its lineage) from the reviewed
    image. The old request is superseded and keeps its verdicts and comments; the
    new one keeps the asset's author (who still may not approve it) and records the
    actor as ``iterated_by``.
    """
    from webapp.studio.models import Asset

    membership_require(actor=actor, action="reviews.iterate", project=review.project)
    _region_comment(review=review, comment=comment)
    asset = Asset.objects.filter(pk=asset_id, project_id=review.project_id).first()
    if asset is None or asset.pk == review.asset_id or not _descends_from(asset, review.asset_id):
        raise ValidationError({"asset": "Choose an edit of the reviewed image from this project."})
    with transaction.atomic():
        old = ReviewRequest.objects.select_for_update().select_related("project").get(pk=review.pk)
        if old.state not in OPEN_STATES:
            raise ValidationError("This review is closed.")
        new = ReviewRequest.objects.create(
            project=old.project, round=old.round, asset_kind=AssetKind.IMAGE, asset_id=asset.pk,
            asset_author_id=old.asset_author_id, iterated_by_id=actor.user_id, requested_by_id=old.requested_by_id,
            anyone=old.anyone, note=old.note, version=old.version + 1, previous=old,
        )
        new.reviewers.set(old.reviewers.all())
        ReviewRequest.objects.filter(pk=old.pk).update(state=ReviewState.SUPERSEDED, state_changed_at=timezone.now())
        old.state = ReviewState.SUPERSEDED
        Comment.objects.filter(pk=comment.pk).update(resolved_at=timezone.now(), resolved_by=actor.user, resolved_in=new)
        _sync_asset_state(old)
        _sync_asset_state(new)
        _audit(new, actor=actor.user, action=AuditAction.REVIEW_REQUESTED, previous_version=old.pk,
               version=new.version, comment=comment.pk, step="revision_submitted")
        _audit(old, actor=actor.user, action=AuditAction.COMMENTED, comment=comment.pk, resolved_in=new.pk,
               step="comment_resolved_by_version")
        _announce(new)
    return new
