"""``EditRequest`` checks and the decoding of sources and masks (no torch, no model)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from generation.errors import ValidationError
from generation.image import EditRequest, decode_edit_inputs, decode_image, save_png, validate_edit_request
from generation.image.edit_request import DEFAULT_STRENGTH, resolved_prompt


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


SOURCE = png(Image.new("RGB", (32, 32), "white"))


def square_mask(size: int = 32, box: tuple[int, int, int, int] = (8, 8, 24, 24)) -> bytes:
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, box)
    return png(mask)


def field_of(request: EditRequest) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_edit_request(request)
    return caught.value.field


def test_each_mode_takes_its_default_strength() -> None:
    for mode, strength in DEFAULT_STRENGTH.items():
        mask = square_mask() if mode == "inpaint" else None
        request = EditRequest(
            mode=mode, source=SOURCE, mask=mask, prompt="a red circle", outpaint_sides=("left",)
        )
        validate_edit_request(request)
        assert request.strength == strength
        assert request.steps == 50 and request.scheduler == "ddpm"  # the default model's own defaults


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mode": "sketch"}, "mode"),
        ({"strength": 0.01}, "strength"),
        ({"strength": 1.5}, "strength"),
        ({"strength": float("nan")}, "strength"),
        ({"strength": True}, "strength"),
        ({"prompt": ""}, "prompt"),
        ({"steps": 0}, "steps"),
        ({"model": "nope"}, "model"),
        ({"source": b""}, "image"),
        ({"mask": square_mask()}, "mask"),
        ({"mask_blur": -1}, "mask_blur"),
        ({"inpaint_area": "somewhere"}, "inpaint_area"),
        ({"padding": 5000}, "padding"),
        ({"outpaint_sides": ("up",)}, "outpaint_sides"),
        ({"outpaint_sides": ("left", "left")}, "outpaint_sides"),
        ({"outpaint_pixels": 0}, "outpaint_pixels"),
        ({"fill": "lava"}, "fill"),
        ({"scale": 3}, "scale"),
    ],
)
def test_a_bad_parameter_is_refused_by_name(changes: dict, field: str) -> None:
    request = EditRequest(**{"mode": "img2img", "source": SOURCE, "prompt": "a red circle", **changes})

    assert field_of(request) == field


def test_inpaint_needs_a_mask() -> None:
    assert field_of(EditRequest(mode="inpaint", source=SOURCE, prompt="a red circle")) == "mask"


def test_outpaint_needs_a_side() -> None:
    assert field_of(EditRequest(mode="outpaint", source=SOURCE, prompt="a red circle")) == "outpaint_sides"


def test_only_variations_may_leave_the_prompt_empty() -> None:
    validate_edit_request(EditRequest(mode="variations", source=SOURCE))

    assert field_of(EditRequest(mode="img2img", source=SOURCE)) == "prompt"


def test_a_model_without_the_mode_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ATELIER_IMAGE_MODELS", '[{"name": "only-i2i", "source": "/nowhere", "edit_modes": ["img2img"]}]'
    )
    request = EditRequest(mode="inpaint", source=SOURCE, mask=square_mask(), prompt="x", model="only-i2i")

    with pytest.raises(ValidationError) as caught:
        validate_edit_request(request)
    assert caught.value.field == "mode"
    assert "only-i2i" in caught.value.message and "inpaint" in caught.value.message


def test_to_dict_replaces_the_files_by_their_hashes() -> None:
    request = EditRequest(mode="inpaint", source=SOURCE, mask=square_mask(), prompt="a red circle")
    data = request.to_dict()

    assert "source" not in data and "mask" not in data
    assert len(data["source_hash"]) == 16 and data["mask_hash"] != data["source_hash"]
    assert data["mode"] == "inpaint" and data["strength"] == 1.0


# Decoding ------------------------------------------------------------------


def decode_field(data: bytes, **kwargs) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        decode_image(data, **kwargs)
    return caught.value.field, caught.value.message


def test_a_file_that_is_not_an_image_is_refused() -> None:
    assert decode_field(b"hello, this is text") == ("image", decode_field(b"\x00" * 40)[1])
    assert "not an image" in decode_field(b"hello")[1]


def test_an_svg_is_refused_as_svg() -> None:
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'

    assert "SVG" in decode_field(svg)[1]
    assert "SVG" in decode_field(b"  <svg width='1'/>", field="mask")[1]


def test_an_image_over_the_pixel_limit_is_refused_before_decoding() -> None:
    field, message = decode_field(png(Image.new("RGB", (40, 40))), max_pixels=1000)

    assert field == "image" and "40x40" in message


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_by_pillows_own_limit() -> None:
    field, message = decode_field(_png_header_only(40000, 40000), max_pixels=2**40)

    assert field == "image" and "decompression bomb" in message


def test_an_animated_image_is_refused() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])

    assert "animated" in decode_field(buffer.getvalue())[1]


def test_a_cmyk_image_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (8, 8)).save(buffer, format="JPEG")

    assert "CMYK" in decode_field(buffer.getvalue())[1]


def test_a_16_bit_image_is_refused_by_its_mode() -> None:
    assert "pixel mode" in decode_field(png(Image.new("I;16", (8, 8))))[1]


def test_a_mask_of_another_size_is_refused() -> None:
    request = EditRequest(mode="inpaint", source=SOURCE, mask=square_mask(16, (0, 0, 8, 8)), prompt="x")

    with pytest.raises(ValidationError) as caught:
        decode_edit_inputs(request)
    assert (
        caught.value.field == "mask" and "16x16" in caught.value.message and "32x32" in caught.value.message
    )


def test_an_empty_mask_is_refused() -> None:
    request = EditRequest(mode="inpaint", source=SOURCE, mask=png(Image.new("L", (32, 32), 0)), prompt="x")

    with pytest.raises(ValidationError) as caught:
        decode_edit_inputs(request)
    assert caught.value.field == "mask" and "empty" in caught.value.message


def test_sources_become_rgb_and_masks_greyscale() -> None:
    palette = Image.new("P", (32, 32), 1)
    palette.info["transparency"] = 0
    mask = Image.new("RGB", (32, 32), "black")
    mask.paste((255, 255, 255), (0, 0, 4, 4))
    request = EditRequest(mode="inpaint", source=png(palette), mask=png(mask), prompt="x")

    inputs = decode_edit_inputs(request)

    assert inputs.source.mode == "RGB" and inputs.mask.mode == "L"
    assert np.asarray(inputs.mask)[:4, :4].min() == 255 and np.asarray(inputs.mask)[4:, 4:].max() == 0


def test_a_variation_takes_the_prompt_its_source_carries() -> None:
    buffer = io.BytesIO()
    save_png(Image.new("RGB", (32, 32)), buffer, {"prompt": "a large blue star"})
    request = EditRequest(mode="variations", source=buffer.getvalue())

    assert resolved_prompt(request, decode_edit_inputs(request)).prompt == "a large blue star"
    plain = EditRequest(mode="variations", source=SOURCE)
    assert resolved_prompt(plain, decode_edit_inputs(plain)).prompt == ""
