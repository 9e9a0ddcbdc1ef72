"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with a matching status.

The ``openai`` client turns each status into its own exception class
(400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError,
404 NotFoundError, 429 RateLimitError, 5xx InternalServerError).
"""
from __future__ import annotations

from typing import Any

from django.http import JsonResponse

# Engine field names -> the API's parameter names.
ENGINE_PARAM_NAMES = {"max_new_tokens": "max_tokens", "num_images": "n", "num_beams": "num_beams"}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def invalid(param: str | None, message: str, *, code: str | None = None) -> ApiError:
    """400 for a request the engines or the API refuse, naming the parameter."""
    text = f"{param}: {message}" if param and not message.startswith(param) else message
    return ApiError(400, text, param=param, code=code or "invalid_value")


def unsupported(param: str, what: str) -> ApiError:
    return ApiError(400, f"{param}: {what} is not supported by this server.", param=param, code="unsupported_parameter")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, type="invalid_request_error", code="invalid_api_key")


def forbidden(message: str) -> ApiError:
    return ApiError(403, message, type="permission_error", code="insufficient_permissions")


def access_revoked() -> ApiError:
    """A stream whose key or role was taken away while it ran."""
    return ApiError(
        403, "Access was revoked while this stream ran (the key, the membership or the role changed).",
        type="permission_error", code="access_revoked",
    )


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404, f"The model {model!r} does not exist. GET /v1/models lists the available ones.",
        param="model", code="model_not_found",
    )


def not_found(message: str) -> ApiError:
    return ApiError(404, message, code="not_found")


def no_worker(seconds: float) -> ApiError:
    return ApiError(
        503, f"No worker took the job within {seconds:g} s; try again later.",
        type="server_error", code="no_worker_available", headers={"Retry-After": "5"},
    )


def engine_error(message: str) -> ApiError:
    return ApiError(500, message, type="server_error", code="engine_error")


def from_engine(exc: Any, *, names: dict[str, str] | None = None) -> ApiError:
    """A ``generation.errors.ValidationError`` as a 400 naming the API's parameter."""
    field = str(getattr(exc, "field", "") or "")
    message = str(getattr(exc, "message", "") or exc)
    param = (names or {}).get(field) or ENGINE_PARAM_NAMES.get(field) or field or None
    return ApiError(400, f"{param}: {message}" if param else message, param=param, code="invalid_value")
