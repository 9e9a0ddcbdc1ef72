"""Issue 23 finding 11: the write rules that depend on who made a thing, performed as attacks.

- Any member could delete any conversation (replies under review included) and stop another member's reply:
  now only its author, an admin or an owner may (``chat.delete``, ``chat.stop`` in
  ``webapp.workspaces.permissions``).
- Any member could "iterate" another's review and become the author of the next version, which let the real
  author approve their own work: the next version keeps the original author and records who iterated, and
  neither of them may approve it.

The rows are made directly (not through the chat services), so the attacks run unchanged against any version
of the services; each refused write is a 403 that leaves the data as it was.
"""
from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from tests.factories import MembershipFactory, UserFactory
from tests.helpers import finish_job, membership
from webapp.chat.models import Conversation, Message, Role
from webapp.core.jobs import JobStatus
from webapp.prompts.models import PromptRecord
from webapp.reviews import services as review_services
from webapp.reviews.models import ReviewRequest
from webapp.workspaces.models import Role as TeamRole

pytestmark = pytest.mark.django_db



@pytest.fixture
def erin(team):
    """An admin of alice's team."""
    user = UserFactory(username="erin")
    MembershipFactory(team=team, user=user, role=TeamRole.ADMIN)
    return user


def _conversation(project, author, *, reply_status: str = JobStatus.DONE) -> tuple[Conversation, Message]:
    """A conversation that ``author`` started, with their prompt and a reply in ``reply_status``."""
    conversation = Conversation.objects.create(project=project, created_by=author, title=f"{author.username}'s plans")
    record = PromptRecord.objects.create(project=project, author=author, kind="chat", text="hi")
    prompt = Message.objects.create(conversation=conversation, role=Role.USER, author=author, text="hi", prompt=record)
    reply = Message.objects.create(conversation=conversation, parent=prompt, role=Role.ASSISTANT, author=author,
                                   text="hello" if reply_status == JobStatus.DONE else "", status=reply_status)
    return conversation, reply


def _delete(client, conversation):
    return client.post(reverse("chat:conversation_delete", args=[conversation.project_id, conversation.pk]))


def _stop(client, reply):
    return client.post(reverse("chat:message_stop", args=[reply.conversation.project_id, reply.pk]))


# --- deleting a conversation ---------------------------------------------------------------------


def test_a_member_cannot_delete_a_conversation_someone_else_started(project, alice, bob, client_for):
    conversation, _ = _conversation(project, alice)
    assert _delete(client_for(bob), conversation).status_code == 403
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_a_member_cannot_delete_a_conversation_whose_reply_is_under_review(project, alice, bob, dave, client_for):
    conversation, reply = _conversation(project, alice)
    review_services.review_request_create(actor=membership(alice, project), project=project, kind="reply",
                                          asset_ids=[reply.pk], reviewer_ids=[dave.pk])
    assert _delete(client_for(bob), conversation).status_code == 403
    assert Message.objects.filter(pk=reply.pk).exists()


def test_the_author_an_admin_and_an_owner_may_delete(project, alice, bob, erin, client_for):
    own, _ = _conversation(project, bob)
    by_admin, _ = _conversation(project, bob)
    by_owner, _ = _conversation(project, bob)
    for user, conversation in ((bob, own), (erin, by_admin), (alice, by_owner)):
        assert _delete(client_for(user), conversation).status_code == 302, user.username
    assert not Conversation.objects.exists()


# --- stopping a reply ----------------------------------------------------------------------------


def test_a_member_cannot_stop_someone_elses_reply(project, alice, bob, client_for, no_enqueue):
    _, reply = _conversation(project, alice, reply_status=JobStatus.QUEUED)
    assert _stop(client_for(bob), reply).status_code == 403
    reply.refresh_from_db()
    assert reply.status == JobStatus.QUEUED


def test_the_author_an_admin_and_an_owner_may_stop(project, alice, bob, erin, client_for, no_enqueue, redis_server):
    for user in (bob, erin, alice):
        _, reply = _conversation(project, bob, reply_status=JobStatus.QUEUED)
        assert _stop(client_for(user), reply).status_code in (204, 302), user.username
        reply.refresh_from_db()
        assert reply.status == JobStatus.STOPPED, user.username


# --- iterating a review ---------------------------------------------------------------------------


def _changes_requested(project, image, author, reviewer) -> ReviewRequest:
    """``author``'s image in an "anyone" review, where ``reviewer`` asked for changes."""
    [review] = review_services.review_request_create(
        actor=membership(author, project), project=project, kind="image", asset_ids=[image.pk], reviewer_ids=[],
        anyone=True,
    )
    review_services.verdict_give(actor=membership(reviewer, project), review=review, decision="request_changes",
                                 comment="Warmer, please")
    return ReviewRequest.objects.get(pk=review.pk)


def test_iterating_keeps_the_original_author_and_records_who_iterated(project, image, alice, bob, dave):
    review = _changes_requested(project, image, bob, alice)
    job = review_services.review_iterate(actor=membership(dave, project), review=review, vary=True)
    finish_job(job, colour="blue")  # the worker stores the first image: the review moves onto it
    new = ReviewRequest.objects.get(previous=review)
    assert new.asset_author_id == bob.pk, "the next version is still bob's work"
    assert new.iterated_by_id == dave.pk


def test_the_author_cannot_approve_their_work_after_someone_else_iterated_it(project, image, alice, bob, dave):
    review = _changes_requested(project, image, bob, alice)
    finish_job(review_services.review_iterate(actor=membership(dave, project), review=review, vary=True))
    new = ReviewRequest.objects.get(previous=review)
    with pytest.raises(PermissionDenied):
        review_services.verdict_give(actor=membership(bob, project), review=new, decision="approve")
    assert ReviewRequest.objects.get(pk=new.pk).state == "in_review"


def test_whoever_iterated_cannot_approve_the_version_they_made(project, image, alice, bob, dave):
    review = _changes_requested(project, image, bob, alice)
    finish_job(review_services.review_iterate(actor=membership(dave, project), review=review, vary=True))
    new = ReviewRequest.objects.get(previous=review)
    with pytest.raises(PermissionDenied):
        review_services.verdict_give(actor=membership(dave, project), review=new, decision="approve")
    assert ReviewRequest.objects.get(pk=new.pk).state == "in_review"
    review_services.verdict_give(actor=membership(alice, project), review=new, decision="approve")
    assert ReviewRequest.objects.get(pk=new.pk).state == "approved"
