"""Static checks on a text request: everything that needs no loaded model.

The web process calls these to validate forms, so this module must stay free
of torch and transformers. The prompt-length checks, which need the
tokenizer, happen in ``generate_text``.
"""
from __future__ import annotations

import math

from generation.errors import ValidationError
from generation.text.registry import get_text_model_spec
from generation.text.types import ROLES, STRATEGIES, ChatMessage, DecodingParams, TextRequest

MAX_BEAMS = 8
MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 64
MAX_SEED = 2**32 - 1


def _number(field: str, value: object, low: float, high: float, *, low_open: bool = False) -> None:
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(field, f"must be a number in {interval}")
    if value < low or value > high or (low_open and value == low):
        raise ValidationError(field, f"must be in {interval}, got {value:g}")


def _integer(field: str, value: object, low: int, high: int | None = None) -> None:
    allowed = f"from {low} to {high}" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer {allowed}")
    if value < low or (high is not None and value > high):
        raise ValidationError(field, f"must be an integer {allowed}, got {value}")


def validate_params(params: DecodingParams, *, model: str) -> None:
    """Raise ``ValidationError`` naming the first parameter out of range.

    Ranges: ``strategy`` greedy|beam|sample; ``temperature`` [0, 2];
    ``top_k`` >= 0 (0 = off); ``top_p`` (0, 1]; ``repetition_penalty`` [1, 2];
    ``num_beams`` 1-8; ``length_penalty`` [-2, 2]; ``max_new_tokens`` 1 to the
    model's context length minus one (minus the prompt, checked later);
    ``stop`` up to 4 strings of 1-64 characters; ``seed`` none or 0 to 2**32-1.
    Also raises for an unknown ``model``. Loads nothing.
    """
    if not isinstance(params, DecodingParams):
        raise ValidationError("params", "must be DecodingParams")
    spec = get_text_model_spec(model)
    if params.strategy not in STRATEGIES:
        raise ValidationError("strategy", f"must be one of {', '.join(STRATEGIES)}, got {params.strategy!r}")
    _number("temperature", params.temperature, 0.0, 2.0)
    _integer("top_k", params.top_k, 0)
    _number("top_p", params.top_p, 0.0, 1.0, low_open=True)
    _number("repetition_penalty", params.repetition_penalty, 1.0, 2.0)
    _integer("num_beams", params.num_beams, 1, MAX_BEAMS)
    _number("length_penalty", params.length_penalty, -2.0, 2.0)
    _integer("max_new_tokens", params.max_new_tokens, 1, spec.context_length - 1)
    if not isinstance(params.stop, tuple) or len(params.stop) > MAX_STOP_SEQUENCES:
        raise ValidationError("stop", f"must be a list of at most {MAX_STOP_SEQUENCES} strings")
    for stop in params.stop:
        if not isinstance(stop, str) or not 1 <= len(stop) <= MAX_STOP_LENGTH:
            raise ValidationError("stop", f"each stop sequence must be 1 to {MAX_STOP_LENGTH} characters")
    if params.seed is not None:
        _integer("seed", params.seed, 0, MAX_SEED)


def validate_request(request: TextRequest) -> None:
    """``validate_params`` plus the static checks on the messages and system prompt."""
    if not isinstance(request, TextRequest):
        raise ValidationError("request", "must be a TextRequest")
    if not isinstance(request.model, str):
        raise ValidationError("model", "must be a model name")
    validate_params(request.params, model=request.model)
    if request.system is not None and not isinstance(request.system, str):
        raise ValidationError("system", "must be text or none")
    if not isinstance(request.messages, tuple) or not request.messages:
        raise ValidationError("messages", "must hold at least one message")
    for message in request.messages:
        if not isinstance(message, ChatMessage):
            raise ValidationError("messages", "each message must be a ChatMessage")
        if message.role not in ROLES:
            raise ValidationError("messages", f"role must be one of {', '.join(ROLES)}, got {message.role!r}")
        if not isinstance(message.content, str):
            raise ValidationError("messages", "message content must be text")
    if not any(m.role == "user" and m.content.strip() for m in request.messages):
        raise ValidationError("messages", "the prompt is empty")
