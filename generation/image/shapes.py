"""The procedural data the default model learns from: captioned coloured shapes.

Plain numpy + PIL (no torch), so the benchmark's checker, the trainer and the
tests share one definition of the vocabulary and the held-out combinations.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 32
_SUPERSAMPLE = 4

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 175, 50),
    "blue": (40, 70, 235),
    "yellow": (245, 220, 30),
    "purple": (150, 45, 205),
    "cyan": (30, 215, 225),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (12, 12, 12),
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
}
SIZES: dict[str, float] = {"small": 7.0, "large": 11.0}
POSITIONS: tuple[str, ...] = ("center", "top left", "top right", "bottom left", "bottom right")

# (colour, shape) pairs that training never shows; the adherence benchmark
# asks for exactly these, so it measures composition rather than recall.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {("red", "star"), ("green", "triangle"), ("blue", "square"), ("yellow", "circle"), ("purple", "cross")}
)

VOCABULARY: tuple[str, ...] = (
    "a", "an", "the", "in", "on", "of", "background", "top", "bottom", "left", "right", "center",
    "middle", "corner", "image", "picture", "shape",
    *SIZES, *COLOURS, *SHAPES, *BACKGROUNDS,
)  # fmt: skip


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    size: str
    position: str
    background: str

    def caption(self, rng: random.Random | None = None) -> str:
        """The full caption, or (with ``rng``) one with optional parts dropped.

        Dropping parts teaches the model short prompts ("a red star") as well.
        """
        keep_size = keep_position = keep_background = True
        if rng is not None:
            keep_size, keep_position, keep_background = (rng.random() > 0.25 for _ in range(3))
        words = ["a"]
        if keep_size:
            words.append(self.size)
        words += [self.colour, self.shape]
        if keep_position:
            words += ["in", "the", self.position]
        if keep_background:
            words += ["on", "a", self.background, "background"]
        return " ".join(words)


def all_scenes(*, held_out: bool) -> list[Scene]:
    """Every scene whose (colour, shape) pair is (or is not) held out."""
    return [
        Scene(shape, colour, size, position, background)
        for shape in SHAPES
        for colour in COLOURS
        for size in SIZES
        for position in POSITIONS
        for background in BACKGROUNDS
        if ((colour, shape) in HELD_OUT) == held_out
    ]


def random_scene(rng: random.Random, *, held_out: bool | None = False) -> Scene:
    """A random scene; ``held_out=None`` draws from every combination."""
    while True:
        scene = Scene(
            rng.choice(SHAPES),
            rng.choice(list(COLOURS)),
            rng.choice(list(SIZES)),
            rng.choice(POSITIONS),
            rng.choice(list(BACKGROUNDS)),
        )
        if held_out is None or ((scene.colour, scene.shape) in HELD_OUT) == held_out:
            return scene


def parse_caption(text: str) -> dict[str, str]:
    """Which vocabulary words of each kind a prompt names (first of each kind)."""
    words = text.lower().replace(",", " ").split()
    found: dict[str, str] = {}
    for word in words:
        for kind, names in (
            ("shape", SHAPES),
            ("colour", COLOURS),
            ("size", SIZES),
            ("background", BACKGROUNDS),
        ):
            if word in names and kind not in found:
                # "on a blue background": the word after "on a" is the background.
                found[kind] = word
    return found


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        r = r * 0.85
        pts = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif shape == "triangle":
        pts = [
            (r * math.cos(a), r * math.sin(a) + r * 0.15)
            for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
    elif shape == "star":
        pts = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((radius * math.cos(a), radius * math.sin(a)))
    elif shape == "cross":
        w = r * 0.36
        pts = [
            (-w, -r),
            (w, -r),
            (w, -w),
            (r, -w),
            (r, w),
            (w, w),
            (w, r),
            (-w, r),
            (-w, w),
            (-r, w),
            (-r, -w),
            (-w, -w),
        ]
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(shape)
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def render(scene: Scene, rng: random.Random | None = None) -> Image.Image:
    """Draw ``scene`` at 32x32 (antialiased by supersampling).

    With ``rng``, size, position and rotation jitter slightly (training data);
    without, the scene is drawn exactly (reference images).
    """

    def wobble(amount: float) -> float:
        return rng.uniform(-amount, amount) if rng is not None else 0.0

    big = IMAGE_SIZE * _SUPERSAMPLE
    image = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    r = SIZES[scene.size] + wobble(1.0)
    offset = IMAGE_SIZE / 2 - SIZES[scene.size] - 1.5
    dx = -1 if "left" in scene.position else 1 if "right" in scene.position else 0
    dy = -1 if "top" in scene.position else 1 if "bottom" in scene.position else 0
    cx = IMAGE_SIZE / 2 + dx * offset + wobble(1.0)
    cy = IMAGE_SIZE / 2 + dy * offset + wobble(1.0)
    angle = math.radians(wobble(12.0))
    colour = COLOURS[scene.colour]
    s = _SUPERSAMPLE
    if scene.shape == "circle":
        draw.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=colour)
    else:
        draw.polygon([(x * s, y * s) for x, y in _polygon(scene.shape, cx, cy, r, angle)], fill=colour)
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)


def batch(rng: random.Random, n: int, *, held_out: bool | None = False) -> tuple[np.ndarray, list[Scene]]:
    """``n`` random scenes as a uint8 array (n, 32, 32, 3) and their scenes."""
    scenes = [random_scene(rng, held_out=held_out) for _ in range(n)]
    pixels = np.stack([np.asarray(render(scene, rng)) for scene in scenes])
    return pixels, scenes
