"""Request bodies of the ``/v1`` endpoints -> the engines' requests, with every bound named.

Range checks are the engines' own (``generation.text.validation``,
``generation.image.validate_image_request``), so the API refuses exactly
what the engines would, naming the API's parameter. Features the engines
don't have are refused by name, never silently ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from webapp.api.errors import ApiError, from_engine, invalid, model_not_found, unsupported

MAX_CHOICES = 4
DEFAULT_MAX_TOKENS = 256

# Accepted and ignored: they change nothing about the result.
_IGNORED = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "prompt_cache_key", "safety_identifier"}
_TEXT_COMMON = {
    "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "n", "stream",
    "stream_options", "top_k", "num_beams", "repetition_penalty", "length_penalty", "presence_penalty",
    "frequency_penalty", "logprobs", "top_logprobs", "logit_bias", "response_format", "tools", "tool_choice",
    "functions", "function_call", "modalities", "audio", "prediction", "reasoning_effort", "web_search_options",
}
CHAT_FIELDS = _TEXT_COMMON | {"messages", "knowledge"}
COMPLETION_FIELDS = _TEXT_COMMON | {"prompt", "echo", "suffix", "best_of"}
# Engine field -> API parameter, for messages from the engine's validation.
TEXT_PARAM_NAMES = {
    "max_new_tokens": "max_tokens", "num_beams": "num_beams", "top_k": "top_k", "temperature": "temperature",
    "top_p": "top_p", "stop": "stop", "seed": "seed", "repetition_penalty": "repetition_penalty",
    "length_penalty": "length_penalty", "model": "model", "messages": "messages",
}


@dataclass(frozen=True)
class TextSpec:
    """A validated text request: ``n`` jobs of the same engine request."""

    model: str
    messages: list[dict[str, str]]
    params: dict[str, Any]  # DecodingParams.to_dict()
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    prompt_text: str = ""  # what the prompt history shows
    max_tokens_param: str = "max_tokens"
    extra: dict[str, Any] = field(default_factory=dict)


def _refuse_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    for name in body:
        if name not in allowed and name not in _IGNORED:
            raise invalid(name, "unknown parameter", code="unknown_parameter")


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for name in ("tools", "functions", "tool_choice", "function_call"):
        if body.get(name) not in (None, [], "none"):
            raise unsupported(name, "Tool and function calling")
    if body.get("logprobs") not in (None, False, 0):
        raise unsupported("logprobs", "Returning log probabilities")
    if body.get("top_logprobs") not in (None, 0):
        raise unsupported("top_logprobs", "Returning log probabilities")
    if body.get("logit_bias") not in (None, {}):
        raise unsupported("logit_bias", "Biasing logits")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else response_format
        if kind != "text":
            raise unsupported("response_format", f"The response format {kind!r} (only 'text' is)")
    for name in ("presence_penalty", "frequency_penalty"):
        value = body.get(name)
        if value not in (None, 0, 0.0):
            raise unsupported(name, f"A nonzero {name} (use the extension 'repetition_penalty', 1 to 2)")
    for name in ("audio", "prediction", "web_search_options", "reasoning_effort"):
        if body.get(name) is not None:
            raise unsupported(name, f"'{name}'")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise unsupported("modalities", "Output other than text")
    if body.get("echo"):
        raise unsupported("echo", "Echoing the prompt")
    if body.get("suffix"):
        raise unsupported("suffix", "Text insertion (suffix)")
    if body.get("best_of") not in (None, 1):
        raise unsupported("best_of", "best_of above 1 (use the extension 'num_beams')")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, "must be an integer")
    return value


def _text_model(body: dict[str, Any]) -> str:
    from generation.errors import GenerationError
    from generation.image.registry import image_models
    from generation.text.registry import text_models

    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model", "is required: a model name from GET /v1/models", code="missing_required_parameter")
    try:
        names = {spec.name for spec in text_models()}
    except GenerationError as exc:
        raise ApiError(500, f"The text model registry is misconfigured: {exc}", type="server_error") from exc
    if model not in names:
        if model in {spec.name for spec in image_models()}:
            raise ApiError(404, f"{model!r} is an image model; use POST /v1/images/generations.",
                           param="model", code="model_not_found")
        raise model_not_found(model)
    return model


def _decoding(body: dict[str, Any], model: str) -> tuple[dict[str, Any], str]:
    from generation.errors import ValidationError
    from generation.text.types import DecodingParams
    from generation.text.validation import validate_params

    max_tokens_param = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _integer(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens")
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    top_p = body.get("top_p", 1.0)
    if top_p is None:
        top_p = 1.0
    for name, value in (("temperature", temperature), ("top_p", top_p)):
        if not _is_number(value):
            raise invalid(name, "must be a number")
    num_beams = _integer(body, "num_beams")
    if num_beams is not None and num_beams > 1:
        strategy = "beam"
    elif temperature == 0:
        strategy = "greedy"
    else:
        strategy = "sample"
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    elif not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        raise invalid("stop", "must be a string or a list of strings")
    values: dict[str, Any] = {
        "strategy": strategy,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": 0,
        "max_new_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        "stop": stop,
        "seed": _integer(body, "seed"),
    }
    for name in ("top_k", "repetition_penalty", "length_penalty"):
        if body.get(name) is not None:
            values[name] = body[name]
    if num_beams is not None:
        values["num_beams"] = num_beams
    names = {**TEXT_PARAM_NAMES, "max_new_tokens": max_tokens_param}
    try:
        params = DecodingParams.from_dict(values)
        validate_params(params, model=model)
    except ValidationError as exc:
        raise from_engine(exc, names=names) from exc
    except TypeError as exc:
        raise invalid(None, f"invalid parameters: {exc}") from exc
    return params.to_dict(), max_tokens_param


def _choices(body: dict[str, Any]) -> int:
    n = _integer(body, "n")
    if n is None:
        return 1
    if not 1 <= n <= MAX_CHOICES:
        raise invalid("n", f"must be an integer from 1 to {MAX_CHOICES}, got {n}")
    return n


def _stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise invalid("stream", "must be true or false")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise invalid("stream_options", "is only allowed with stream: true")
        if not isinstance(options, dict):
            raise invalid("stream_options", "must be an object")
        unknown = set(options) - {"include_usage", "include_obfuscation"}
        if unknown:
            raise invalid("stream_options", f"unknown option {sorted(unknown)[0]!r}")
        include_usage = options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise invalid("stream_options.include_usage", "must be true or false")
    return stream, include_usage


def _content(message: dict[str, Any], position: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise unsupported(f"messages[{position}].content", f"Content of type {kind!r} (only text is)")
            parts.append(part["text"])
        return "".join(parts)
    if content is None and message.get("role") == "assistant":
        return ""
    raise invalid(f"messages[{position}].content", "must be a string or a list of text parts")


def chat_spec(body: dict[str, Any]) -> TextSpec:
    """Validate a ``/v1/chat/completions`` body; raises ``ApiError`` naming the first bad parameter."""
    _refuse_unknown(body, CHAT_FIELDS)
    _refuse_unsupported(body)
    model = _text_model(body)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise invalid("messages", "must be a non-empty list of messages", code="missing_required_parameter")
    messages: list[dict[str, str]] = []
    for position, message in enumerate(raw):
        if not isinstance(message, dict):
            raise invalid(f"messages[{position}]", "must be an object with 'role' and 'content'")
        role = message.get("role")
        if role == "developer":
            role = "system"
        if role in ("tool", "function"):
            raise unsupported(f"messages[{position}].role", f"The {role!r} role (tool calling)")
        if role not in ("system", "user", "assistant"):
            raise invalid(f"messages[{position}].role", "must be 'system', 'user' or 'assistant'")
        if message.get("tool_calls") or message.get("function_call"):
            raise unsupported(f"messages[{position}].tool_calls", "Tool and function calling")
        messages.append({"role": role, "content": _content(message, position)})
    if not any(m["role"] == "user" and m["content"].strip() for m in messages):
        raise invalid("messages", "need at least one user message with text")
    params, max_tokens_param = _decoding(body, model)
    stream, include_usage = _stream_flags(body)
    last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    knowledge = _knowledge(body.get("knowledge"))
    return TextSpec(
        model=model, messages=messages, params=params, n=_choices(body), stream=stream,
        include_usage=include_usage, prompt_text=last_user, max_tokens_param=max_tokens_param,
        extra={} if knowledge is False else {"knowledge": knowledge},
    )


def _knowledge(value: Any) -> bool | list[int] | None:
    """The ``knowledge`` extension: False (absent or false), None (true: every document of the project)
    or the document ids of a list of file ids (``"file-12"``, as ``/v1/files`` names them, or 12)."""
    if value is None or value is False:
        return False
    if value is True:
        return None
    if isinstance(value, list) and value and len(value) <= 100:
        ids: list[int] = []
        for item in value:
            text = str(item).removeprefix("file-") if isinstance(item, str | int) and not isinstance(item, bool) else ""
            if not text.isdigit():
                raise invalid("knowledge", f"{item!r} is not a file id (file-<number>, from /v1/files)")
            ids.append(int(text))
        return ids
    raise invalid("knowledge", "must be true, false, or a non-empty list of up to 100 file ids from /v1/files")


def completion_spec(body: dict[str, Any]) -> TextSpec:
    """Validate a ``/v1/completions`` body. The prompt is sent as one user turn (the models are chat models)."""
    _refuse_unknown(body, COMPLETION_FIELDS)
    _refuse_unsupported(body)
    model = _text_model(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, list):
        raise unsupported("prompt", "A batch of prompts or token ids (send one string)")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("prompt", "must be a non-empty string", code="missing_required_parameter")
    params, max_tokens_param = _decoding(body, model)
    if max_tokens_param == "max_completion_tokens":
        raise invalid("max_completion_tokens", "unknown parameter for completions (use max_tokens)",
                      code="unknown_parameter")
    stream, include_usage = _stream_flags(body)
    return TextSpec(
        model=model, messages=[{"role": "user", "content": prompt}], params=params, n=_choices(body),
        stream=stream, include_usage=include_usage, prompt_text=prompt, max_tokens_param=max_tokens_param,
    )


# --- Images -----------------------------------------------------------------------

IMAGE_FIELDS = {
    "prompt", "model", "n", "size", "response_format", "quality", "style", "stream", "negative_prompt", "steps",
    "guidance_scale", "scheduler", "seed", "background", "moderation", "output_format", "output_compression",
    "partial_images",
}
IMAGE_PARAM_NAMES = {"num_images": "n", "width": "size", "height": "size"}


@dataclass(frozen=True)
class ImageSpec:
    request: Any  # generation.image.ImageRequest
    response_format: str = "url"
    stream: bool = False


def image_spec(body: dict[str, Any]) -> ImageSpec:
    """Validate a ``/v1/images/generations`` body into an ``ImageRequest`` (the engine's static checks)."""
    from generation.errors import ValidationError
    from generation.image import DEFAULT_IMAGE_MODEL, ImageRequest, validate_image_request
    from generation.image.registry import image_models
    from generation.text.registry import text_models

    _refuse_unknown(body, IMAGE_FIELDS)
    for name in ("background", "moderation", "partial_images"):
        if body.get(name) not in (None, "auto", 0):
            raise unsupported(name, f"'{name}'")
    if body.get("output_format") not in (None, "png"):
        raise unsupported("output_format", "Formats other than png")
    if body.get("output_compression") is not None:
        raise unsupported("output_compression", "'output_compression'")
    if body.get("quality") not in (None, "auto", "standard"):
        raise unsupported("quality", f"The quality {body.get('quality')!r} (steps set the quality here)")
    if body.get("style") is not None:
        raise unsupported("style", "'style'")
    model = body.get("model") or DEFAULT_IMAGE_MODEL
    if not isinstance(model, str):
        raise invalid("model", "must be a model name")
    if model not in {spec.name for spec in image_models()}:
        if model in {spec.name for spec in text_models()}:
            raise ApiError(404, f"{model!r} is a text model; use POST /v1/chat/completions.",
                           param="model", code="model_not_found")
        raise model_not_found(model)
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise invalid("prompt", "is required: a string", code="missing_required_parameter")
    response_format = body.get("response_format") or "url"
    if response_format not in ("url", "b64_json"):
        raise invalid("response_format", "must be 'url' or 'b64_json'")
    stream = body.get("stream", False) or False
    if not isinstance(stream, bool):
        raise invalid("stream", "must be true or false")
    n = _integer(body, "n")
    width = height = None
    size = body.get("size")
    if size not in (None, "auto"):
        if not isinstance(size, str) or "x" not in size:
            raise invalid("size", "must be 'WIDTHxHEIGHT', e.g. '32x32', or 'auto'")
        w, _, h = size.partition("x")
        if not (w.isdigit() and h.isdigit()) or len(w) > 6 or len(h) > 6:
            raise invalid("size", "must be 'WIDTHxHEIGHT' in whole pixels, e.g. '32x32'")
        width, height = int(w), int(h)
    values: dict[str, Any] = {"prompt": prompt, "model": model, "width": width, "height": height}
    if n is not None:
        values["num_images"] = n
    for name in ("negative_prompt", "steps", "guidance_scale", "scheduler", "seed"):
        if body.get(name) is not None:
            values[name] = body[name]
    try:
        request = ImageRequest.from_dict(values)
        validate_image_request(request)
    except ValidationError as exc:
        raise from_engine(exc, names=IMAGE_PARAM_NAMES) from exc
    except TypeError as exc:
        raise invalid(None, f"invalid parameters: {exc}") from exc
    return ImageSpec(request=request, response_format=response_format, stream=stream)


# --- /v1/images/edits and /v1/images/variations (issue 19) ----------------------------------------

EDIT_EXTENSIONS = {
    "mode", "strength", "steps", "seed", "scheduler", "negative_prompt", "guidance_scale", "mask_blur",
    "inpaint_area", "padding", "outpaint_sides", "outpaint_pixels", "fill", "scale",
}
EDIT_API_FIELDS = {"prompt", "model", "n", "size", "response_format", "user", "quality", "background",
                   "output_format", "input_fidelity", "stream", *EDIT_EXTENSIONS}
VARIATION_API_FIELDS = {"model", "n", "size", "response_format", "user", *EDIT_EXTENSIONS}
EDIT_PARAM_NAMES = {"num_images": "n", "source": "image"}
_INTS = ("n", "steps", "seed", "mask_blur", "padding", "outpaint_pixels", "scale")
_FLOATS = ("strength", "guidance_scale")


@dataclass(frozen=True)
class EditSpec:
    request: Any  # generation.image.EditRequest
    response_format: str = "url"
    stream: bool = False


def _form_number(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value) if name in _INTS else float(value)
    except (TypeError, ValueError):
        kind = "a whole number" if name in _INTS else "a number"
        raise invalid(name, f"must be {kind}, not {str(value)[:40]!r}") from None


def _openai_mask(data: bytes, max_pixels: int) -> bytes:
    """OpenAI's mask (transparent pixels = the area to change) as the engine's (white = change)."""
    import io

    import numpy as np
    from PIL import Image

    from generation.image import decode_image

    image = decode_image(data, field="mask", max_pixels=max_pixels)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if "A" not in image.getbands():
        raise invalid("mask", "must be a PNG with an alpha channel: its fully transparent pixels mark the area to change")
    alpha = np.asarray(image.getchannel("A"))
    buffer = io.BytesIO()
    Image.fromarray(((alpha == 0) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def edit_spec(body: dict[str, Any], files: dict[str, bytes], *, variations: bool = False) -> EditSpec:
    """Validate an ``/v1/images/edits`` (or ``/variations``) multipart body into an ``EditRequest``.

    Static checks and the image's header here; the studio's ``edit_request_clean`` decodes the files.
    Without a mask and a ``mode``, an image with transparent pixels is inpainted there (as OpenAI's
    edits do); any other image gets image-to-image.
    """
    from django.conf import settings

    from generation.errors import ValidationError
    from generation.image import DEFAULT_IMAGE_MODEL, EditRequest, decode_image, validate_edit_request
    from generation.image.edit_request import edit_result_size
    from generation.image.registry import image_models

    _refuse_unknown(body, VARIATION_API_FIELDS if variations else EDIT_API_FIELDS)
    for name, value in body.items():  # a field sent twice arrives as a list (multipart_body)
        if isinstance(value, list):
            raise invalid(name, "must be given once, as a single value")
    for name in ("background", "input_fidelity"):
        if body.get(name) not in (None, "auto", ""):
            raise unsupported(name, f"'{name}'")
    if body.get("output_format") not in (None, "png"):
        raise unsupported("output_format", "Formats other than png")
    if body.get("quality") not in (None, "auto", "standard"):
        raise unsupported("quality", f"The quality {body.get('quality')!r} (steps set the quality here)")
    if body.get("stream") not in (None, "false", "False", False):
        raise unsupported("stream", "Streaming an edit")
    model = body.get("model") or DEFAULT_IMAGE_MODEL
    if model not in {spec.name for spec in image_models()}:
        raise model_not_found(str(model))
    response_format = body.get("response_format") or "url"
    if response_format not in ("url", "b64_json"):
        raise invalid("response_format", "must be 'url' or 'b64_json'")
    source = files.get("image")
    if not source:
        raise invalid("image", "is required: the image to edit, as a file", code="missing_required_parameter")
    max_pixels = int(settings.MAX_UPLOAD_PIXELS)
    values: dict[str, Any] = {"source": source, "model": model, "prompt": body.get("prompt") or ""}
    if not variations and not isinstance(body.get("prompt"), str):
        raise invalid("prompt", "is required: a string", code="missing_required_parameter")
    try:
        header = decode_image(source, field="image", max_pixels=max_pixels)
        mode = body.get("mode") or ("variations" if variations else None)
        if files.get("mask"):
            values["mask"] = _openai_mask(files["mask"], max_pixels)
            mode = mode or "inpaint"
        elif mode in (None, "inpaint") and "A" in header.getbands() and header.getchannel("A").getextrema()[0] == 0:
            values["mask"] = _openai_mask(source, max_pixels)  # the image's own transparent pixels
            mode = "inpaint"
        values["mode"] = mode or "img2img"
        for name in _INTS + _FLOATS:
            number = _form_number(body, name)
            if number is not None:
                values["num_images" if name == "n" else name] = number
        for name in ("scheduler", "negative_prompt", "inpaint_area", "fill"):
            if body.get(name):
                values[name] = body[name]
        if body.get("outpaint_sides"):
            raw = body["outpaint_sides"]
            values["outpaint_sides"] = tuple(raw if isinstance(raw, list) else str(raw).split(","))
        request = EditRequest(**values)
        validate_edit_request(request)
    except ValidationError as exc:
        raise from_engine(exc, names=EDIT_PARAM_NAMES) from exc
    size = body.get("size")
    if size not in (None, "", "auto"):
        width, height = edit_result_size(request, *header.size)
        if size != f"{width}x{height}":
            raise invalid("size", f"this {request.mode} makes {width}x{height} images; send that or 'auto'")
    return EditSpec(request=request, response_format=response_format)
