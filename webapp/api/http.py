"""The plumbing of every ``/v1`` view: method, bearer key, limits, JSON body, errors, headers.

Views under ``/v1`` never look at the session or CSRF: a bearer key is the
only credential. Every error leaves as OpenAI's error shape.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from webapp.api import selectors, services
from webapp.api.errors import ApiError, access_revoked, forbidden
from webapp.api.limits import Lease, limits_acquire
from webapp.core.access import RECHECK_SECONDS
from webapp.core.errors import error_logged, public_failure
from webapp.core.jobs import QuotaExceeded
from webapp.usage.services import BudgetExceeded

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """One authenticated API request."""

    request: HttpRequest
    principal: selectors.Principal
    body: dict[str, Any] = field(default_factory=dict)
    lease: Lease | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Uploaded files of a multipart request (``api_view(body_kind="multipart")``), by field name,
    # and the names their clients gave them.
    files: dict[str, bytes] = field(default_factory=dict)
    filenames: dict[str, str] = field(default_factory=dict)

    def stream(self, events: AsyncIterator[bytes]) -> StreamingHttpResponse:
        """An SSE response that owns the request's limit slot until the stream ends.

        Access is re-checked before each event, at most ``RECHECK_SECONDS`` apart, as
        sockets do (``webapp.core.access``): once the key is revoked or its user may no
        longer generate, the stream ends with an error event and ``[DONE]``, and closing
        ``events`` stops the request's jobs.
        """
        lease, self.lease = self.lease, None
        principal = self.principal

        async def allowed() -> bool:
            return await sync_to_async(selectors.principal_may_still_generate, thread_sensitive=False)(
                principal=principal
            )

        async def body() -> AsyncIterator[bytes]:
            checked = time.monotonic()
            try:
                async for part in events:
                    if time.monotonic() - checked >= RECHECK_SECONDS:
                        checked = time.monotonic()
                        if not await allowed():
                            yield sse(access_revoked().body())
                            yield sse("[DONE]")
                            return
                    yield part
            finally:
                try:
                    await events.aclose()  # type: ignore[attr-defined]
                finally:
                    if lease is not None:
                        await sync_to_async(lease.release, thread_sensitive=False)()

        response = StreamingHttpResponse(body(), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response


def _reject_nan(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _body_check(request: HttpRequest, *, limit: int, content_type: str) -> None:
    """A clear 400 for a declared body over ``limit`` or another content type, before anything is read."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise ApiError(400, f"The request body is {declared} bytes; the limit is {limit} bytes.",
                       code="request_too_large")
    if request.content_type != content_type:
        raise ApiError(400, f"Content-Type must be {content_type}, not {request.content_type or 'missing'!r}.",
                       code="invalid_content_type")


def json_body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object; a clear 400 for a wrong content type, a body over the limit, or bad JSON."""
    limit = int(settings.API_MAX_BODY_BYTES)
    _body_check(request, limit=limit, content_type="application/json")
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(400, f"The request body is over the limit of {limit} bytes.", code="request_too_large") from None
    if len(raw) > limit:
        raise ApiError(400, f"The request body is {len(raw)} bytes; the limit is {limit} bytes.", code="request_too_large")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_nan)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    return body


def multipart_body(
    request: HttpRequest, *, file_limit: int
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
    """A ``multipart/form-data`` request's fields, files and the files' names (OpenAI's image edit
    and file upload shapes).

    The body limit is two files of ``file_limit`` and their fields; a clear 400 for another content
    type or a body over it. A file is read up to one byte over ``file_limit``, enough for the
    service to refuse it by name.
    """
    limit = 2 * file_limit + int(settings.API_MAX_BODY_BYTES)
    _body_check(request, limit=limit, content_type="multipart/form-data")
    try:
        fields = {name: values[0] if len(values) == 1 else values for name, values in request.POST.lists()}
        uploads = {name.removesuffix("[]"): request.FILES.getlist(name)[0] for name in request.FILES}
        files = {name: upload.read(file_limit + 1) for name, upload in uploads.items()}
    except RequestDataTooBig:
        raise ApiError(400, f"The request body is over the limit of {limit} bytes.", code="request_too_large") from None
    return fields, files, {name: upload.name or "" for name, upload in uploads.items()}


def _authenticate(authorization: str, limited: bool) -> tuple[selectors.Principal, Lease | None]:
    principal = selectors.key_authenticate(authorization=authorization)
    lease = limits_acquire(key=principal.key) if limited else None
    services.key_record_request(key_id=principal.key.pk)
    return principal, lease


def _with_headers(response: HttpResponseBase, headers: dict[str, str]) -> HttpResponseBase:
    for name, value in headers.items():
        if name not in response:
            response[name] = value
    return response


def api_view(
    *, methods: tuple[str, ...], limited: bool = True, body_kind: str = "json",
    file_limit_setting: str = "MAX_UPLOAD_BYTES",
) -> Callable[[Callable[..., Awaitable[HttpResponseBase]]], Any]:
    """Wrap an async ``view(call, **kwargs)``: bearer auth (every request), limits, a JSON body for POST
    (or, with ``body_kind="multipart"``, form fields and files, each read up to one byte over the
    setting named by ``file_limit_setting``)."""

    def decorate(view: Callable[..., Awaitable[HttpResponseBase]]) -> Any:
        @csrf_exempt
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            call: Call | None = None
            headers: dict[str, str] = {}
            response: HttpResponseBase
            try:
                if request.method not in methods:
                    raise ApiError(405, f"{request.method} is not allowed here; use {', '.join(methods)}.",
                                   code="method_not_allowed", headers={"Allow": ", ".join(methods)})
                principal, lease = await sync_to_async(_authenticate)(
                    request.headers.get("Authorization", ""), limited
                )
                headers = dict(lease.headers) if lease else {}
                files: dict[str, bytes] = {}
                filenames: dict[str, str] = {}
                if request.method != "POST":
                    body: dict[str, Any] = {}
                elif body_kind == "multipart":
                    body, files, filenames = await sync_to_async(multipart_body)(
                        request, file_limit=int(getattr(settings, file_limit_setting))
                    )
                else:
                    body = json_body(request)
                call = Call(request=request, principal=principal, body=body, lease=lease,
                            files=files, filenames=filenames)
                response = await view(call, *args, **kwargs)
            except ApiError as exc:
                response = exc.response()
            except PermissionDenied as exc:  # the permission gate (webapp.workspaces.permissions)
                response = forbidden(str(exc)).response()
            except BudgetExceeded as exc:  # a monthly budget used up (webapp.usage): OpenAI's answer for it
                response = ApiError(429, " ".join(exc.messages), type="insufficient_quota",
                                    code="insufficient_quota").response()
            except QuotaExceeded as exc:  # the user's share of a queue (text jobs, image jobs waiting)
                response = ApiError(429, " ".join(exc.messages), type="requests", code="quota_exceeded",
                                    headers={"Retry-After": "1"}).response()
            except DjangoValidationError as exc:  # a service's own bound (e.g. the prompt history's length)
                fields = list(getattr(exc, "message_dict", {}) or {})
                param = {"text": "messages"}.get(fields[0], fields[0]) if fields else None
                response = ApiError(400, " ".join(exc.messages), param=param, code="invalid_value").response()
            except Exception:
                error_id = error_logged(logger, "API request %s %s failed", request.method, request.path)
                response = ApiError(500, public_failure("The request", error_id), type="server_error",
                                    code="internal_error").response()
            finally:
                if call is not None and call.lease is not None:
                    await sync_to_async(call.lease.release, thread_sensitive=False)()
            return _with_headers(response, headers)

        return wrapper

    return decorate


def ok(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status)


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


KEEPALIVE = b": keep-alive\n\n"
