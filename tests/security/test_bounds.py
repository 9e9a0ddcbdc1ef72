"""Every text has a length limit, enforced in the service (and the form the page posts);
edit-and-resend is the prompt author's only; socket messages and resume are rate-limited."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError

from tests.helpers import chat_socket_path, membership, session_client, short_settings, socket_for
from webapp.chat import services as chat_services
from webapp.chat.models import Message
from webapp.core import bounds
from webapp.prompts.services import prompt_record_create
from webapp.workspaces import services as workspace_services
from webapp.workspaces.models import Membership

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_enqueue")]


def _too_long(limit: int) -> str:
    return "x" * (limit + 1)


def _member(team, user) -> Membership:
    return Membership.objects.select_related("team", "user").get(team=team, user=user)


def _field_error(call, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        call()
    assert field in error.value.message_dict


def test_services_refuse_overlong_team_and_project_names(team, alice, project):
    actor = _member(team, alice)
    _field_error(lambda: workspace_services.team_create(name=_too_long(bounds.TEAM_NAME), owner=alice), "name")
    _field_error(lambda: workspace_services.project_create(actor=actor, name=_too_long(bounds.PROJECT_NAME)), "name")
    _field_error(lambda: workspace_services.project_create(
        actor=actor, name="ok", description=_too_long(bounds.PROJECT_DESCRIPTION)), "description")
    _field_error(lambda: workspace_services.project_update(
        project=project, actor=actor, name=_too_long(bounds.PROJECT_NAME), description=""), "name")


def test_chat_services_refuse_overlong_texts(conversation, bob, project):
    _field_error(lambda: chat_services.message_send(
        conversation=conversation, actor=membership(bob, conversation), text=_too_long(bounds.MESSAGE_TEXT), parent=None,
        reply_settings=short_settings()), "text")
    _field_error(lambda: chat_services.conversation_rename(
        conversation=conversation, actor=membership(bob, conversation), title=_too_long(bounds.CONVERSATION_TITLE)), "title")
    _field_error(lambda: chat_services.conversation_create(project=project, actor=membership(bob, project), title=_too_long(bounds.CONVERSATION_TITLE), reply_settings=short_settings()), "title")
    long_system = short_settings()
    object.__setattr__(long_system, "system_prompt", _too_long(bounds.SYSTEM_PROMPT))
    _field_error(lambda: chat_services.message_send(
        conversation=conversation, actor=membership(bob, conversation), text="hi", parent=None, reply_settings=long_system), "system")
    assert not Message.objects.exists()


def test_the_prompt_history_refuses_overlong_text(project, bob):
    _field_error(lambda: prompt_record_create(
        project=project, author=bob, kind="chat", text=_too_long(bounds.PROMPT_TEXT), params={}), "text")


def test_edit_and_resend_refuses_an_overlong_text_through_the_view(conversation, bob, project, client_for):
    reply = chat_services.message_send(conversation=conversation, actor=membership(bob, conversation), text="hi", parent=None,
                                       reply_settings=short_settings())
    Message.objects.filter(pk=reply.pk).update(status="done")
    before = Message.objects.count()
    client_for(bob).post(f"/projects/{project.pk}/chat/messages/{reply.parent_id}/edit/",
                         {"text": _too_long(bounds.MESSAGE_TEXT)})
    assert Message.objects.count() == before


def test_only_the_prompts_author_can_edit_and_resend_it(conversation, bob, alice):
    reply = chat_services.message_send(conversation=conversation, actor=membership(bob, conversation), text="bob's prompt", parent=None,
                                       reply_settings=short_settings())
    prompt = Message.objects.get(pk=reply.parent_id)
    with pytest.raises(PermissionDenied):  # chat.resend is "own" for every role (webapp.workspaces.permissions)
        chat_services.message_edit_resend(message=prompt, actor=membership(alice, conversation), text="alice's words", reply_settings=short_settings())
    assert not Message.objects.filter(text="alice's words").exists()


def test_the_composer_refuses_an_overlong_send(conversation, bob):
    from django.urls import reverse

    from webapp.chat.forms import settings_initial
    from webapp.chat.selectors import conversation_settings

    form = {**settings_initial(conversation_settings(conversation=conversation)), "text": _too_long(bounds.MESSAGE_TEXT)}
    url = reverse("chat:conversation_send", args=[conversation.project_id, conversation.pk])
    response = session_client(bob).post(url, {k: "" if v is None else v for k, v in form.items()})
    assert "text" in response.context["composer"].errors
    assert not Message.objects.filter(conversation=conversation).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_server")
@pytest.mark.parametrize("kind", ["send", "resume", "junk"])
async def test_socket_messages_are_rate_limited_per_connection(kind, conversation, bob):
    reply = await sync_to_async(chat_services.message_send)(
        conversation=conversation, actor=await sync_to_async(membership)(bob, conversation), text="hi", parent=None, reply_settings=short_settings())
    socket = socket_for(chat_socket_path(conversation), await sync_to_async(session_client)(bob))
    assert (await socket.connect(timeout=5))[0]
    payload = {"send": {"type": "send", "text": ""}, "resume": {"type": "resume", "message": reply.pk, "after": 0},
               "junk": {"type": "nonsense"}}[kind]
    limited = False
    for _ in range(200):
        await socket.send_json_to(payload)
    for _ in range(200):
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            limited = True
            break
        if "too many" in output.get("text", "").lower():
            limited = True
            break
    assert limited
