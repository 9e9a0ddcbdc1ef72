"""The adherence checker's pixel rules (background, position, size) on the data's own renders."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from generation.image import shapes
from generation.image.checker import NOT_FOUND, judge_background, judge_position, judge_size, shape_mask

EVERY_SCENE = shapes.all_scenes(held_out=False) + shapes.all_scenes(held_out=True)


def _jittered(n: int, seed: int) -> list[tuple[shapes.Scene, Image.Image]]:
    rng = random.Random(seed)
    return [(scene, shapes.render(scene, rng)) for scene in rng.sample(EVERY_SCENE, n)]


@pytest.mark.parametrize("attribute", ["background", "position", "size"])
def test_each_pixel_rule_names_every_exact_render(attribute: str) -> None:
    rule = {"background": judge_background, "position": judge_position, "size": judge_size}[attribute]

    wrong = [s for s in EVERY_SCENE if rule(shapes.render(s)) != getattr(s, attribute)]

    assert len(EVERY_SCENE) == 900
    assert wrong == []


@pytest.mark.parametrize("attribute", ["background", "position", "size"])
def test_each_pixel_rule_names_nearly_every_jittered_training_render(attribute: str) -> None:
    rule = {"background": judge_background, "position": judge_position, "size": judge_size}[attribute]
    renders = _jittered(400, seed=3)

    right = sum(rule(image) == getattr(scene, attribute) for scene, image in renders)

    assert right / len(renders) >= 0.99


def test_the_background_rule_rejects_a_colour_the_data_never_uses() -> None:
    purple = Image.new("RGB", (32, 32), (150, 60, 200))

    assert judge_background(purple) == NOT_FOUND


def test_position_and_size_say_none_when_nothing_is_drawn() -> None:
    empty = Image.new("RGB", (32, 32), shapes.BACKGROUNDS["gray"])

    assert judge_position(empty) == NOT_FOUND
    assert judge_size(empty) == NOT_FOUND


def test_a_stray_speck_does_not_move_the_shape() -> None:
    scene = shapes.Scene("circle", "red", "small", "top left", "black")
    pixels = np.asarray(shapes.render(scene)).copy()
    pixels[29, 29] = (255, 255, 255)  # one bright pixel far from the shape
    image = Image.fromarray(pixels)

    assert judge_position(image) == "top left"
    assert judge_size(image) == "small"
    assert not shape_mask(image)[29, 29]
