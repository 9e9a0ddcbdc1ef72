"""The settings a template pins, checked by the engines' own static validation.

A chat template may pin the model, the system prompt and any decoding
parameter; an image template any studio parameter but the prompt, the seed
and the batch size. Unpinned settings are left to the user. The engines'
light modules (no torch) are imported inside the functions.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

CHAT_KEYS = ("model", "system", "strategy", "temperature", "top_k", "top_p", "repetition_penalty", "num_beams",
             "length_penalty", "max_new_tokens", "stop", "seed")
IMAGE_KEYS = ("negative_prompt", "model", "scheduler", "steps", "guidance_scale", "width", "height")
MAX_SYSTEM_CHARS = 8000


def _engine_error(exc: Any) -> ValidationError:
    return ValidationError({exc.field: exc.message})


def _pinned(settings: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise ValidationError({"settings": "must be an object"})
    unknown = sorted(set(settings) - set(keys))
    if unknown:
        raise ValidationError({unknown[0]: f"cannot be pinned (allowed: {', '.join(keys)})"})
    return {key: value for key, value in settings.items() if value is not None and value != "" and value != []}


def chat_settings_clean(settings: dict[str, Any]) -> dict[str, Any]:
    """The pinned chat settings, or ValidationError({field: message}) from the text engine."""
    from generation.errors import ValidationError as EngineValidationError
    from generation.text.types import DEFAULT_TEXT_MODEL, DecodingParams
    from generation.text.validation import validate_params

    pinned = _pinned(settings, CHAT_KEYS)
    system = pinned.get("system", "")
    if not isinstance(system, str) or len(system) > MAX_SYSTEM_CHARS:
        raise ValidationError({"system": f"must be text of at most {MAX_SYSTEM_CHARS} characters"})
    params = {key: value for key, value in pinned.items() if key not in ("model", "system")}
    try:
        decoded = DecodingParams.from_dict(params)
        validate_params(decoded, model=pinned.get("model", DEFAULT_TEXT_MODEL))
    except EngineValidationError as exc:
        raise _engine_error(exc) from None
    except TypeError as exc:
        raise ValidationError({"settings": str(exc)}) from None
    if "stop" in pinned:
        pinned["stop"] = list(decoded.stop)
    return pinned


def image_settings_clean(settings: dict[str, Any]) -> dict[str, Any]:
    """The pinned image settings, or ValidationError({field: message}) from the image engine."""
    from generation.errors import ValidationError as EngineValidationError
    from generation.image import ImageRequest, validate_image_request

    pinned = _pinned(settings, IMAGE_KEYS)
    try:
        validate_image_request(ImageRequest(prompt="template check", **pinned))
    except EngineValidationError as exc:
        raise _engine_error(exc) from None
    except TypeError as exc:
        raise ValidationError({"settings": str(exc)}) from None
    return pinned


def settings_clean(*, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    return image_settings_clean(settings) if kind == "image" else chat_settings_clean(settings)


def settings_as_fields(*, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The pinned settings as the chat composer's or studio form's field values."""
    fields = dict(settings)
    if kind == "chat" and isinstance(fields.get("stop"), list):
        fields["stop"] = "\n".join(fields["stop"])
    return fields
