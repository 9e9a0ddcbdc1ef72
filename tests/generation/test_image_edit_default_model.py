"""Editing with the committed default model (``atelier-shapes``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from generation.image import EditRequest, ImageRequest, edit_images, generate_images, save_png

pytestmark = pytest.mark.model

PROMPT = "a large red circle on a white background"


@pytest.fixture(scope="module")
def source() -> tuple[Image.Image, bytes]:
    image = generate_images(ImageRequest(prompt=PROMPT, seed=11), preview=False).images[0]
    buffer = io.BytesIO()
    save_png(image, buffer, {"prompt": PROMPT})
    return image, buffer.getvalue()


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")


def test_inpaint_on_the_default_model_keeps_the_outside_bit_identical(source) -> None:
    image, data = source
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[6:26, 6:26] = 255
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")

    for seed in range(3):
        result = edit_images(
            EditRequest(
                mode="inpaint",
                source=data,
                mask=buffer.getvalue(),
                prompt="a large blue star on a black background",
                seed=seed,
            ),
            preview=False,
        )
        out, original = np.asarray(result.images[0]), np.asarray(image)
        assert np.array_equal(out[mask == 0], original[mask == 0])
        assert np.abs(out[mask > 0].astype(int) - original[mask > 0]).mean() > 5  # measured: about 10


def test_img2img_on_the_default_model_moves_further_with_more_strength(source) -> None:
    image, data = source

    def distance(strength: float) -> float:
        results = [
            edit_images(
                EditRequest(mode="img2img", source=data, prompt=PROMPT, strength=strength, seed=seed),
                preview=False,
            )
            for seed in range(4)
        ]
        return float(
            np.mean(
                [
                    np.abs(np.asarray(r.images[0], dtype=int) - np.asarray(image, dtype=int)).mean()
                    for r in results
                ]
            )
        )

    weak, middle, strong = distance(0.2), distance(0.5), distance(0.9)

    assert weak < middle < strong
