from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import membership_of
from tests.helpers import short_settings
from webapp.chat import services
from webapp.chat.models import Conversation, Message
from webapp.core.jobs import JobStatus
from webapp.prompts.models import PromptRecord
from webapp.prompts.services import prompt_record_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_enqueue")]


@pytest.fixture
def reply(conversation, bob):
    return services.message_send(conversation=conversation, actor=membership_of(bob), text="Plan the launch party", parent=None,
                                 reply_settings=short_settings())


def _finish(message, text="Done."):
    Message.objects.filter(pk=message.pk).update(status=JobStatus.DONE, text=text)
    message.refresh_from_db()
    return message


def _url(name, project, conversation, reply):
    if name == "chat:index":
        return reverse(name, args=[project.pk])
    if name.startswith("chat:conversation"):
        return reverse(name, args=[project.pk, conversation.pk])
    return reverse(name, args=[project.pk, reply.pk])


ALL_URLS = [
    ("get", "chat:index"),
    ("get", "chat:conversation"),
    ("post", "chat:conversation_send"),
    ("post", "chat:conversation_settings"),
    ("post", "chat:conversation_rename"),
    ("post", "chat:conversation_delete"),
    ("get", "chat:message"),
    ("post", "chat:message_regenerate"),
    ("post", "chat:message_edit"),
    ("post", "chat:message_stop"),
]


@pytest.mark.parametrize(("method", "url_name"), [  # spelled out: test_urls looks for each name here
    ("get", "chat:index"),
    ("get", "chat:conversation"),
    ("post", "chat:conversation_send"),
    ("post", "chat:conversation_settings"),
    ("post", "chat:conversation_rename"),
    ("post", "chat:conversation_delete"),
    ("get", "chat:message"),
    ("post", "chat:message_regenerate"),
    ("post", "chat:message_edit"),
    ("post", "chat:message_stop"),
])
def test_outsider_gets_404_and_learns_nothing(method, url_name, client_for, project, conversation, reply, mallory):
    response = getattr(client_for(mallory), method)(_url(url_name, project, conversation, reply), {"text": "x", "title": "x"})
    assert response.status_code == 404
    assert b"launch party" not in response.content
    assert Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.parametrize(("method", "url_name"), ALL_URLS)
def test_anonymous_is_sent_to_log_in(method, url_name, client, project, conversation, reply):
    response = getattr(client, method)(_url(url_name, project, conversation, reply))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_conversation_of_another_project_is_404_under_this_project(client_for, project, other_project, mallory, bob):
    foreign = services.conversation_create(project=other_project, actor=membership_of(mallory), reply_settings=short_settings())
    response = client_for(bob).get(reverse("chat:conversation", args=[project.pk, foreign.pk]))
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "url_name"), [u for u in ALL_URLS if u[0] == "post"])
def test_viewer_cannot_change_anything(method, url_name, client_for, project, conversation, reply, carol):
    _finish(reply)
    # A complete, valid form: the service refuses the viewer (a form with errors changes nothing either).
    data = {**_form_defaults(), **{f"settings-{k}": v for k, v in _form_defaults().items()}, "text": "x", "title": "x"}
    response = client_for(carol).post(_url(url_name, project, conversation, reply), data)
    assert response.status_code == 403
    assert Message.objects.count() == 2


def test_viewer_reads_the_conversation_without_a_composer(client_for, project, conversation, reply, carol):
    _finish(reply, "Balloons **and** cake")
    response = client_for(carol).get(conversation.get_absolute_url())
    assert b"Plan the launch party" in response.content
    assert b"<strong>and</strong>" in response.content
    assert b'name="text"' not in response.content and b"Regenerate" not in response.content


def test_index_lists_conversations_most_recently_active_first(client_for, project, alice, bob):
    older = services.conversation_create(project=project, actor=membership_of(alice), title="Older", reply_settings=short_settings())
    services.conversation_create(project=project, actor=membership_of(alice), title="Newer", reply_settings=short_settings())
    services.message_send(conversation=older, actor=membership_of(bob), text="bump", parent=None, reply_settings=short_settings())
    content = client_for(bob).get(reverse("chat:index", args=[project.pk])).content.decode()
    assert content.index("Older") < content.index("Newer")


def test_the_chat_tab_shows_on_the_project(client_for, project, bob):
    response = client_for(bob).get(project.get_absolute_url())
    assert reverse("chat:index", args=[project.pk]).encode() in response.content


def test_index_post_starts_a_conversation_and_enqueues_the_reply(client_for, project, bob, no_enqueue,
                                                                  django_capture_on_commit_callbacks):
    form = {**_form_defaults(), "text": "Name our product", "max_new_tokens": 16}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(bob).post(reverse("chat:index", args=[project.pk]), form)
    conversation = Conversation.objects.get()
    reply = conversation.messages.get(role="assistant")
    assert response.status_code == 302 and response["Location"].endswith(f"?leaf={reply.pk}")
    assert conversation.title == "Name our product" and reply.params["max_new_tokens"] == 16
    assert no_enqueue.ids() == [reply.pk]


def _form_defaults():
    from webapp.chat.forms import settings_initial
    from webapp.chat.params import ReplySettings, default_model_name, default_params

    initial = settings_initial(ReplySettings(model_name=default_model_name(), params=default_params()))
    return {k: ("" if v is None else v) for k, v in initial.items()}


@pytest.mark.parametrize(("field", "value"), [("top_p", "0"), ("temperature", "3"), ("num_beams", "9"),
                                              ("max_new_tokens", "0"), ("model", "gpt-17")])
def test_bad_settings_show_an_error_next_to_the_field_and_enqueue_nothing(
    field, value, client_for, project, conversation, reply, bob, no_enqueue, django_capture_on_commit_callbacks
):
    _finish(reply)
    form = {**_form_defaults(), "text": "again", "parent": reply.pk, field: value}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(bob).post(reverse("chat:conversation_send", args=[project.pk, conversation.pk]), form)
    assert response.status_code == 200
    assert field in response.context["composer"].errors
    assert f'id="id_{field}-error"'.encode() in response.content
    assert no_enqueue.ids() == [] and Message.objects.count() == 2


def test_send_over_htmx_returns_the_thread_with_the_new_live_reply(client_for, project, conversation, reply, bob):
    _finish(reply)
    form = {**_form_defaults(), "text": "And the venue?", "parent": reply.pk}
    response = client_for(bob).post(reverse("chat:conversation_send", args=[project.pk, conversation.pk]), form,
                                    HTTP_HX_REQUEST="true", HTTP_HX_TARGET="chat-main")
    new_reply = Message.objects.filter(role="assistant").latest("id")
    assert b"<html" not in response.content
    assert f'data-live-message="{new_reply.pk}"'.encode() in response.content
    assert b"And the venue?" in response.content and b"Plan the launch party" in response.content


def _send_to_thread(client, project, conversation, form):
    """Post the composer as htmx does from the page: its target is the thread."""
    return client.post(reverse("chat:conversation_send", args=[project.pk, conversation.pk]), form,
                       headers={"HX-Request": "true", "HX-Target": "thread"})


def test_a_send_from_the_page_appends_the_prompt_and_reply_and_sets_the_composers_parent(
    client_for, project, conversation, reply, bob
):
    _finish(reply)
    response = _send_to_thread(client_for(bob), project, conversation,
                               {**_form_defaults(), "text": "And the venue?", "parent": reply.pk})
    new_reply = Message.objects.filter(role="assistant").latest("id")
    content = response.content.decode()
    assert "HX-Reswap" not in response and "HX-Retarget" not in response  # the composer's own beforeend
    assert 'id="chat-main"' not in content and "Plan the launch party" not in content  # only what the send added
    assert content.index("And the venue?") < content.index(f'data-live-message="{new_reply.pk}"')
    # The composer's next parent, out of band (the page resets the rest of the composer).
    assert f'<input type="hidden" name="parent" value="{new_reply.pk}" id="id_parent" hx-swap-oob="true">' in content
    assert 'id="composer"' not in content


def test_a_new_thread_from_the_page_replaces_the_thread_shown_and_names_the_conversation(
    client_for, project, conversation, bob
):
    response = _send_to_thread(client_for(bob), project, conversation,
                               {**_form_defaults(), "text": "Name the mascot", "parent": ""})
    content = response.content.decode()
    assert response["HX-Reswap"] == "innerHTML"
    assert '<h2 id="chat-title" hx-swap-oob="true">Name the mascot</h2>' in content
    new_reply = Message.objects.filter(role="assistant").latest("id")
    assert f'data-live-message="{new_reply.pk}"' in content


def test_a_refused_send_from_the_page_shows_the_whole_composer_with_its_error(
    client_for, project, conversation, reply, bob, no_enqueue
):
    _finish(reply)
    response = _send_to_thread(client_for(bob), project, conversation,
                               {**_form_defaults(), "text": "again", "parent": reply.pk, "top_p": "0"})
    assert response["HX-Retarget"] == "#chat-main" and response["HX-Reswap"] == "outerHTML"
    assert b'id="chat-main"' in response.content and b'id="id_top_p-error"' in response.content
    assert no_enqueue.ids() == [] and Message.objects.count() == 2


def test_regenerate_shows_sibling_navigation(client_for, project, conversation, reply, bob):
    _finish(reply, "First idea")
    response = client_for(bob).post(reverse("chat:message_regenerate", args=[project.pk, reply.pk]), follow=True)
    assert b"2/2" in response.content
    page = client_for(bob).get(conversation.get_absolute_url(), {"leaf": reply.pk})
    assert b"1/2" in page.content and b"First idea" in page.content


def test_edit_and_resend_makes_a_branch_and_keeps_the_old_one(client_for, project, conversation, reply, bob):
    _finish(reply)
    client_for(bob).post(reverse("chat:message_edit", args=[project.pk, reply.parent_id]), {"text": "Plan the launch dinner"})
    page = client_for(bob).get(conversation.get_absolute_url())
    assert b"Plan the launch dinner" in page.content and b"2/2" in page.content
    old = client_for(bob).get(conversation.get_absolute_url(), {"leaf": reply.pk})
    assert b"Plan the launch party" in old.content and b"1/2" in old.content


def test_stop_over_htmx_answers_no_content(client_for, project, reply, bob, redis_server):
    response = client_for(bob).post(reverse("chat:message_stop", args=[project.pk, reply.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    reply.refresh_from_db()
    assert reply.status == JobStatus.STOPPED


def test_reuse_fills_the_composer_and_settings(client_for, project, bob):
    record = prompt_record_create(project=project, author=bob, kind="chat", text="Write a haiku",
                                  params={"system": "Be terse.", "strategy": "sample", "temperature": 1.3, "seed": 7},
                                  model_name="smollm2-135m-instruct")
    response = client_for(bob).get(reverse("chat:index", args=[project.pk]), {"reuse": record.pk})
    form = response.context["composer"]
    assert form.initial["text"] == "Write a haiku"
    assert (form.initial["strategy"], form.initial["temperature"], form.initial["seed"]) == ("sample", 1.3, 7)
    assert form.initial["system"] == "Be terse."
    assert b"Write a haiku" in response.content


def test_reuse_of_a_prompt_from_another_project_is_404(client_for, project, other_project, mallory, bob):
    foreign = prompt_record_create(project=other_project, author=mallory, kind="chat", text="secret", params={})
    response = client_for(bob).get(reverse("chat:index", args=[project.pk]), {"reuse": foreign.pk})
    assert response.status_code == 404


def test_history_reuse_link_opens_the_chat(client_for, project, bob, reply):
    record = PromptRecord.objects.get()
    response = client_for(bob).get(reverse("prompts:reuse", args=[project.pk, record.pk]))
    assert response["Location"] == reverse("chat:index", args=[project.pk]) + f"?reuse={record.pk}"


def test_rename_and_delete(client_for, project, conversation, alice, bob):
    client_for(bob).post(reverse("chat:conversation_rename", args=[project.pk, conversation.pk]), {"title": "Launch plan"})
    conversation.refresh_from_db()
    assert conversation.title == "Launch plan"
    # alice started the conversation: she deletes it (bob may not: tests/security/test_write_rules.py).
    response = client_for(alice).post(reverse("chat:conversation_delete", args=[project.pk, conversation.pk]))
    assert response["Location"] == reverse("chat:index", args=[project.pk])
    assert not Conversation.objects.exists()


def test_conversation_settings_are_saved_and_used_by_the_next_message(client_for, project, conversation, bob):
    form = {f"settings-{k}": v for k, v in {**_form_defaults(), "system": "Answer in French.", "max_new_tokens": 12}.items()}
    client_for(bob).post(reverse("chat:conversation_settings", args=[project.pk, conversation.pk]), form)
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Answer in French." and conversation.params["max_new_tokens"] == 12
    page = client_for(bob).get(conversation.get_absolute_url())
    assert page.context["composer"].initial["max_new_tokens"] == 12


def test_viewing_a_conversation_never_writes_the_sweep_fails_a_dead_reply(client_for, project, conversation, reply,
                                                                             bob, redis_server):
    from datetime import timedelta

    from django.utils import timezone

    from webapp.core.tasks import sweep_stale_jobs

    Message.objects.filter(pk=reply.pk).update(status=JobStatus.RUNNING, text="Balloo",
                                               heartbeat_at=timezone.now() - timedelta(minutes=10))
    client_for(bob).get(conversation.get_absolute_url())
    assert Message.objects.get(pk=reply.pk).status == JobStatus.RUNNING  # a GET leaves it as it is
    assert sweep_stale_jobs() == 1  # Celery beat runs this
    response = client_for(bob).get(conversation.get_absolute_url())
    reply.refresh_from_db()
    assert reply.status == JobStatus.FAILED and reply.text == "Balloo"
    assert b"stopped responding" in response.content


def test_message_detail_renders_one_finished_reply(client_for, project, reply, bob):
    _finish(reply, "# Title")
    response = client_for(bob).get(reverse("chat:message", args=[project.pk, reply.pk]))
    assert b"<h1>Title</h1>" in response.content and b"<html" not in response.content
    assert b"tok/s" not in response.content or b"tokens" in response.content


def test_delete_is_offered_to_whoever_started_the_conversation_and_not_to_other_members(client_for, conversation,
                                                                                         alice, bob):
    # The page asks the same table as the service (chat.delete): no button that would answer 403.
    assert b"Delete conversation" not in client_for(bob).get(conversation.get_absolute_url()).content
    assert b"Delete conversation" in client_for(alice).get(conversation.get_absolute_url()).content
