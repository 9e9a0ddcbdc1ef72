"""Sidebars and threads paginate, and finished messages keep their rendered markdown."""
from __future__ import annotations

import pytest

from tests.helpers import membership, short_settings
from webapp.chat import selectors, services
from webapp.chat.models import Conversation, Message, Role

pytestmark = pytest.mark.django_db


def test_the_sidebar_shows_one_page_of_conversations(project, alice, bob, client_for):
    Conversation.objects.bulk_create(
        [Conversation(project=project, created_by=alice, title=f"talk {n:03d}") for n in range(selectors.SIDEBAR_PAGE + 5)]
    )
    response = client_for(bob).get(f"/projects/{project.pk}/chat/")
    assert len(response.context["conversations"]) == selectors.SIDEBAR_PAGE
    second = client_for(bob).get(f"/projects/{project.pk}/chat/?page=2")
    assert len(second.context["conversations"]) == 5


def test_a_long_thread_shows_its_newest_page_with_a_link_to_earlier(conversation, alice, client_for):
    parent = None
    for n in range(selectors.THREAD_PAGE + 10):
        parent = Message.objects.create(conversation=conversation, parent=parent, author=alice,
                                        role=Role.USER if n % 2 == 0 else Role.ASSISTANT, text=f"turn {n}")
    response = client_for(alice).get(conversation.get_absolute_url())
    thread = response.context["thread"]
    assert len(thread) == selectors.THREAD_PAGE
    assert thread[-1].message.text == f"turn {selectors.THREAD_PAGE + 9}"
    assert response.context["earlier_id"] == thread[0].message.parent_id
    earlier = client_for(alice).get(conversation.get_absolute_url() + f"?upto={response.context['earlier_id']}")
    assert earlier.context["thread"][-1].message.pk == response.context["earlier_id"]


@pytest.mark.usefixtures("redis_server")
def test_a_finished_reply_stores_its_rendered_markdown(conversation, bob, monkeypatch):
    monkeypatch.setattr("webapp.chat.tasks.generate_reply.apply_async", lambda *a, **k: None)
    reply = services.message_send(conversation=conversation, actor=membership(bob, conversation), text="**bold** prompt", parent=None,
                                  reply_settings=short_settings())
    assert "<strong>bold</strong>" in Message.objects.get(pk=reply.parent_id).html
    services.reply_fail(message_id=reply.pk, reason="test")
    Message.objects.filter(pk=reply.pk).update(text="*partial*")
    # The thread shows the stored HTML, not a fresh render of the text.
    Message.objects.filter(pk=reply.pk).update(html="<p>stored</p>")
    items = selectors.conversation_thread(conversation=conversation, leaf_id=reply.pk)
    assert items[-1].html == "<p>stored</p>"
