"""PNG files that carry their generation parameters.

Two tEXt chunks: ``parameters`` in the AUTOMATIC1111 layout that image
browsers and other UIs read, and ``atelier`` holding every parameter as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from PIL import Image, PngImagePlugin

JSON_KEY = "atelier"


def a1111_parameters(params: dict[str, Any]) -> str:
    """``params`` in the text layout AUTOMATIC1111's "PNG Info" reads."""
    lines = [str(params.get("prompt", ""))]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    settings = [
        ("Steps", params.get("steps")),
        ("Sampler", params.get("sampler") or params.get("scheduler")),
        ("CFG scale", params.get("guidance_scale")),
        ("Seed", params.get("seed")),
        ("Size", f"{params['width']}x{params['height']}" if params.get("width") else None),
        ("Model hash", params.get("model_revision")),
        ("Model", params.get("model")),
        ("Batch size", params.get("num_images")),
        ("Batch pos", params.get("batch_index")),
        # Edits (generation/image/edit.py); A1111's own keys where it has one.
        ("Mode", params.get("mode")),
        ("Denoising strength", params.get("strength")),
        ("Source hash", params.get("source_hash")),
        ("Mask hash", params.get("mask_hash")),
        ("Mask blur", params.get("mask_blur") if params.get("mask_hash") else None),
        ("Inpaint area", "Only masked" if params.get("inpaint_area") == "only_masked" else None),
        ("Masked area padding", params.get("padding") if params.get("inpaint_area") == "only_masked" else None),
        ("Upscaler", params.get("upscaler")),
        ("Upscaler hash", params.get("upscaler_revision")),
        ("Noise level", params.get("noise_level")),
    ]
    lines.append(", ".join(f"{key}: {value}" for key, value in settings if value is not None))
    return "\n".join(lines)


def save_png(image: Image.Image, path_or_file: str | Path | IO[bytes], params: dict[str, Any]) -> None:
    """Write ``image`` as PNG with ``params`` embedded (both chunks)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", a1111_parameters(params))
    info.add_text(JSON_KEY, json.dumps(params, sort_keys=True, default=str))
    image.save(path_or_file, format="PNG", pnginfo=info)


def read_png_metadata(path_or_file: str | Path | IO[bytes]) -> dict[str, Any]:
    """``{"parameters": str | None, "params": dict | None}`` from a PNG's text chunks."""
    with Image.open(path_or_file) as image:
        text = dict(getattr(image, "text", {}) or image.info)
    raw = text.get(JSON_KEY)
    try:
        params = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        params = None
    parameters = text.get("parameters")
    return {"parameters": parameters if isinstance(parameters, str) else None, "params": params}
