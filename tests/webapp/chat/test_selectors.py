from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from tests.factories import membership_of
from tests.helpers import short_settings
from webapp.chat import selectors, services
from webapp.chat.models import Message
from webapp.core.jobs import JobStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_enqueue")]


def _done(message, text):
    Message.objects.filter(pk=message.pk).update(status=JobStatus.DONE, text=text)
    message.refresh_from_db()
    return message


def _send(conversation, user, text, parent=None):
    return services.message_send(conversation=conversation, actor=membership_of(user), text=text, parent=parent,
                                 reply_settings=short_settings())


def test_conversation_get_for_member_gives_the_membership(conversation, carol):
    found = selectors.conversation_get_for_member(user=carol, conversation_id=conversation.pk)
    assert found == conversation and found.project.membership.role == "viewer"


@pytest.mark.parametrize("who", ["mallory", "anonymous"])
def test_conversation_get_for_member_hides_it_from_an_outsider(who, conversation, mallory):
    user = mallory if who == "mallory" else AnonymousUser()
    with pytest.raises(Http404):
        selectors.conversation_get_for_member(user=user, conversation_id=conversation.pk)


def test_conversation_get_for_member_lets_a_viewer_see_and_leaves_the_write_to_the_service(conversation, carol):
    seen = selectors.conversation_get_for_member(user=carol, conversation_id=conversation.pk)
    assert seen.project.membership.role == "viewer"
    with pytest.raises(PermissionDenied):
        services.conversation_rename(conversation=seen, actor=seen.project.membership, title="Mine now")
    conversation.refresh_from_db()
    assert conversation.title != "Mine now"


def test_conversation_get_for_member_checks_the_project_in_the_url(conversation, other_project, mallory, alice):
    with pytest.raises(Http404):
        selectors.conversation_get_for_member(user=alice, conversation_id=conversation.pk, project_id=other_project.pk)


def test_message_get_for_member_hides_another_projects_message(conversation, project, other_project, bob, mallory):
    reply = _send(conversation, bob, "hi")
    with pytest.raises(Http404):
        selectors.message_get_for_member(user=mallory, project_id=other_project.pk, message_id=reply.pk)
    with pytest.raises(Http404):
        selectors.message_get_for_member(user=mallory, project_id=project.pk, message_id=reply.pk)


def test_thread_follows_the_newest_branch_and_counts_siblings(conversation, bob):
    first = _done(_send(conversation, bob, "Q1"), "A1")
    second = _done(services.reply_regenerate(message=first, actor=membership_of(bob), reply_settings=short_settings()), "A1 again")
    thread = selectors.conversation_thread(conversation=conversation)
    assert [item.message.text for item in thread] == ["Q1", "A1 again"]
    assert (thread[1].position, thread[1].count, thread[1].previous_leaf_id, thread[1].next_leaf_id) == (2, 2, first.pk, None)
    older = selectors.conversation_thread(conversation=conversation, leaf_id=first.pk)
    assert older[1].message == first and (older[1].position, older[1].next_leaf_id) == (1, second.pk)


def test_sibling_navigation_lands_on_the_newest_leaf_of_the_branch(conversation, bob):
    a1 = _done(_send(conversation, bob, "Q1"), "A1")
    a2 = _done(_send(conversation, bob, "Q2", parent=a1), "A2")
    edited = _done(services.message_edit_resend(message=a2.parent, actor=membership_of(bob), text="Q2 edited",
                                                reply_settings=short_settings()), "A2 edited")
    thread = selectors.conversation_thread(conversation=conversation)
    assert [i.message.text for i in thread] == ["Q1", "A1", "Q2 edited", "A2 edited"]
    assert thread[2].previous_leaf_id == a2.pk  # "previous" on the prompt goes to the old branch's last reply
    old = selectors.conversation_thread(conversation=conversation, leaf_id=thread[2].previous_leaf_id)
    assert [i.message.text for i in old] == ["Q1", "A1", "Q2", "A2"] and old[2].next_leaf_id == edited.pk


def test_live_replies_come_without_html_and_finished_ones_rendered(conversation, bob):
    reply = _send(conversation, bob, "**bold** question")
    thread = selectors.conversation_thread(conversation=conversation)
    assert thread[0].html == "<p><strong>bold</strong> question</p>\n" and thread[1].html == ""
    assert reply.is_live
