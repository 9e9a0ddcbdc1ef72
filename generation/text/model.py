"""A loaded text model: what loading makes and decoding reads (kept apart so neither imports the other)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generation.text.registry import TextModelSpec


@dataclass(frozen=True)
class LoadedTextModel:
    """A model ready to decode. Shared read-only between requests and threads."""

    spec: TextModelSpec
    model: Any
    tokenizer: Any
    device: str
    dtype_name: str
    eos_token_ids: frozenset[int]
    context_length: int
    load_seconds: float

    @property
    def name(self) -> str:
        return self.spec.name
