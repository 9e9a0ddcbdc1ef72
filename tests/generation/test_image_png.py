"""PNG files carry their parameters in an A1111 chunk and a JSON chunk."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from generation.image import read_png_metadata, save_png

PARAMS = {
    "prompt": "a small red star in the top left on a blue background",
    "negative_prompt": "blurry",
    "model": "atelier-shapes",
    "model_revision": "0123456789abcdef",
    "scheduler": "dpmpp_2m",
    "sampler": "DPM++ 2M",
    "steps": 20,
    "guidance_scale": 3.0,
    "seed": 42,
    "width": 32,
    "height": 32,
    "num_images": 1,
}


def test_png_metadata_round_trips_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    save_png(Image.new("RGB", (32, 32), "red"), path, PARAMS)

    meta = read_png_metadata(path)

    assert meta["params"] == PARAMS
    assert Image.open(path).getpixel((0, 0)) == (255, 0, 0)


def test_png_metadata_round_trips_through_a_file_object() -> None:
    buffer = io.BytesIO()
    save_png(Image.new("RGB", (8, 8)), buffer, PARAMS)
    buffer.seek(0)

    assert read_png_metadata(buffer)["params"] == PARAMS


def test_the_parameters_chunk_uses_the_a1111_layout(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    save_png(Image.new("RGB", (8, 8)), path, PARAMS)

    lines = read_png_metadata(path)["parameters"].split("\n")

    assert lines[0] == PARAMS["prompt"]
    assert lines[1] == "Negative prompt: blurry"
    assert lines[2].startswith("Steps: 20, Sampler: DPM++ 2M, CFG scale: 3.0, Seed: 42, Size: 32x32, ")
    assert "Model hash: 0123456789abcdef" in lines[2] and "Model: atelier-shapes" in lines[2]


def test_a_png_without_metadata_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)

    assert read_png_metadata(path) == {"parameters": None, "params": None}
