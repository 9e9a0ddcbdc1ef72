"""The live-replies quota (``MAX_LIVE_REPLIES``): past it a send, regenerate or edit is refused
with a clear error, nothing is written or queued, and nothing already queued is lost."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import membership_of
from tests.helpers import short_settings
from webapp.chat import services
from webapp.chat.forms import settings_initial
from webapp.chat.models import Message
from webapp.chat.params import ReplySettings, default_model_name, default_params
from webapp.core.jobs import JobStatus, QuotaExceeded
from webapp.prompts.models import PromptRecord


@pytest.fixture(autouse=True)
def quota(settings):
    settings.MAX_LIVE_REPLIES = 2


@pytest.fixture(autouse=True)
def sent(no_enqueue):
    """The reply ids sent to the broker (the suite's ``no_enqueue`` catches them)."""
    return no_enqueue


def _send(conversation, user, text="Plan the launch"):
    return services.message_send(
        conversation=conversation, actor=membership_of(user), text=text, parent=None, reply_settings=short_settings()
    )


def _snapshot():
    return (Message.objects.count(), PromptRecord.objects.count(),
            sorted(Message.objects.filter(role="assistant").values_list("pk", "status")))


@pytest.mark.django_db(transaction=True)  # enqueues happen on commit
def test_a_send_past_the_quota_is_refused_and_loses_nothing(conversation, bob, alice, sent):
    live = [_send(conversation, bob), _send(conversation, bob, "And the venue?")]
    before, queued = _snapshot(), sent.ids()
    with pytest.raises(QuotaExceeded, match="limit is 2"):
        _send(conversation, bob, "A third one")
    assert _snapshot() == before and sent.ids() == queued == [reply.pk for reply in live]
    with pytest.raises(QuotaExceeded):
        services.reply_regenerate(message=live[0], actor=membership_of(bob), reply_settings=short_settings())
    with pytest.raises(QuotaExceeded):
        services.message_edit_resend(message=live[0].parent, actor=membership_of(bob), text="Edited",
                                     reply_settings=short_settings())
    assert _snapshot() == before
    _send(conversation, alice)  # the quota is per person


@pytest.mark.django_db(transaction=True)  # enqueues happen on commit
def test_a_reply_that_ends_frees_a_place(conversation, bob):
    first, _ = _send(conversation, bob), _send(conversation, bob, "two")
    Message.objects.filter(pk=first.pk).update(status=JobStatus.DONE)
    assert _send(conversation, bob, "three").status == JobStatus.QUEUED


@pytest.mark.django_db(transaction=True)  # enqueues happen on commit
def test_the_composer_says_so_next_to_the_send_button(client_for, project, conversation, bob, sent):
    _send(conversation, bob)
    _send(conversation, bob, "two")
    before = _snapshot()
    initial = settings_initial(ReplySettings(model_name=default_model_name(), params=default_params()))
    form = {**{k: ("" if v is None else v) for k, v in initial.items()}, "text": "three"}
    response = client_for(bob).post(reverse("chat:conversation_send", args=[project.pk, conversation.pk]), form)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="error form-error">You already have 2 replies queued or being written; the limit is 2.' in html
    assert html.index("form-error") < html.index(">Send</button>")
    assert _snapshot() == before and len(sent) == 2
