"""``EditRequest``: one edit of an existing image, and the checks on it.

No torch here: the web process validates uploads with :func:`validate_edit_request`
and :func:`decode_edit_inputs` (Pillow and numpy only), so a bad file is
refused, with the field named, before anything is queued.

Masks follow diffusers and AUTOMATIC1111: white (255) marks the pixels to
repaint, black (0) the pixels to keep, grey a partial repaint. A pixel that is
0 in the mask is never changed in the result (the engine composites the
source back), whatever ``mask_blur`` is: the blur feathers inwards only.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any

from generation.errors import ValidationError
from generation.image.registry import DEFAULT_IMAGE_MODEL, EDIT_MODES, get_image_model_spec
from generation.image.request import ImageRequest, validate_image_request

MODES = EDIT_MODES
MASK_MODES = ("inpaint",)
SIDES = ("left", "right", "top", "bottom")
FILLS = ("noise", "edge", "blur")
INPAINT_AREAS = ("whole", "only_masked")
SCALES = (2, 4)
MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0
# Per mode: how far the source is noised before denoising. Inpaint and outpaint
# repaint their area from scratch; upscale only sharpens ("hires fix").
DEFAULT_STRENGTH = {"img2img": 0.6, "inpaint": 1.0, "outpaint": 1.0, "upscale": 0.3, "variations": 0.6}
MAX_MASK_BLUR = 64
MAX_PADDING = 1024
MAX_OUTPAINT_PIXELS = 1024
# The engine's own ceiling on a decoded source (and on an upscale's or an
# outpaint's result); the web layer sets a lower one (ATELIER_MAX_UPLOAD_PIXELS).
MAX_SOURCE_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
PIXEL_MODES = ("RGB", "RGBA", "L", "LA", "P", "1")


@dataclass(frozen=True)
class EditRequest:
    """One edit job: a source image (encoded bytes), a mask where the mode needs one, and a prompt.

    Generation fields mean what they mean in :class:`ImageRequest` and take the
    model's defaults the same way. ``strength`` None takes the mode's default
    (:data:`DEFAULT_STRENGTH`). ``prompt`` may be empty for ``variations`` only:
    the prompt embedded in the source PNG is used, if there is one.
    """

    mode: str
    source: bytes = field(repr=False)
    prompt: str = ""
    mask: bytes | None = field(default=None, repr=False)
    strength: float = None  # type: ignore[assignment]
    negative_prompt: str = ""
    model: str = DEFAULT_IMAGE_MODEL
    scheduler: str = None  # type: ignore[assignment]
    steps: int = None  # type: ignore[assignment]
    guidance_scale: float = None  # type: ignore[assignment]
    seed: int | None = None
    num_images: int = 1
    # inpaint
    mask_blur: int = 4
    inpaint_area: str = "whole"
    padding: int = 32
    keep_unmasked: bool = True
    # outpaint
    outpaint_sides: tuple[str, ...] = ()
    outpaint_pixels: int = 16
    fill: str = "edge"
    # upscale
    scale: int = 2

    def __post_init__(self) -> None:
        if self.strength is None and self.mode in DEFAULT_STRENGTH:
            object.__setattr__(self, "strength", DEFAULT_STRENGTH[self.mode])
        if isinstance(self.outpaint_sides, list):
            object.__setattr__(self, "outpaint_sides", tuple(self.outpaint_sides))
        base = self.image_request()
        for name in ("scheduler", "steps", "guidance_scale"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(base, name))

    def image_request(self, prompt: str | None = None) -> ImageRequest:
        """The generation fields as an :class:`ImageRequest` (size left to the source)."""
        return ImageRequest(
            prompt=self.prompt if prompt is None else prompt,
            negative_prompt=self.negative_prompt,
            model=self.model,
            scheduler=self.scheduler,
            steps=self.steps,
            guidance_scale=self.guidance_scale,
            seed=self.seed,
            num_images=self.num_images,
        )

    @property
    def source_hash(self) -> str:
        return _hash(self.source)

    @property
    def mask_hash(self) -> str | None:
        return _hash(self.mask) if self.mask is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields: the bytes are replaced by their hashes (sha256, 16 hex digits)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in {"source", "mask"}}
        data["outpaint_sides"] = list(self.outpaint_sides)
        data["source_hash"] = self.source_hash
        data["mask_hash"] = self.mask_hash
        return data


def _hash(data: bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()[:16]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(request: EditRequest, name: str, low: int, high: int) -> None:
    value = getattr(request, name)
    if not _is_int(value) or not low <= value <= high:
        raise ValidationError(name, f"must be a whole number from {low} to {high}")


def validate_edit_request(request: EditRequest) -> None:
    """Raise ``ValidationError(field, message)`` for the first bad parameter.

    Static checks only (the files are checked by :func:`decode_edit_inputs`).
    A model that cannot do the mode is refused here by name.
    """
    if request.mode not in MODES:
        raise ValidationError("mode", f"must be one of {', '.join(MODES)}")
    prompt = request.prompt
    if request.mode == "variations" and isinstance(prompt, str) and not prompt.strip():
        prompt = "variations"  # checked for everything else; the real prompt may come from the source
    validate_image_request(request.image_request(prompt))
    spec = get_image_model_spec(request.model)
    if request.mode not in spec.edit_modes:
        raise ValidationError(
            "mode",
            f"model {spec.name!r} cannot do {request.mode} (it does: {', '.join(spec.edit_modes) or 'none'})",
        )
    strength = request.strength
    if (
        not isinstance(strength, int | float)
        or isinstance(strength, bool)
        or not math.isfinite(strength)
        or not MIN_STRENGTH <= strength <= MAX_STRENGTH
    ):
        raise ValidationError("strength", f"must be a number from {MIN_STRENGTH:g} to {MAX_STRENGTH:g}")
    if not isinstance(request.source, bytes | bytearray) or not request.source:
        raise ValidationError("image", "is required")
    if request.mode in MASK_MODES:
        if not isinstance(request.mask, bytes | bytearray) or not request.mask:
            raise ValidationError("mask", f"is required for {request.mode}")
    elif request.mask is not None:
        raise ValidationError("mask", f"is only used by {', '.join(MASK_MODES)}, not {request.mode}")
    _int_in(request, "mask_blur", 0, MAX_MASK_BLUR)
    if request.inpaint_area not in INPAINT_AREAS:
        raise ValidationError("inpaint_area", f"must be one of {', '.join(INPAINT_AREAS)}")
    _int_in(request, "padding", 0, MAX_PADDING)
    if not isinstance(request.keep_unmasked, bool):
        raise ValidationError("keep_unmasked", "must be true or false")
    sides = request.outpaint_sides
    if (
        not isinstance(sides, tuple)
        or any(side not in SIDES for side in sides)
        or len(set(sides)) != len(sides)
    ):
        raise ValidationError("outpaint_sides", f"must be distinct sides among {', '.join(SIDES)}")
    if request.mode == "outpaint" and not sides:
        raise ValidationError("outpaint_sides", "choose at least one side to extend")
    _int_in(request, "outpaint_pixels", 1, MAX_OUTPAINT_PIXELS)
    if request.fill not in FILLS:
        raise ValidationError("fill", f"must be one of {', '.join(FILLS)}")
    if request.scale not in SCALES or not _is_int(request.scale):
        raise ValidationError("scale", f"must be one of {', '.join(map(str, SCALES))}")


@dataclass(frozen=True)
class EditInputs:
    """The decoded, checked files: ``source`` RGB, ``mask`` L (or None)."""

    source: Any  # PIL.Image.Image
    mask: Any | None
    source_params: dict[str, Any] = field(default_factory=dict)


def _looks_like_svg(data: bytes) -> bool:
    head = bytes(data[:1024]).lstrip().lower()
    return head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head


def decode_image(data: bytes, *, field: str = "image", max_pixels: int = MAX_SOURCE_PIXELS) -> Any:
    """Open ``data`` as a still raster image, checked; returns a loaded PIL image.

    Refused, by ``field``: empty data, SVG, anything Pillow cannot read among
    :data:`FORMATS`, more than ``max_pixels`` pixels (checked from the header,
    before any pixel is decoded), a decompression bomb, animation, and pixel
    modes other than 8-bit RGB(A), greyscale and palette (CMYK among them).
    """
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, bytes | bytearray) or not data:
        raise ValidationError(field, "is empty")
    if _looks_like_svg(data):
        raise ValidationError(field, "is an SVG; send a raster image (PNG, JPEG or WebP)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(bytes(data)), formats=FORMATS)
            width, height = image.size
            if width * height > max_pixels:
                raise ValidationError(field, f"is {width}x{height}, over the limit of {max_pixels} pixels")
            if getattr(image, "n_frames", 1) > 1:
                raise ValidationError(field, "is animated; send a still image")
            if image.mode == "CMYK":
                raise ValidationError(field, "is CMYK; convert it to RGB first")
            if image.mode not in PIXEL_MODES:
                raise ValidationError(
                    field, f"has pixel mode {image.mode}; send 8-bit RGB, RGBA or greyscale"
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationError(field, "is a decompression bomb (too many pixels for its size)") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(
            field, "is not an image Atelier can read (PNG, JPEG, WebP, GIF or BMP)"
        ) from exc
    return image


def decode_edit_inputs(request: EditRequest, *, max_pixels: int = MAX_SOURCE_PIXELS) -> EditInputs:
    """Decode and check the source and the mask of a (validated) request.

    The source becomes RGB (alpha dropped). The mask becomes L; it must have
    the source's size and mark at least one pixel.
    """
    import json

    raw = decode_image(request.source, field="image", max_pixels=max_pixels)
    text = getattr(raw, "text", None) or {}
    try:
        source_params = json.loads(text["atelier"]) if isinstance(text.get("atelier"), str) else {}
    except ValueError:
        source_params = {}
    if not isinstance(source_params, dict):
        source_params = {}
    source = raw.convert("RGBA").convert("RGB") if raw.mode == "P" else raw.convert("RGB")
    mask = None
    if request.mask is not None:
        raw_mask = decode_image(request.mask, field="mask", max_pixels=max_pixels)
        if raw_mask.size != source.size:
            raise ValidationError(
                "mask",
                f"is {raw_mask.size[0]}x{raw_mask.size[1]} but the image is {source.size[0]}x{source.size[1]}",
            )
        mask = raw_mask.convert("L")
        if mask.getbbox() is None:
            raise ValidationError("mask", "is empty; paint the area to change")
    return EditInputs(source=source, mask=mask, source_params=source_params)


def resolved_prompt(request: EditRequest, inputs: EditInputs) -> EditRequest:
    """``request`` with the prompt a variation takes from its source, when it brings none."""
    if request.mode == "variations" and not request.prompt.strip():
        embedded = inputs.source_params.get("prompt")
        return replace(request, prompt=embedded if isinstance(embedded, str) else "")
    return request


def edit_result_size(request: EditRequest, width: int, height: int) -> tuple[int, int]:
    """The size of the images an edit of a ``width`` x ``height`` source makes."""
    if request.mode == "upscale":
        return width * request.scale, height * request.scale
    if request.mode == "outpaint":
        n = request.outpaint_pixels
        sides = request.outpaint_sides
        return (
            width + n * (("left" in sides) + ("right" in sides)),
            height + n * (("top" in sides) + ("bottom" in sides)),
        )
    return width, height
