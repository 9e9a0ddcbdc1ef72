"""Requests and results of the text engine: frozen, JSON-friendly dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from generation.errors import ValidationError

DEFAULT_TEXT_MODEL = "smollm2-135m-instruct"

STRATEGIES = ("greedy", "beam", "sample")
ROLES = ("system", "user", "assistant")
FINISH_REASONS = ("stop", "length", "cancelled", "error")


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class DecodingParams:
    """How to pick tokens. ``validate_params`` gives the allowed ranges.

    ``temperature``, ``top_k`` and ``top_p`` apply to ``sample``; ``num_beams``
    and ``length_penalty`` to ``beam``; ``repetition_penalty``,
    ``max_new_tokens`` and ``stop`` to every strategy. ``top_k=0`` and
    ``top_p=1`` switch those filters off.
    """

    strategy: str = "greedy"
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.0
    num_beams: int = 4
    length_penalty: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (``stop`` becomes a list) that ``from_dict`` reads back."""
        data = dataclasses.asdict(self)
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodingParams:
        """Build params from a dict such as ``to_dict`` gives; missing keys take defaults.

        Raises ``ValidationError`` on unknown keys or a ``stop`` that is not a
        list of strings. Ranges are checked by ``validate_params``, not here.
        """
        if not isinstance(data, dict):
            raise ValidationError("params", "must be an object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError(
                unknown[0], f"unknown decoding parameter (allowed: {', '.join(sorted(known))})"
            )
        values = dict(data)
        if "stop" in values:
            stop = values["stop"]
            if isinstance(stop, str):
                stop = [stop]
            if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
                raise ValidationError("stop", "must be a list of strings")
            values["stop"] = tuple(stop)
        return cls(**values)


@dataclass(frozen=True)
class TextRequest:
    messages: tuple[ChatMessage, ...]
    model: str = DEFAULT_TEXT_MODEL
    system: str | None = None
    params: DecodingParams = field(default_factory=DecodingParams)


@dataclass(frozen=True)
class TokenDelta:
    """New text from one decoding step.

    ``index`` counts deltas from 0. ``elapsed`` is seconds since decoding of
    the request began. A step whose text is held back (a possible start of a
    stop sequence, or half a UTF-8 character) yields no delta.
    """

    text: str
    index: int
    elapsed: float


@dataclass(frozen=True)
class TextFinal:
    """The last record of every stream.

    ``text`` equals the concatenation of the stream's deltas. ``tokens_per_second``
    is the decode rate after the first token (prefill excluded);
    ``time_to_first_token`` is ``None`` when no token was generated.
    ``backend`` names the engine backend (``openvino`` or ``transformers``);
    ``batch_max`` and ``batch_mean`` are the largest and the mean number of
    rows in the steps that decoded this request (1 when it ran alone).
    """

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float | None
    tokens_per_second: float
    elapsed: float
    model: str
    params: DecodingParams
    error: str | None = None
    backend: str = ""
    batch_max: int = 0
    batch_mean: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["params"] = self.params.to_dict()
        return data
