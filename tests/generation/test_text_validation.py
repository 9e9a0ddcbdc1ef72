from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from generation.errors import GenerationError, ValidationError
from generation.text import (
    DEFAULT_TEXT_MODEL,
    ChatMessage,
    DecodingParams,
    TextRequest,
    get_text_model_spec,
    text_models,
    validate_params,
)
from generation.text.validation import validate_request

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("strategy", "nucleus"),
        ("temperature", -0.1),
        ("temperature", 2.5),
        ("temperature", float("nan")),
        ("temperature", "hot"),
        ("top_k", -1),
        ("top_k", 2.5),
        ("top_p", 0.0),
        ("top_p", 1.01),
        ("repetition_penalty", 0.9),
        ("repetition_penalty", 2.1),
        ("num_beams", 0),
        ("num_beams", 9),
        ("num_beams", True),
        ("length_penalty", -3.0),
        ("length_penalty", 2.5),
        ("max_new_tokens", 0),
        ("max_new_tokens", 8192),
        ("max_new_tokens", 10.0),
        ("stop", ("",)),
        ("stop", ("x" * 65,)),
        ("stop", ("a", "b", "c", "d", "e")),
        ("stop", "not a tuple"),
        ("seed", -1),
        ("seed", 2**32),
        ("seed", "42"),
    ],
)
def test_validate_params_rejects_each_bad_parameter_by_name(field, value):
    params = dataclasses.replace(DecodingParams(), **{field: value})

    with pytest.raises(ValidationError) as caught:
        validate_params(params, model=DEFAULT_TEXT_MODEL)

    assert caught.value.field == field


def test_validate_params_accepts_the_edges_of_every_range():
    validate_params(
        DecodingParams(
            strategy="sample",
            temperature=2.0,
            top_k=0,
            top_p=1.0,
            repetition_penalty=2.0,
            num_beams=8,
            length_penalty=-2.0,
            max_new_tokens=8191,
            stop=("a", "b", "c", "d"),
            seed=2**32 - 1,
        ),
        model=DEFAULT_TEXT_MODEL,
    )


def test_validate_params_rejects_an_unknown_model():
    with pytest.raises(ValidationError) as caught:
        validate_params(DecodingParams(), model="gpt-17")

    assert caught.value.field == "model"


@pytest.mark.parametrize(
    "messages",
    [
        (),
        (ChatMessage("user", "   "),),
        (ChatMessage("assistant", "hello"),),
        (ChatMessage("robot", "hello"),),
    ],
)
def test_validate_request_rejects_empty_or_malformed_messages(messages):
    with pytest.raises(ValidationError) as caught:
        validate_request(TextRequest(messages=messages))

    assert caught.value.field == "messages"


def test_default_model_is_listed_first_and_found_in_the_installed_wheel():
    spec = text_models()[0]

    assert spec.name == DEFAULT_TEXT_MODEL
    assert spec.gguf_path() is not None and spec.gguf_path().is_file()


def test_models_can_be_added_inline_through_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "ATELIER_TEXT_MODELS", json.dumps([{"name": "mine", "source": str(tmp_path), "context_length": 512}])
    )

    spec = get_text_model_spec("mine")

    assert (spec.source, spec.context_length, spec.display_name) == (str(tmp_path), 512, "mine")
    assert [s.name for s in text_models()] == [DEFAULT_TEXT_MODEL, "mine"]


def test_models_can_be_added_from_a_json_file(monkeypatch, tmp_path):
    config = tmp_path / "models.json"
    config.write_text(json.dumps([{"name": "from-file", "source": "org/model", "gguf_file": "m.gguf"}]))
    monkeypatch.setenv("ATELIER_TEXT_MODELS", str(config))

    assert get_text_model_spec("from-file").gguf_file == "m.gguf"


def test_malformed_model_configuration_is_a_generation_error(monkeypatch):
    monkeypatch.setenv("ATELIER_TEXT_MODELS", '[{"name": "no-source"}]')

    with pytest.raises(GenerationError, match="source"):
        text_models()


def test_validating_a_form_loads_neither_torch_nor_django():
    code = (
        "import sys\n"
        "from generation.text import DecodingParams, validate_params, text_models\n"
        "validate_params(DecodingParams(), model='smollm2-135m-instruct')\n"
        "text_models()\n"
        "import generation.text.cli, generation.text.engine, generation.text.loading, generation.text.decoding\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'django') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == ""


def test_a_model_whose_files_are_missing_is_a_generation_error(monkeypatch, tmp_path):
    from generation.text import prepare_text_model

    monkeypatch.setenv(
        "ATELIER_TEXT_MODELS",
        json.dumps([{"name": "gone", "source": str(tmp_path / "nowhere"), "gguf_file": "model.gguf"}]),
    )

    with pytest.raises(GenerationError, match="gone"):
        prepare_text_model("gone")
