"""Generation settings as the chat stores them: a model name, a system prompt and a params dict.

Only the engine's light modules are imported here (types, registry,
validation), and only inside functions: the web process never loads torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ReplySettings:
    model_name: str
    system_prompt: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    use_knowledge: bool = False


def default_model_name() -> str:
    from generation.text.types import DEFAULT_TEXT_MODEL

    return DEFAULT_TEXT_MODEL


def model_choices() -> list[tuple[str, str]]:
    from generation.text.registry import text_models

    return [(spec.name, spec.display_name) for spec in text_models()]


def default_params() -> dict[str, Any]:
    from generation.text.types import DecodingParams

    return DecodingParams().to_dict()


def settings_validate(settings: ReplySettings) -> None:
    """Raise ``generation.errors.ValidationError`` (with ``.field``) for a bad model or parameter."""
    from generation.text.types import DecodingParams
    from generation.text.validation import validate_params

    validate_params(DecodingParams.from_dict(settings.params), model=settings.model_name)


def settings_from_record(record: dict[str, Any]) -> ReplySettings:
    """Settings from a prompt-history ``params`` dict; unknown keys are dropped."""
    from generation.text.types import DecodingParams

    known = set(default_params())
    params = {key: value for key, value in record.items() if key in known}
    try:
        params = DecodingParams.from_dict(params).to_dict()
    except (TypeError, ValueError):
        params = default_params()
    return ReplySettings(
        model_name=str(record.get("model") or default_model_name()),
        system_prompt=str(record.get("system") or ""),
        params=params,
    )
