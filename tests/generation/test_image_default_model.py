"""The committed default model: it loads and draws what the prompt asks for."""
from __future__ import annotations

import pytest

from generation.image import DEFAULT_IMAGE_MODEL, ImageRequest, generate_images, get_image_model_spec
from generation.image.checker import WEIGHTS, accuracy_on_generator, classify, load_checker
from generation.image.registry import DEFAULT_MODEL_DIR

pytestmark = pytest.mark.model

# Fixed prompts and seeds on pairs the model was trained on.
FIXED = [
    ("a large red circle on a white background", "circle", "red", 0),
    ("a large blue star on a black background", "star", "blue", 0),
    ("a large yellow square on a gray background", "square", "yellow", 0),
    ("a large green cross on a white background", "cross", "green", 0),
]


def test_the_default_model_weights_are_committed() -> None:
    assert (DEFAULT_MODEL_DIR / "model_index.json").is_file(), f"the default image model is missing from {DEFAULT_MODEL_DIR}"


@pytest.fixture(scope="module")
def checker():
    return load_checker()


def test_the_checker_recognises_real_generator_images(checker) -> None:
    assert WEIGHTS.is_file()
    accuracy = accuracy_on_generator(checker, n=200)

    assert accuracy["shape"] >= 0.95 and accuracy["colour"] >= 0.95


def test_the_default_model_weights_fit_the_budget() -> None:
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file())

    assert size <= 25 * 2**20
    assert (DEFAULT_MODEL_DIR / "train_config.json").is_file()
    assert (DEFAULT_MODEL_DIR / "loss_log.csv").is_file()


@pytest.mark.parametrize(("prompt", "shape", "colour", "seed"), FIXED)
def test_the_default_model_draws_what_the_prompt_asks_for(
    checker, monkeypatch: pytest.MonkeyPatch, prompt: str, shape: str, colour: str, seed: int
) -> None:
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")
    result = generate_images(ImageRequest(prompt=prompt, seed=seed))

    spec = get_image_model_spec(DEFAULT_IMAGE_MODEL)
    assert result.images[0].size == (spec.default_width, spec.default_height)
    assert classify(checker, list(result.images)) == [{"shape": shape, "colour": colour}]


def test_the_first_default_model_keeps_the_revision_its_assets_point_at() -> None:
    from generation.image.engine import _weights_revision

    assert _weights_revision(get_image_model_spec("atelier-shapes-v1").source) == "2f9d9debb8e86c32"
