"""Edits and variations on the real stack through the official ``openai`` client: daphne, a real
Celery worker, the default image model."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from openai import OpenAI

from generation.image import ImageRequest, generate_images, read_png_metadata, save_png
from tests.helpers import make_key
from webapp.studio.models import Asset, JobOrigin

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

PROMPT = "a large red circle on a white background"


@pytest.fixture
def client(asgi_server, celery_worker, project, bob) -> OpenAI:
    return OpenAI(base_url=f"{asgi_server}/v1", api_key=make_key(bob, project, name="edit test").secret,
                  max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def source() -> tuple[np.ndarray, bytes]:
    image = generate_images(ImageRequest(prompt=PROMPT, seed=4, steps=20), preview=False).images[0]
    buffer = io.BytesIO()
    save_png(image, buffer, {"prompt": PROMPT})
    return np.asarray(image), buffer.getvalue()


def _decoded(entry) -> tuple[np.ndarray, bytes]:
    from PIL import Image

    data = base64.b64decode(entry.b64_json)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), data


def test_images_edit_inpaints_the_transparent_area_of_the_mask(client, source):
    from PIL import Image

    pixels, data = source
    alpha = np.full((32, 32), 255, dtype=np.uint8)
    alpha[6:26, 6:26] = 0
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 3] = alpha
    mask = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(mask, format="PNG")

    result = client.images.edit(
        image=("source.png", data, "image/png"), mask=("mask.png", mask.getvalue(), "image/png"),
        prompt="a large blue star on a white background", n=2, response_format="b64_json",
        extra_body={"steps": 12, "seed": 3},
    )  # fmt: skip

    assert len(result.data) == 2 and result.size == "32x32"
    for entry in result.data:
        out, png = _decoded(entry)
        assert np.array_equal(out[alpha == 255], pixels[alpha == 255])
        assert not np.array_equal(out[alpha == 0], pixels[alpha == 0])
        assert "Mode: inpaint" in read_png_metadata(io.BytesIO(png))["parameters"]
    asset = Asset.objects.order_by("pk").first()
    assert asset.edit_mode == "inpaint" and asset.job.origin == JobOrigin.EDIT and asset.mask


def test_images_edit_without_a_mask_is_image_to_image_with_a_strength(client, source):
    _, data = source

    result = client.images.edit(
        image=("source.png", data, "image/png"), prompt=PROMPT, response_format="b64_json",
        extra_body={"strength": "0.4", "steps": 10},
    )  # fmt: skip

    params = read_png_metadata(io.BytesIO(_decoded(result.data[0])[1]))["params"]
    assert (params["mode"], params["strength"]) == ("img2img", 0.4)


def test_create_variation_keeps_the_sources_prompt_and_draws_new_seeds(client, source):
    _, data = source

    result = client.images.create_variation(
        image=("source.png", data, "image/png"), n=2, response_format="b64_json", extra_body={"steps": 10}
    )

    params = [read_png_metadata(io.BytesIO(_decoded(entry)[1]))["params"] for entry in result.data]
    assert [p["mode"] for p in params] == ["variations", "variations"]
    assert params[0]["prompt"] == PROMPT
    assert not np.array_equal(_decoded(result.data[0])[0], _decoded(result.data[1])[0])


def test_a_url_answer_serves_the_edit_to_the_same_key(client, source):
    _, data = source

    result = client.images.create_variation(image=("source.png", data, "image/png"), extra_body={"steps": 6})

    assert result.data[0].url.endswith("/content")
