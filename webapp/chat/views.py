"""Chat pages. Each view fetches through a selector (404 for outsiders), calls one service
(which checks the actor's role), and renders the page or, for htmx, the part of it that changed."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from webapp.chat import selectors, services
from webapp.chat.forms import ComposerForm, ReplySettingsForm, TitleForm, settings_initial
from webapp.chat.models import Conversation, Message
from webapp.chat.params import ReplySettings, settings_from_record
from webapp.core.http import HtmxHttpRequest
from webapp.knowledge.context import mention_choices
from webapp.prompt_templates.selectors import template_use_request_parse, template_uses_by_output
from webapp.prompts.selectors import prompt_get_for_member
from webapp.workspaces.permissions import membership_may
from webapp.workspaces.selectors import project_get_for_member


def _leaf_url(conversation: Conversation, leaf_id: int | None) -> str:
    url = conversation.get_absolute_url()
    return f"{url}?leaf={leaf_id}" if leaf_id else url


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _render_conversation(
    request: HtmxHttpRequest,
    conversation: Conversation,
    *,
    leaf_id: int | None = None,
    upto_id: int | None = None,
    composer: ComposerForm | None = None,
    settings_form: ReplySettingsForm | None = None,
) -> HttpResponse:
    project = conversation.project
    base = selectors.conversation_settings(conversation=conversation)
    thread = selectors.conversation_thread(
        conversation=conversation, leaf_id=leaf_id, upto_id=upto_id, limit=selectors.THREAD_PAGE
    )
    uses = template_uses_by_output(output_kind="reply", output_ids=[item.message.pk for item in thread], project=project)
    if composer is None:
        parent = thread[-1].message.pk if thread else None
        composer = ComposerForm(base=base, initial={**settings_initial(base), "parent": parent})
    context = {
        "project": project,
        "conversation": conversation,
        "conversations": selectors.conversation_page(project=project, page=request.GET.get("page")),
        "thread": thread,
        "template_uses": uses,
        "leaf_id": thread[-1].message.pk if thread else None,
        # An earlier page (?upto=) is for reading: sending there would branch off the middle.
        "earlier_id": thread[0].message.parent_id if thread else None,
        "reading_earlier": upto_id is not None,
        "composer": composer,
        "settings_form": settings_form or ReplySettingsForm(base=base, prefix="settings"),
        "title_form": TitleForm(initial={"title": conversation.title}),
        "can_write": membership_may(actor=project.membership, action="chat.send") and upto_id is None,
        "active_tab": "chat",
        # The composer's "#" picker, read only when the composer renders (a callable: the template calls it).
        "mention_choices": lambda: mention_choices(project_id=project.pk),
    }
    if request.htmx and request.htmx.target == "thread":  # the composer's send, answered with the whole of #chat-main
        return reswap(retarget(render(request, "chat/_main.html", context), "#chat-main"), "outerHTML")
    template = "chat/_main.html" if request.htmx and request.htmx.target == "chat-main" else "chat/conversation.html"
    return render(request, template, context)


def _render_sent(request: HtmxHttpRequest, conversation: Conversation, reply: Message, *, new_thread: bool) -> HttpResponse:
    """A composer send over htmx: the new prompt and its live reply, appended to the thread on the page (the
    composer always continues the thread it shows) or, for a new thread, in place of it (with the title, which
    a first message sets); and the composer's new parent (chat.js resets the rest of the composer). A send is the
    busiest moment of a web process (a team sending at once waits on each other's answers, and the engine's
    niced decoding waits on the web process), so it renders only what changed, not all of #chat-main (a third
    of the time: no forms)."""
    project = conversation.project
    thread = selectors.conversation_thread(conversation=conversation, leaf_id=reply.pk, limit=2)
    context = {
        "project": project,
        "conversation": conversation,
        "thread": thread,
        "template_uses": template_uses_by_output(output_kind="reply", output_ids=[reply.pk], project=project),
        "parent_id": reply.pk,  # the composer's next parent
        "can_write": True,  # the service just let the actor send
        "new_thread": new_thread,
    }
    response = render(request, "chat/_sent.html", context)
    return reswap(response, "innerHTML") if new_thread else response


@login_required
def index(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    """The project's conversations, and a composer that starts a new one (filled by ?reuse=)."""
    project = project_get_for_member(user=request.user, project_id=project_id)
    base: ReplySettings | None = None
    initial: dict[str, Any] = {}
    reuse_id = _int(request.GET.get("reuse"))
    if reuse_id is not None:
        record = prompt_get_for_member(user=request.user, project_id=project.pk, prompt_id=reuse_id)
        base = settings_from_record({**record.params, "model": record.model_name})
        initial = {**settings_initial(base), "text": record.text}
    form = ComposerForm(request.POST or None, base=base, **({"initial": initial} if initial else {}))
    if request.method == "POST" and form.is_valid():
        try:
            reply = services.conversation_start(
                project=project, actor=project.membership, text=form.cleaned_data["text"],
                reply_settings=form.cleaned_data["reply_settings"],
                template_use=template_use_request_parse(raw=form.cleaned_data["template_use"], project=project, kind="chat"),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect(_leaf_url(reply.conversation, reply.pk))
    context = {
        "project": project,
        "conversations": selectors.conversation_page(project=project, page=request.GET.get("page")),
        "composer": form,
        "can_write": membership_may(actor=project.membership, action="chat.send"),
        "active_tab": "chat",
    }
    return render(request, "chat/index.html", context)


@login_required
@require_GET
def conversation(request: HtmxHttpRequest, project_id: int, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get_for_member(
        user=request.user, project_id=project_id, conversation_id=conversation_id
    )
    return _render_conversation(
        request, conversation, leaf_id=_int(request.GET.get("leaf")), upto_id=_int(request.GET.get("upto"))
    )


@login_required
@require_POST
def conversation_send(request: HtmxHttpRequest, project_id: int, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get_for_member(
        user=request.user, project_id=project_id, conversation_id=conversation_id
    )
    form = ComposerForm(request.POST, base=selectors.conversation_settings(conversation=conversation))
    parent_id = _int(request.POST.get("parent"))
    if form.is_valid():
        parent = None
        if form.cleaned_data["parent"]:
            parent = selectors.conversation_message_get(conversation=conversation, message_id=form.cleaned_data["parent"])
        try:
            reply = services.message_send(
                conversation=conversation, actor=conversation.project.membership, text=form.cleaned_data["text"],
                parent=parent,
                reply_settings=form.cleaned_data["reply_settings"],
                template_use=template_use_request_parse(
                    raw=form.cleaned_data["template_use"], project=conversation.project, kind="chat"
                ),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if request.htmx and request.htmx.target == "thread":
                return _render_sent(request, conversation, reply, new_thread=parent is None)
            if request.htmx:
                return _render_conversation(request, conversation, leaf_id=reply.pk)
            return redirect(_leaf_url(conversation, reply.pk))
    return _render_conversation(request, conversation, leaf_id=parent_id, composer=form)


@login_required
@require_POST
def conversation_settings(request: HtmxHttpRequest, project_id: int, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get_for_member(
        user=request.user, project_id=project_id, conversation_id=conversation_id
    )
    form = ReplySettingsForm(request.POST, base=selectors.conversation_settings(conversation=conversation), prefix="settings")
    if form.is_valid():
        services.conversation_settings_update(
            conversation=conversation, actor=conversation.project.membership,
            reply_settings=form.cleaned_data["reply_settings"],
        )
        flash.success(request, "Settings saved; the next messages use them.")
        return redirect(_leaf_url(conversation, _int(request.POST.get("leaf"))))
    return _render_conversation(request, conversation, leaf_id=_int(request.POST.get("leaf")), settings_form=form)


@login_required
@require_POST
def conversation_rename(request: HtmxHttpRequest, project_id: int, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get_for_member(
        user=request.user, project_id=project_id, conversation_id=conversation_id
    )
    form = TitleForm(request.POST)
    if form.is_valid():
        services.conversation_rename(
            conversation=conversation, actor=conversation.project.membership, title=form.cleaned_data["title"]
        )
    else:
        flash.error(request, "A conversation needs a title.")
    return redirect(conversation)


@login_required
@require_POST
def conversation_delete(request: HtmxHttpRequest, project_id: int, conversation_id: int) -> HttpResponse:
    conversation = selectors.conversation_get_for_member(
        user=request.user, project_id=project_id, conversation_id=conversation_id
    )
    services.conversation_delete(conversation=conversation, actor=conversation.project.membership)
    flash.success(request, f"Deleted “{conversation.title}”.")
    return redirect("chat:index", project_id=project_id)


@login_required
@require_GET
def message_detail(request: HtmxHttpRequest, project_id: int, message_id: int) -> HttpResponse:
    """One message, rendered alone: the page swaps it in when a streamed reply ends."""
    message = selectors.message_get_for_member(user=request.user, project_id=project_id, message_id=message_id)
    context = {
        "item": selectors.message_display(message=message),
        "template_uses": template_uses_by_output(
            output_kind="reply", output_ids=[message.pk], project=message.conversation.project
        ),
        "project": message.conversation.project,
        "conversation": message.conversation,
        "can_write": membership_may(actor=message.conversation.project.membership, action="chat.send"),
    }
    return render(request, "chat/_message.html", context)


def _new_branch_response(request: HtmxHttpRequest, message: Message, create: Callable[[], Message]) -> HttpResponse:
    """Run a service that starts a new branch, then show its reply (or the error beside the old one)."""
    conversation = message.conversation
    try:
        reply = create()
    except ValidationError as exc:
        flash.error(request, " ".join(exc.messages))
        return redirect(_leaf_url(conversation, message.pk))
    if request.htmx:
        return _render_conversation(request, conversation, leaf_id=reply.pk)
    return redirect(_leaf_url(conversation, reply.pk))


@login_required
@require_POST
def message_regenerate(request: HtmxHttpRequest, project_id: int, message_id: int) -> HttpResponse:
    message = selectors.message_get_for_member(
        user=request.user, project_id=project_id, message_id=message_id
    )
    conversation = message.conversation
    return _new_branch_response(
        request, message,
        lambda: services.reply_regenerate(
            message=message, actor=conversation.project.membership,
            reply_settings=selectors.conversation_settings(conversation=conversation),
        ),
    )


@login_required
@require_POST
def message_edit(request: HtmxHttpRequest, project_id: int, message_id: int) -> HttpResponse:
    """Edit and resend: a new branch beside the prompt, with the conversation's settings."""
    message = selectors.message_get_for_member(
        user=request.user, project_id=project_id, message_id=message_id
    )
    conversation = message.conversation
    return _new_branch_response(
        request, message,
        lambda: services.message_edit_resend(
            message=message, actor=conversation.project.membership, text=request.POST.get("text", ""),
            reply_settings=selectors.conversation_settings(conversation=conversation),
        ),
    )


@login_required
@require_POST
def message_stop(request: HtmxHttpRequest, project_id: int, message_id: int) -> HttpResponse:
    message = selectors.message_get_for_member(
        user=request.user, project_id=project_id, message_id=message_id
    )
    services.reply_stop(message=message, actor=message.conversation.project.membership)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect(_leaf_url(message.conversation, message.pk))
