"""The text engine: chat requests decoded by a causal LM, streamed token by token.

Importing this package is cheap: torch and transformers load only when a
model is loaded or run, so the web process may use the types, the registry
and ``validate_params`` freely.
"""
from __future__ import annotations

from generation.text.engine import generate_text
from generation.text.loading import (
    LoadedTextModel,
    clear_text_model_cache,
    load_text_model,
    prepare_text_model,
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
    "TextFinal",
    "TextModelSpec",
    "TextRequest",
    "TokenDelta",
    "clear_text_model_cache",
    "generate_text",
    "get_text_model_spec",
    "load_text_model",
    "prepare_text_model",
    "text_dtype_name",
    "text_models",
    "validate_params",
    "validate_request",
]
