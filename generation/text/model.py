"""A loaded text model: what loading makes and decoding reads (kept apart so neither imports the other)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generation.text.registry import TextModelSpec


@dataclass(frozen=True)
class LoadedTextModel:
    """A model ready to decode. Shared read-only between requests and threads.

    ``backend`` is ``transformers`` (``model`` is the torch module) or
    ``openvino`` (``model`` is a ``ContinuousBatchingPipeline``). The
    tokenizer is always the Hugging Face one: it applies the chat template
    and decodes on both backends.
    """

    spec: TextModelSpec
    model: Any
    tokenizer: Any
    device: str
    dtype_name: str
    eos_token_ids: frozenset[int]
    context_length: int
    load_seconds: float
    backend: str = "transformers"

    @property
    def name(self) -> str:
        return self.spec.name
