from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from tests.helpers import finish_job, membership
from webapp.audit.models import AuditAction, AuditEntry
from webapp.chat.models import Conversation, Message, Role
from webapp.core.jobs import JobStatus as Status
from webapp.reviews import selectors, services
from webapp.reviews.models import AssetKind, Comment, ReviewRequest, Verdict
from webapp.reviews.services import Region
from webapp.studio.models import Asset, Job, JobOrigin

pytestmark = pytest.mark.django_db


def _ask(project, requester, asset, reviewers=(), anyone=False) -> ReviewRequest:
    (review,) = services.review_request_create(
        actor=membership(requester, project), project=project, kind=AssetKind.IMAGE, asset_ids=[asset.pk],
        reviewer_ids=[u.pk for u in reviewers], anyone=anyone,
    )
    return review


def _verdict(review, user, decision, comment=""):
    return services.verdict_give(actor=membership(user, review.project), review=review, decision=decision,
                                 comment=comment)


def _state(review) -> str:
    return ReviewRequest.objects.get(pk=review.pk).state


# --- asking ---------------------------------------------------------------------------


def test_asking_for_review_starts_in_review_and_is_audited(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    assert (review.state, review.asset_author, review.requested_by) == ("in_review", bob, bob)
    assert list(review.reviewers.all()) == [alice]
    assert Asset.objects.get(pk=image.pk).review_state == "in_review"
    entry = AuditEntry.objects.get(action=AuditAction.REVIEW_REQUESTED)
    assert (entry.actor_name, entry.object_kind, entry.object_id, entry.detail["reviewers"]) == (
        "bob", "image", image.pk, ["alice"])


def test_naming_an_outsider_as_reviewer_is_an_error_on_the_reviewers_field(project, image, bob, mallory):
    with pytest.raises(ValidationError) as error:
        _ask(project, bob, image, [mallory])
    assert "reviewers" in error.value.message_dict
    assert "not a member" in error.value.message_dict["reviewers"][0]
    assert not ReviewRequest.objects.exists()


def test_naming_a_viewer_as_reviewer_is_an_error(project, image, bob, carol):
    with pytest.raises(ValidationError) as error:
        _ask(project, bob, image, [carol])
    assert "viewer" in error.value.message_dict["reviewers"][0]


def test_naming_the_author_as_reviewer_is_an_error(project, image, alice, bob):
    with pytest.raises(ValidationError) as error:
        _ask(project, alice, image, [bob])
    assert "made this asset" in error.value.message_dict["reviewers"][0]


def test_asking_nobody_is_an_error(project, image, bob):
    with pytest.raises(ValidationError) as error:
        _ask(project, bob, image, [])
    assert "reviewers" in error.value.message_dict


def test_a_viewer_cannot_ask_for_review(project, image, alice, carol):
    with pytest.raises(PermissionDenied):
        _ask(project, carol, image, [alice])


def test_an_outsider_cannot_ask_for_review(project, other_project, image, mallory):
    with pytest.raises(PermissionDenied):
        services.review_request_create(actor=membership(mallory, other_project), project=project,
                                       kind=AssetKind.IMAGE, asset_ids=[image.pk], reviewer_ids=[], anyone=True)


def test_an_asset_of_another_project_is_not_found(project, other_project, make_image, mallory, bob, alice):
    foreign = make_image(project=other_project, author=mallory)
    with pytest.raises(Http404):
        _ask(project, bob, foreign, [alice])


def test_an_asset_already_in_review_cannot_be_asked_again(project, image, alice, bob):
    _ask(project, bob, image, [alice])
    with pytest.raises(ValidationError) as error:
        _ask(project, bob, image, [alice])
    assert "assets" in error.value.message_dict


def test_a_selection_of_images_is_one_round(project, make_image, alice, bob):
    first, second = make_image(project=project, author=bob), make_image(project=project, author=bob)
    reviews = services.review_request_create(
        actor=membership(bob, project), project=project, kind=AssetKind.IMAGE, asset_ids=[first.pk, second.pk],
        reviewer_ids=[alice.pk],
    )
    assert len(reviews) == 2 and reviews[0].round_id == reviews[1].round_id


def test_a_chat_reply_can_be_reviewed(project, alice, bob):
    conversation = Conversation.objects.create(project=project, created_by=bob)
    question = Message.objects.create(conversation=conversation, role=Role.USER, author=bob, text="Slogan?")
    reply = Message.objects.create(conversation=conversation, parent=question, role=Role.ASSISTANT, author=bob,
                                   text="**Make it shine**", status=Status.DONE)
    (review,) = services.review_request_create(actor=membership(bob, project), project=project,
                                               kind=AssetKind.REPLY, asset_ids=[reply.pk], reviewer_ids=[alice.pk])
    _verdict(review, alice, "approve")
    assert _state(review) == "approved"
    with pytest.raises(ValidationError) as error:
        services.comment_add(actor=membership(alice, project), review=review, text="here", region=Region(0, 0, 1, 1))
    assert "region" in error.value.message_dict


# --- verdicts and the state machine -----------------------------------------------------


def test_the_only_named_reviewer_approving_approves(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    _verdict(review, alice, "approve")
    assert _state(review) == "approved"
    assert Asset.objects.get(pk=image.pk).review_state == "approved"


def test_every_named_reviewer_must_approve(project, image, alice, bob, dave):
    review = _ask(project, bob, image, [alice, dave])
    _verdict(review, alice, "approve")
    assert _state(review) == "in_review"
    _verdict(review, dave, "approve")
    assert _state(review) == "approved"


def test_one_approval_is_enough_when_anyone_was_asked(project, image, dave, bob):
    review = _ask(project, bob, image, anyone=True)
    _verdict(review, dave, "approve")
    assert _state(review) == "approved"


def test_requesting_changes_needs_a_comment(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    with pytest.raises(ValidationError) as error:
        _verdict(review, alice, "request_changes", "  ")
    assert "comment" in error.value.message_dict
    assert not Verdict.objects.exists()


def test_request_changes_then_approve_keeps_the_history(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    _verdict(review, alice, "request_changes", "Make it bluer")
    assert _state(review) == "changes_requested"
    _verdict(review, alice, "approve")
    assert _state(review) == "approved"
    history = list(Verdict.objects.filter(review=review).values_list("decision", "is_current"))
    assert history == [("request_changes", False), ("approve", True)]


def test_a_rejection_wins_over_approvals(project, image, alice, bob, dave):
    review = _ask(project, bob, image, [alice, dave])
    _verdict(review, alice, "approve")
    _verdict(review, dave, "reject")
    assert _state(review) == "rejected"
    _verdict(review, dave, "approve")
    assert _state(review) == "approved"


def test_the_author_cannot_approve_their_own_image(project, image, bob):
    review = _ask(project, bob, image, anyone=True)
    with pytest.raises(PermissionDenied, match="made this asset"):
        _verdict(review, bob, "approve")
    assert _state(review) == "in_review"


def test_a_member_who_was_not_asked_gives_no_verdict(project, image, alice, bob, dave):
    review = _ask(project, bob, image, [alice])
    with pytest.raises(PermissionDenied):
        _verdict(review, dave, "approve")


def test_a_viewer_gives_no_verdict(project, image, bob, carol):
    review = _ask(project, bob, image, anyone=True)
    with pytest.raises(PermissionDenied, match="Viewers"):
        _verdict(review, carol, "approve")
    assert not Verdict.objects.exists()


def test_an_unknown_decision_names_the_field(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    with pytest.raises(ValidationError) as error:
        _verdict(review, alice, "maybe")
    assert "decision" in error.value.message_dict


# --- withdraw ----------------------------------------------------------------------------


def test_the_requester_withdraws_and_verdicts_are_then_refused_clearly(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    services.review_withdraw(actor=membership(bob, project), review=review)
    assert _state(review) == "withdrawn"
    with pytest.raises(ValidationError, match="withdrawn"):
        _verdict(ReviewRequest.objects.get(pk=review.pk), alice, "approve")
    with pytest.raises(ValidationError, match="withdrawn"):
        services.comment_add(actor=membership(alice, project), review=ReviewRequest.objects.get(pk=review.pk), text="x")


def test_another_member_cannot_withdraw_but_an_admin_can(project, image, alice, bob, dave):
    review = _ask(project, bob, image, [alice])
    with pytest.raises(PermissionDenied):
        services.review_withdraw(actor=membership(dave, project), review=review)
    services.review_withdraw(actor=membership(alice, project), review=review)
    assert _state(review) == "withdrawn"


def test_a_withdrawn_asset_can_be_asked_about_again(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    services.review_withdraw(actor=membership(bob, project), review=review)
    assert _ask(project, bob, image, [alice]).state == "in_review"


# --- comments ----------------------------------------------------------------------------


def test_a_viewer_pins_a_region_comment_inside_the_image(project, image, alice, bob, carol):
    review = _ask(project, bob, image, [alice])
    comment = services.comment_add(actor=membership(carol, project), review=review, text="This *edge*",
                                   region=Region(2, 3, 30, 29))
    assert (comment.region_x, comment.region_y, comment.region_w, comment.region_h) == (2, 3, 30, 29)
    assert AuditEntry.objects.filter(action=AuditAction.COMMENTED, actor_name="carol").exists()


@pytest.mark.parametrize("region", [Region(0, 0, 33, 10), Region(10, 10, 10, 23), Region(-1, 0, 5, 5),
                                    Region(0, 0, 0, 5)])
def test_a_region_outside_the_image_is_refused(project, image, alice, bob, region):
    review = _ask(project, bob, image, [alice])
    with pytest.raises(ValidationError) as error:
        services.comment_add(actor=membership(alice, project), review=review, text="here", region=region)
    assert "region" in error.value.message_dict
    assert not Comment.objects.exists()


def test_comments_thread_render_sanitized_markdown_and_resolve(project, image, alice, bob, carol):
    review = _ask(project, bob, image, [alice])
    root = services.comment_add(actor=membership(carol, project), review=review,
                                text="**Bold** <script>alert(1)</script>")
    services.comment_add(actor=membership(bob, project), review=review, text="Fixed", parent=root)
    tree = selectors.comment_tree(review=review)
    assert len(tree) == 1 and tree[0].replies[0].comment.text == "Fixed"
    assert "<strong>Bold</strong>" in tree[0].html and "<script>" not in tree[0].html
    services.comment_set_resolved(actor=membership(bob, project), comment=root, resolved=True)
    assert Comment.objects.get(pk=root.pk).resolved_by == bob
    services.comment_set_resolved(actor=membership(carol, project), comment=root, resolved=False)
    assert Comment.objects.get(pk=root.pk).resolved_at is None


def test_a_reply_to_a_comment_of_another_review_is_refused(project, make_image, alice, bob):
    first = _ask(project, bob, make_image(project=project, author=bob), [alice])
    second = _ask(project, bob, make_image(project=project, author=bob), [alice])
    parent = services.comment_add(actor=membership(alice, project), review=first, text="one")
    with pytest.raises(ValidationError) as error:
        services.comment_add(actor=membership(alice, project), review=second, text="two", parent=parent)
    assert "parent" in error.value.message_dict


def test_a_viewer_cannot_resolve_someone_elses_comment(project, image, alice, bob, carol):
    review = _ask(project, bob, image, [alice])
    comment = services.comment_add(actor=membership(alice, project), review=review, text="hm")
    with pytest.raises(PermissionDenied):
        services.comment_set_resolved(actor=membership(carol, project), comment=comment, resolved=True)


# --- iterating to the next version ---------------------------------------------------------


def test_a_new_version_needs_changes_requested(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    with pytest.raises(ValidationError, match="requested changes"):
        services.review_iterate(actor=membership(bob, project), review=review, vary=True)


def test_vary_makes_the_next_version_and_the_review_moves_to_it(project, image, alice, bob, carol):
    review = _ask(project, bob, image, [alice])
    services.comment_add(actor=membership(carol, project), review=review, text="Edge", region=Region(0, 0, 8, 8))
    _verdict(review, alice, "request_changes", "Try another seed")
    review.refresh_from_db()
    job = services.review_iterate(actor=membership(bob, project), review=review, vary=True)
    assert (job.origin, job.source_asset_id) == (JobOrigin.VARY, image.pk)
    assert job.params["seed"] != image.seed or job.params["seed"] is not None
    with pytest.raises(ValidationError, match="already being made"):
        services.review_iterate(actor=membership(bob, project), review=ReviewRequest.objects.get(pk=review.pk),
                                vary=True)

    v2_asset = finish_job(job, colour="blue")
    old = ReviewRequest.objects.get(pk=review.pk)
    new = ReviewRequest.objects.get(previous=old)
    assert (old.state, new.state, new.version, new.asset_id) == ("superseded", "in_review", 2, v2_asset.pk)
    assert list(new.reviewers.all()) == [alice] and new.round_id == old.round_id
    assert [r.pk for r in selectors.review_chain(review=old)] == [old.pk, new.pk]
    # The old version keeps its verdicts and comments, and takes no more.
    assert old.verdicts.count() == 1 and old.comments.count() == 1
    assert new.verdicts.count() == 0 and new.comments.count() == 0
    with pytest.raises(ValidationError, match="moved on to version 2"):
        _verdict(old, alice, "approve")
    _verdict(new, alice, "approve")
    assert _state(new) == "approved"
    assert dict(Asset.objects.values_list("pk", "review_state")) == {image.pk: "superseded", v2_asset.pk: "approved"}


def test_rerun_with_changes_uses_the_new_prompt_and_the_same_seed(project, image, alice, bob):
    review = _ask(project, bob, image, [alice])
    _verdict(review, alice, "request_changes", "Make it a square")
    job = services.review_iterate(actor=membership(bob, project), review=review, vary=False, prompt="a red square")
    assert (job.params["prompt"], job.params["seed"], job.origin) == ("a red square", image.seed, JobOrigin.RERUN)


def test_an_unrelated_job_does_not_move_a_review(project, image, make_image, alice, bob):
    review = _ask(project, bob, image, [alice])
    _verdict(review, alice, "request_changes", "Again")
    make_image(project=project, author=bob)
    assert _state(review) == "changes_requested"
    assert Job.objects.count() == 2


def test_a_viewer_cannot_make_a_new_version(project, image, alice, bob, carol):
    review = _ask(project, bob, image, [alice])
    _verdict(review, alice, "request_changes", "Again")
    with pytest.raises(PermissionDenied):
        services.review_iterate(actor=membership(carol, project), review=ReviewRequest.objects.get(pk=review.pk),
                                vary=True)


# --- the inbox -----------------------------------------------------------------------------


def test_the_inbox_lists_what_waits_for_my_verdict_and_what_i_submitted(project, image, alice, bob, dave):
    review = _ask(project, bob, image, [alice])
    assert list(selectors.inbox_waiting(user=alice)) == [review]
    assert selectors.inbox_count(user=dave) == 0
    assert selectors.inbox_count(user=bob) == 0
    _verdict(review, alice, "approve")
    assert selectors.inbox_count(user=alice) == 0
    assert [(r.pk, r.state) for r in selectors.inbox_submitted(user=bob)] == [(review.pk, "approved")]


def test_the_inbox_forgets_a_team_the_user_left(project, image, alice, bob, dave):
    _ask(project, bob, image, anyone=True)
    assert selectors.inbox_count(user=dave) == 1
    membership(dave, project).delete()
    assert selectors.inbox_count(user=dave) == 0
