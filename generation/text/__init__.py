"""The text engine: chat requests decoded by a causal LM, streamed token by token.

Importing this package is cheap: torch and transformers load only when a
model is loaded or run, so the web process may use the types, the registry
and ``validate_params`` freely.
"""

from __future__ import annotations

from generation.text.batching import TextEngine, text_batch_size
from generation.text.engine import generate_text, text_engine
from generation.text.loading import (
    LoadedTextModel,
    clear_text_model_cache,
    load_text_model,
    prepare_openvino_text_model,
    prepare_text_model,
    text_backend_name,
    text_dtype_name,
)
from generation.text.registry import TextModelSpec, get_text_model_spec, text_models
from generation.text.types import (
    DEFAULT_TEXT_MODEL,
    ChatMessage,
    DecodingParams,
    TextFinal,
    TextRequest,
    TokenDelta,
)
from generation.text.validation import validate_params, validate_request

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "ChatMessage",
    "DecodingParams",
    "LoadedTextModel",
    "TextEngine",
    "TextFinal",
    "TextModelSpec",
    "TextRequest",
    "TokenDelta",
    "clear_text_model_cache",
    "generate_text",
    "get_text_model_spec",
    "load_text_model",
    "prepare_openvino_text_model",
    "prepare_text_model",
    "text_backend_name",
    "text_batch_size",
    "text_dtype_name",
    "text_engine",
    "text_models",
    "validate_params",
    "validate_request",
]
