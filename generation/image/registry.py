"""Which image models exist: the built-in default plus user-registered ones.

No torch here: the web process reads specs to build forms and validate input.

Users register models through ``ATELIER_IMAGE_MODELS``: a path to a JSON file,
or the JSON itself, holding a list of objects (or ``{"models": [...]}``)::

    [{"name": "sd15", "source": "runwayml/stable-diffusion-v1-5",
      "default_width": 512, "default_height": 512, "default_guidance": 7.5}]

``source`` is a Hugging Face id (resolved offline, from the local HF cache) or
a local folder in diffusers format. A user entry with a built-in name replaces it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from generation.errors import GenerationError, ValidationError

DEFAULT_IMAGE_MODEL = "atelier-shapes"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
# The first default model's weights (2174 steps, issue 25's "before"), kept so
# assets drawn with it (model revision 2f9d9debb8e86c32) can be drawn again.
SHAPES_V1_NAME = "atelier-shapes-v1"
SHAPES_V1_DIR = Path(__file__).resolve().parent / "shapes_v1"

# Model kinds: "atelier-shapes" is this package's pixel-space pipeline; "diffusers"
# is any pipeline AutoPipelineForText2Image / DiffusionPipeline can load; "auto"
# picks between them from the folder's model_index.json.
KINDS = ("auto", "atelier-shapes", "diffusers")
# What generation/image/edit.py can do with an existing image. A model does all
# of them unless its entry lists fewer in "edit_modes"; a mode it leaves out is
# refused by name, never done some other way.
EDIT_MODES = ("img2img", "inpaint", "outpaint", "upscale", "variations")


@dataclass(frozen=True)
class ImageModelSpec:
    """What the engine needs to know about a model before loading it."""

    name: str
    source: str
    display_name: str = ""
    kind: str = "auto"
    default_width: int = 512
    default_height: int = 512
    default_steps: int = 30
    default_guidance: float = 7.0
    default_scheduler: str = "dpmpp_2m"
    min_size: int = 256
    max_size: int = 1024
    max_pixels: int = 1024 * 1024
    edit_modes: tuple[str, ...] = EDIT_MODES
    # A dedicated inpainting checkpoint (HF id or folder) for inpaint and
    # outpaint; empty means the model's own weights through AutoPipelineForInpainting.
    inpaint_source: str = ""
    # Diffusers' own upscaler (a StableDiffusionUpscalePipeline folder or HF id,
    # such as stabilityai/stable-diffusion-x4-upscaler) for upscale; empty means
    # a Lanczos resize, then image-to-image at low strength ("hires fix").
    upscale_source: str = ""

    def __post_init__(self) -> None:
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)
        if isinstance(self.edit_modes, list):
            object.__setattr__(self, "edit_modes", tuple(self.edit_modes))

    @property
    def allowed_sizes(self) -> list[int]:
        """Every side length a request may ask for (multiples of 8)."""
        start = -(-self.min_size // 8) * 8
        return list(range(start, self.max_size + 1, 8))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


BUILTIN_MODELS: tuple[ImageModelSpec, ...] = (
    ImageModelSpec(
        name=DEFAULT_IMAGE_MODEL,
        display_name="Atelier shapes (32x32, trained in-house)",
        source=str(DEFAULT_MODEL_DIR),
        kind="atelier-shapes",
        default_width=32,
        default_height=32,
        # Chosen by bench/image_adherence.py: ancestral DDPM at 50 steps beat
        # DDIM and DPM++ on held-out prompts for this small pixel-space model.
        default_steps=50,
        default_guidance=3.0,
        default_scheduler="ddpm",
        min_size=32,
        max_size=64,
        max_pixels=64 * 64,
    ),
    ImageModelSpec(
        name=SHAPES_V1_NAME,
        display_name="Atelier shapes v1 (32x32, the first default)",
        source=str(SHAPES_V1_DIR),
        kind="atelier-shapes",
        default_width=32,
        default_height=32,
        # Exactly the settings its images were drawn with.
        default_steps=50,
        default_guidance=3.0,
        default_scheduler="ddpm",
        min_size=32,
        max_size=64,
        max_pixels=64 * 64,
    ),
)


def _user_specs() -> list[ImageModelSpec]:
    raw = os.environ.get("ATELIER_IMAGE_MODELS", "").strip()
    if not raw:
        return []
    try:
        text = raw if raw[0] in "[{" else Path(raw).read_text()
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise GenerationError(f"ATELIER_IMAGE_MODELS: cannot read {raw[:80]!r}: {exc}") from exc
    entries = data.get("models", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise GenerationError("ATELIER_IMAGE_MODELS: expected a list of model objects")
    known = {f.name for f in fields(ImageModelSpec)}
    specs = []
    for entry in entries:
        if not isinstance(entry, dict) or not {"name", "source"} <= entry.keys():
            raise GenerationError(f"ATELIER_IMAGE_MODELS: each model needs a name and a source: {entry!r}")
        unknown = sorted(entry.keys() - known)
        if unknown:
            raise GenerationError(f"ATELIER_IMAGE_MODELS: unknown fields {unknown} in {entry['name']!r}")
        if entry.get("kind", "auto") not in KINDS:
            raise GenerationError(f"ATELIER_IMAGE_MODELS: kind must be one of {KINDS}")
        modes = entry.get("edit_modes", EDIT_MODES)
        if not isinstance(modes, list | tuple) or not set(modes) <= set(EDIT_MODES):
            raise GenerationError(f"ATELIER_IMAGE_MODELS: edit_modes must be a list among {EDIT_MODES}")
        specs.append(ImageModelSpec(**entry))
    return specs


def image_models() -> list[ImageModelSpec]:
    """Every registered model, the default first. Reads ``ATELIER_IMAGE_MODELS`` each call."""
    models = {spec.name: spec for spec in BUILTIN_MODELS}
    for spec in _user_specs():
        models[spec.name] = spec
    return list(models.values())


def get_image_model_spec(name: str) -> ImageModelSpec:
    """The spec registered under ``name``; raises ``ValidationError("model", ...)`` if none is."""
    for spec in image_models():
        if spec.name == name:
            return spec
    raise ValidationError("model", f"unknown image model {name!r}")
