"""Requests, validation and the model registry: no torch, no loaded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generation.errors import GenerationError, ValidationError
from generation.image import (
    DEFAULT_IMAGE_MODEL,
    SCHEDULERS,
    ImageRequest,
    get_image_model_spec,
    image_models,
    validate_image_request,
)

REQUIRED_SCHEDULERS = {"ddpm", "ddim", "euler", "euler_a", "dpmpp_2m"}


@pytest.fixture(autouse=True)
def no_user_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATELIER_IMAGE_MODELS", raising=False)


def test_a_request_takes_the_default_models_defaults() -> None:
    spec = get_image_model_spec(DEFAULT_IMAGE_MODEL)
    request = ImageRequest(prompt="a red star")

    assert request.model == DEFAULT_IMAGE_MODEL
    assert (request.scheduler, request.steps, request.guidance_scale) == (
        spec.default_scheduler,
        spec.default_steps,
        spec.default_guidance,
    )
    assert request.width is None and request.height is None and request.seed is None
    validate_image_request(request)


def test_request_round_trips_through_json() -> None:
    request = ImageRequest(prompt="a red star", negative_prompt="blue", seed=3, width=40, num_images=2)

    assert ImageRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_from_dict_refuses_unknown_keys_by_name() -> None:
    with pytest.raises(ValidationError) as error:
        ImageRequest.from_dict({"prompt": "a red star", "cfg": 3})

    assert error.value.field == "cfg"


def test_from_dict_requires_a_prompt() -> None:
    with pytest.raises(ValidationError) as error:
        ImageRequest.from_dict({"steps": 3})

    assert error.value.field == "prompt"


def test_the_required_schedulers_are_known() -> None:
    assert set(SCHEDULERS) >= REQUIRED_SCHEDULERS


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 5000}, "prompt"),
        ({"negative_prompt": "x" * 5000}, "negative_prompt"),
        ({"model": "no-such-model"}, "model"),
        ({"scheduler": "plms-turbo"}, "scheduler"),
        ({"steps": 0}, "steps"),
        ({"steps": 151}, "steps"),
        ({"steps": 10**12}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"steps": True}, "steps"),
        ({"steps": "20"}, "steps"),
        ({"guidance_scale": -0.5}, "guidance_scale"),
        ({"guidance_scale": 30.5}, "guidance_scale"),
        ({"guidance_scale": float("nan")}, "guidance_scale"),
        ({"guidance_scale": float("inf")}, "guidance_scale"),
        ({"guidance_scale": "7"}, "guidance_scale"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"width": 36}, "width"),
        ({"height": 36}, "height"),
        ({"width": 8}, "width"),
        ({"width": 10**9}, "width"),
        ({"height": 10**9}, "height"),
        ({"width": 64, "height": 72}, "height"),
        ({"width": 32.0}, "width"),
        ({"num_images": 0}, "num_images"),
        ({"num_images": 9}, "num_images"),
        ({"num_images": 10**9}, "num_images"),
    ],
)
def test_bad_parameters_are_rejected_by_name(changes: dict, field: str) -> None:
    request = ImageRequest(**{"prompt": "a red star", **changes})

    with pytest.raises(ValidationError) as error:
        validate_image_request(request)

    assert error.value.field == field


def test_the_pixel_cap_applies_to_width_times_height(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {
        "name": "big",
        "source": "some/model",
        "min_size": 64,
        "max_size": 2048,
        "max_pixels": 1024 * 1024,
    }
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", json.dumps([spec]))

    validate_image_request(ImageRequest(prompt="p", model="big", width=2048, height=512))
    with pytest.raises(ValidationError) as error:
        validate_image_request(ImageRequest(prompt="p", model="big", width=2048, height=1024))

    assert error.value.field == "width"


def test_the_edges_of_every_range_are_accepted() -> None:
    for changes in (
        {"steps": 1},
        {"steps": 150},
        {"guidance_scale": 0},
        {"guidance_scale": 30.0},
        {"num_images": 8},
        {"seed": 0},
        {"width": 64, "height": 64},
        {"width": 32, "height": 32},
    ):
        validate_image_request(ImageRequest(**{"prompt": "a red star", **changes}))


def test_the_default_model_is_registered_first() -> None:
    models = image_models()

    assert models[0].name == DEFAULT_IMAGE_MODEL
    assert models[0].kind == "atelier-shapes"
    assert models[0].allowed_sizes == [32, 40, 48, 56, 64]


def test_user_models_come_from_inline_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ATELIER_IMAGE_MODELS",
        json.dumps([{"name": "sd15", "source": "runwayml/stable-diffusion-v1-5", "default_guidance": 7.5}]),
    )

    spec = get_image_model_spec("sd15")

    assert spec.source == "runwayml/stable-diffusion-v1-5"
    assert spec.display_name == "sd15" and spec.default_guidance == 7.5
    assert [m.name for m in image_models()] == [DEFAULT_IMAGE_MODEL, "atelier-shapes-v1", "sd15"]
    assert ImageRequest(prompt="a cat", model="sd15").guidance_scale == 7.5


def test_user_models_come_from_a_json_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": [{"name": "local", "source": str(tmp_path), "kind": "diffusers"}]}))
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", str(path))

    assert get_image_model_spec("local").kind == "diffusers"


@pytest.mark.parametrize(
    "value",
    [
        "/no/such/file.json",
        "[{",
        '[{"name": "x"}]',
        '[{"name": "x", "source": "y", "colour": "red"}]',
        '[{"name": "x", "source": "y", "kind": "onnx"}]',
        '{"models": 3}',
    ],
)
def test_a_broken_model_list_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", value)

    with pytest.raises(GenerationError, match="ATELIER_IMAGE_MODELS"):
        image_models()


def test_validation_loads_no_torch() -> None:
    code = (
        "import sys; from generation.image import ImageRequest, validate_image_request;"
        "validate_image_request(ImageRequest(prompt='a red star', width=64, height=64));"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "False"


def test_the_first_default_model_stays_registered_under_its_own_name() -> None:
    spec = get_image_model_spec("atelier-shapes-v1")

    assert spec.kind == "atelier-shapes" and Path(spec.source).name == "shapes_v1"
    assert (spec.default_scheduler, spec.default_steps, spec.default_guidance) == ("ddpm", 50, 3.0)
