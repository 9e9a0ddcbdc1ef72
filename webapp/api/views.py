"""The ``/v1`` endpoints (async, bearer keys only) and the project's API page (session, as every page)."""
from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from webapp.api import selectors, services
from webapp.api.errors import ApiError, from_engine, invalid, model_not_found, not_found
from webapp.api.forms import KeyCreateForm
from webapp.api.http import Call, api_view, ok, sse
from webapp.api.models import TextKind
from webapp.api.openapi import openapi_document
from webapp.api.params import EDIT_PARAM_NAMES, chat_spec, completion_spec, edit_spec, image_spec
from webapp.api.runs import ImageRun, TextRun
from webapp.workspaces.permissions import membership_may
from webapp.workspaces.selectors import project_get_for_member

# --- /v1 ----------------------------------------------------------------------------


def _models() -> list[dict[str, Any]]:
    from generation.image.registry import image_models
    from generation.text.registry import text_models

    entries = [{"id": s.name, "object": "model", "created": 0, "owned_by": "atelier", "kind": "text",
                "display_name": s.display_name, "context_length": s.context_length} for s in text_models()]
    entries += [{"id": s.name, "object": "model", "created": 0, "owned_by": "atelier", "kind": "image",
                 "display_name": s.display_name} for s in image_models()]
    return entries


@api_view(methods=("GET",))
async def models_list(call: Call) -> HttpResponseBase:
    return ok({"object": "list", "data": _models()})


@api_view(methods=("GET",))
async def model_detail(call: Call, model: str) -> HttpResponseBase:
    for entry in _models():
        if entry["id"] == model:
            return ok(entry)
    raise model_not_found(model)


def _with_knowledge(call: Call, spec: Any) -> tuple[Any, list[dict[str, Any]] | None]:
    """The ``knowledge`` extension: the last user message put in the project's context template with the
    passages that best match it; returns the new spec and the citations (None without the extension)."""
    if "knowledge" not in spec.extra:
        return spec, None
    import dataclasses

    from webapp.knowledge.context import context_render, context_template, knowledge_passages
    from webapp.knowledge.models import Document

    project_id = call.principal.project.pk
    document_ids = spec.extra["knowledge"]
    if document_ids is not None:
        known = set(Document.objects.filter(project_id=project_id, pk__in=document_ids).values_list("pk", flat=True))
        missing = [f"file-{i}" for i in document_ids if i not in known]
        if missing:
            raise not_found(f"knowledge: no file {', '.join(missing)} in this key's project.")
    citations = knowledge_passages(project_id=project_id, question=spec.prompt_text, document_ids=document_ids)
    last = max(i for i, m in enumerate(spec.messages) if m["role"] == "user")
    content = context_render(template=context_template(project_id=project_id), passages=citations,
                             question=spec.messages[last]["content"])
    messages = [*spec.messages[:last], {"role": "user", "content": content}, *spec.messages[last + 1:]]
    return dataclasses.replace(spec, messages=messages), citations


async def _events_with_citations(run: TextRun, citations: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """The stream, with the citations as a last chunk (no choices) before ``[DONE]``."""
    done = sse("[DONE]")
    async for chunk in run.events():
        if chunk == done:
            yield sse({"id": run.id, "object": "chat.completion.chunk", "created": run.created,
                       "model": run.spec.model, "system_fingerprint": None, "choices": [], "citations": citations})
        yield chunk


async def _text(call: Call, kind: str) -> HttpResponseBase:
    spec = chat_spec(call.body) if kind == TextKind.CHAT else completion_spec(call.body)
    spec, citations = await sync_to_async(_with_knowledge)(call, spec)
    jobs = await sync_to_async(services.text_call_create)(
        actor=call.principal.membership, key=call.principal.key, spec=spec, kind=kind
    )
    run = TextRun(jobs=jobs, spec=spec, kind=kind)
    try:
        await run.wait_started()
        if spec.stream:
            return call.stream(run.events() if citations is None else _events_with_citations(run, citations))
        await run.wait_finished()
    except BaseException:
        await asyncio.shield(run.stop())
        await run.close()
        raise
    await run.close()
    result = run.result()
    return ok(result if citations is None else {**result, "citations": citations})


@api_view(methods=("POST",))
async def chat_completions(call: Call) -> HttpResponseBase:
    return await _text(call, TextKind.CHAT)


@api_view(methods=("POST",))
async def completions(call: Call) -> HttpResponseBase:
    return await _text(call, TextKind.COMPLETION)


@api_view(methods=("POST",))
async def images_generations(call: Call) -> HttpResponseBase:
    spec = image_spec(call.body)
    job = await sync_to_async(services.image_call_create)(
        actor=call.principal.membership, key=call.principal.key, spec=spec
    )
    run = ImageRun(job=job, principal=call.principal, spec=spec)

    def url_for(asset_id: int) -> str:
        return call.request.build_absolute_uri(reverse("api:image_file", kwargs={"asset_id": asset_id}))

    if spec.stream:
        return call.stream(_image_events(run, url_for))
    try:
        await run.wait()
    except BaseException:
        await asyncio.shield(run.stop())
        raise
    return ok({"created": run.created, "data": await run.images(url_for=url_for),
               "output_format": "png", "size": f"{job.params.get('width')}x{job.params.get('height')}"})


async def _image_edit(call: Call, *, variations: bool) -> HttpResponseBase:
    from generation.errors import ValidationError as EngineValidationError

    spec = edit_spec(call.body, call.files, variations=variations)
    try:
        job = await sync_to_async(services.image_edit_call_create)(
            actor=call.principal.membership, key=call.principal.key, spec=spec
        )
    except EngineValidationError as exc:  # the files, decoded by the studio's checks
        raise from_engine(exc, names=EDIT_PARAM_NAMES) from exc
    run = ImageRun(job=job, principal=call.principal, spec=spec)
    try:
        await run.wait()
    except BaseException:
        await asyncio.shield(run.stop())
        raise

    def url_for(asset_id: int) -> str:
        return call.request.build_absolute_uri(reverse("api:image_file", kwargs={"asset_id": asset_id}))

    return ok({"created": run.created, "data": await run.images(url_for=url_for),
               "output_format": "png", "size": f"{job.params.get('width')}x{job.params.get('height')}"})


@api_view(methods=("POST",), body_kind="multipart")
async def images_edits(call: Call) -> HttpResponseBase:
    """OpenAI's ``images.edit``: ``image``, an optional ``mask`` (transparent = change), ``prompt``..."""
    return await _image_edit(call, variations=False)


@api_view(methods=("POST",), body_kind="multipart")
async def images_variations(call: Call) -> HttpResponseBase:
    """OpenAI's ``images.create_variation``: ``image`` and ``n``; the prompt the PNG carries, if any."""
    return await _image_edit(call, variations=True)


async def _image_events(run: ImageRun, url_for: Any):  # type: ignore[no-untyped-def]
    from webapp.api.http import KEEPALIVE

    finished = False
    try:
        async for event in run.progress():
            yield KEEPALIVE if event is None else sse(event)
        try:
            data = await run.images(url_for=url_for)
        except ApiError as exc:
            finished = True
            yield sse(exc.body())
            return
        finished = True
        for index, entry in enumerate(data):
            yield sse({"type": "image_generation.completed", "index": index, "created_at": run.created,
                       "output_format": "png", **entry})
        yield sse("[DONE]")
    except ApiError as exc:
        finished = True
        yield sse(exc.body())
    finally:
        if not finished:
            await asyncio.shield(run.stop())


@api_view(methods=("GET",))
async def image_file(call: Call, asset_id: int) -> HttpResponseBase:
    """An image that this very key made; 404 for any other key, and for sessions (no key)."""
    asset = await sync_to_async(selectors.asset_get_for_key)(key=call.principal.key, asset_id=asset_id)
    if asset is None:
        raise not_found("No such image for this key.")
    await sync_to_async(services.image_file_record)(asset=asset, user=call.principal.user)
    response = FileResponse(asset.file.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response


def _file_object(document: Any) -> dict[str, Any]:
    """A knowledge document in the shape of OpenAI's file object (``status``: uploaded, processed or error)."""
    status = {"done": "processed", "queued": "uploaded", "running": "uploaded"}.get(document.status, "error")
    return {"id": f"file-{document.pk}", "object": "file", "bytes": document.byte_size,
            "created_at": int(document.created_at.timestamp()), "filename": document.filename,
            "purpose": "assistants", "status": status, "status_details": document.reason or None}


def _files_list(project: Any) -> list[dict[str, Any]]:
    from webapp.knowledge.selectors import document_list

    return [_file_object(document) for document in document_list(project=project)]


def _file_add(call: Call) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from webapp.knowledge.services import document_add

    purpose = call.body.get("purpose", "")
    if purpose != "assistants":
        raise invalid("purpose", f"purpose must be 'assistants' (documents for project knowledge), not {purpose!r}.")
    if "file" not in call.files:
        raise invalid("file", "Send the document in the field file.")
    upload = SimpleUploadedFile(call.filenames.get("file") or "document", call.files["file"])
    document = document_add(actor=call.principal.membership, project=call.principal.project, upload=upload)
    return _file_object(document)


@api_view(methods=("GET", "POST"), body_kind="multipart", file_limit_setting="MAX_DOCUMENT_BYTES")
async def files(call: Call) -> HttpResponseBase:
    """``GET``: the key's project's documents; ``POST``: add one (``purpose="assistants"``), indexed by a worker."""
    if call.request.method == "GET":
        return ok({"object": "list", "data": await sync_to_async(_files_list)(call.principal.project)})
    return ok(await sync_to_async(_file_add)(call))


MAX_EMBEDDING_INPUTS = 2048
MAX_EMBEDDING_INPUT_CHARS = 32_000


def _embedding_inputs(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise invalid("input", "input must be a non-empty string or a non-empty list of strings.")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise invalid("input", f"input has {len(texts)} items; the most is {MAX_EMBEDDING_INPUTS}.")
    for number, text in enumerate(texts):
        if not isinstance(text, str):
            raise invalid("input", f"input[{number}] must be a string (token arrays are not accepted).")
        if not text.strip():
            raise invalid("input", f"input[{number}] is empty.")
        if len(text) > MAX_EMBEDDING_INPUT_CHARS:
            raise invalid("input", f"input[{number}] has {len(text)} characters; the most is "
                                   f"{MAX_EMBEDDING_INPUT_CHARS}.")
    return texts


def _embed(name: str, texts: list[str], encoding: str) -> dict[str, Any]:
    import base64

    from generation.embed import encoder_get

    encoder = encoder_get(name)
    vectors = encoder.encode(texts)
    tokens = encoder.count_tokens(texts)
    data = [{"object": "embedding", "index": number,
             "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode() if encoding == "base64"
             else [float(x) for x in row]}
            for number, row in enumerate(vectors)]
    return {"object": "list", "data": data, "model": name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


@api_view(methods=("POST",))
async def embeddings(call: Call) -> HttpResponseBase:
    """OpenAI's ``/v1/embeddings``: unit vectors from the configured embedding model, in the web process."""
    from django.conf import settings

    name = str(getattr(settings, "EMBEDDING_MODEL", "") or "")
    if not name:
        raise ApiError(503, "No embedding model is configured on this server (ATELIER_EMBEDDING_MODEL).",
                       code="embeddings_unavailable")
    model = call.body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", f"model is required: {name!r} is the embedding model here.")
    if model != name:
        raise ApiError(404, f"The embedding model {model!r} does not exist; this server's is {name!r}.",
                       param="model", code="model_not_found")
    encoding = call.body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise invalid("encoding_format", f"encoding_format must be 'float' or 'base64', not {encoding!r}.")
    if call.body.get("dimensions") is not None:
        raise invalid("dimensions", "dimensions cannot be chosen: the model's vectors have a fixed size.")
    texts = _embedding_inputs(call.body)
    return ok(await sync_to_async(_embed, thread_sensitive=False)(name, texts, encoding))


async def openapi(request: HttpRequest) -> HttpResponseBase:
    base = request.build_absolute_uri("/v1")
    return JsonResponse(openapi_document(server_url=base))


async def v1_not_found(request: HttpRequest, rest: str = "") -> HttpResponseBase:
    return not_found(f"Unknown API path /v1/{rest}. GET /v1/openapi.json describes the API.").response()


# --- The project's API page -----------------------------------------------------------

@login_required
def keys(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for_member(user=request.user, project_id=project_id)
    form = KeyCreateForm()
    new_secret: dict[str, Any] | None = None
    if request.method == "POST":
        form = KeyCreateForm(request.POST)
        if form.is_valid():
            try:
                new = services.key_create(
                    actor=project.membership, project=project, name=form.cleaned_data["name"],
                    expires_at=form.expires_at(),
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                # Shown once, in this very response: never in the session, never cached; only its hash is kept.
                new_secret = {"id": new.key.pk, "secret": new.secret}
                form = KeyCreateForm()
    base_url = request.build_absolute_uri("/v1")
    context = {
        "project": project, "form": form, "keys": selectors.key_list_for_member(project=project),
        "new_secret": new_secret, "base_url": base_url, "active_tab": "api",
        "can_generate": membership_may(actor=project.membership, action="api.generate"),
        "example_key": new_secret["secret"] if new_secret else "YOUR_KEY",
        "text_model": _models()[0]["id"],
    }
    response = render(request, "api/keys.html", context)
    if new_secret is not None:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def key_revoke(request: HttpRequest, project_id: int, key_id: int) -> HttpResponse:
    key = selectors.key_get_for_member(user=request.user, project_id=project_id, key_id=key_id)
    services.key_revoke(actor=key.project.membership, key=key)
    messages.success(request, f"Revoked {key.name}: it stops working now.")
    return redirect("api:keys", project_id=project_id)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponseBase:
    """Django's 400 (a malformed path or header that never reaches a view): OpenAI's shape under /v1/."""
    if request.path.startswith("/v1/"):
        return invalid(None, "The request could not be read (a malformed path or header).", code="bad_request").response()
    from django.views.defaults import bad_request as html_bad_request

    return html_bad_request(request, exception)
