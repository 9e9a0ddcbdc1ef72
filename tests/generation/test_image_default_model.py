"""The committed default model: it loads and draws what the prompt asks for."""
from __future__ import annotations

import pytest

from generation.image import DEFAULT_IMAGE_MODEL, ImageRequest, generate_images, get_image_model_spec, shapes
from generation.image.checker import (
    WEIGHTS,
    accuracy_on_generator,
    classify,
    judge_background,
    judge_position,
    load_checker,
)
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
    """Issue 25: at most 20 MB of image weights in the repository, the first default model's included."""
    from generation.image.registry import SHAPES_V1_DIR

    size = sum(p.stat().st_size for d in (DEFAULT_MODEL_DIR, SHAPES_V1_DIR) for p in d.rglob("*") if p.is_file())

    assert size <= 20 * 2**20
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


def _held_out_scenes(n: int) -> list[shapes.Scene]:
    """``n`` held-out scenes: each pair in turn, positions and backgrounds cycling (all of them covered)."""
    pairs = sorted(shapes.HELD_OUT)
    return [
        shapes.Scene(
            shape=pairs[i % len(pairs)][1],
            colour=pairs[i % len(pairs)][0],
            size=list(shapes.SIZES)[(i // 2) % len(shapes.SIZES)],
            position=shapes.POSITIONS[(i + i // len(pairs)) % len(shapes.POSITIONS)],
            background=list(shapes.BACKGROUNDS)[i % len(shapes.BACKGROUNDS)],
        )
        for i in range(n)
    ]


def test_the_default_model_puts_held_out_shapes_where_asked_on_the_background_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 25's regression bar: 20 held-out prompts at the default settings, judged by the bench's pixel rules.

    The first default model scored 20% (position) and 17% (background) here; a
    change that loses the caption's grip on either falls under the bar.
    """
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")
    scenes = _held_out_scenes(20)
    assert {s.position for s in scenes} == set(shapes.POSITIONS)
    assert {s.background for s in scenes} == set(shapes.BACKGROUNDS)

    images = [generate_images(ImageRequest(prompt=s.caption(), seed=i)).images[0] for i, s in enumerate(scenes)]

    position = sum(judge_position(img) == s.position for img, s in zip(images, scenes, strict=True)) / len(scenes)
    background = sum(judge_background(img) == s.background for img, s in zip(images, scenes, strict=True)) / len(
        scenes
    )
    assert position >= 0.7, f"position right in {position:.0%} of held-out prompts"
    assert background >= 0.7, f"background right in {background:.0%} of held-out prompts"
