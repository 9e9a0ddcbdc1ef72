"""Editing an existing image: image-to-image, inpaint, outpaint, upscale, variations.

``edit_images(EditRequest(...))`` checks and decodes the files, prepares the
mode's starting image and mask at a size the model works at, runs the engine's
one denoising run (:func:`generation.image.engine._denoise`: same schedulers,
seeds, progress, previews and cancellation as text-to-image), then brings the
result back to the source's geometry. Inpaint and outpaint composite the
source back, so every pixel the mask leaves at 0 is bit-identical to the
source's in the result.

The default ``atelier-shapes`` pipeline does every mode in its own ``__call__``.
Diffusers models go through ``AutoPipelineForImage2Image`` and
``AutoPipelineForInpainting`` built from the loaded pipeline (sharing its
weights), or from the registry's ``inpaint_source`` checkpoint; upscale goes
through diffusers' own ``StableDiffusionUpscalePipeline`` when the registry
names one (``upscale_source``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generation.errors import ValidationError
from generation.image.edit_request import (
    MAX_SOURCE_PIXELS,
    EditInputs,
    EditRequest,
    decode_edit_inputs,
    resolved_prompt,
    validate_edit_request,
)
from generation.image.engine import (
    LoadedImageModel,
    OnStep,
    _denoise,
    _kind,
    _weights_revision,
    load_image_model,
)
from generation.image.registry import ImageModelSpec
from generation.image.request import SCHEDULERS, ImageResult

INPAINT_LIKE = ("inpaint", "outpaint")
# Diffusers' upscaler pipelines Atelier runs, and the factor each one makes.
UPSCALERS = {"StableDiffusionUpscalePipeline": 4}
# The x4 upscaler's noise_level for the upscale mode's default strength (0.3):
# diffusers' own default, 20; strength scales it linearly (1.0 -> 67).
UPSCALER_NOISE_PER_STRENGTH = 20 / 0.3


def work_size(width: int, height: int, spec: ImageModelSpec) -> tuple[int, int]:
    """The size (multiples of 8, within the model's limits) closest to ``width`` x ``height``."""
    scale = min(1.0, math.sqrt(spec.max_pixels / (width * height)), spec.max_size / max(width, height))
    if min(width, height) * scale < spec.min_size:
        scale = spec.min_size / min(width, height)
    low = -(-spec.min_size // 8) * 8
    high = spec.max_size // 8 * 8

    def side(value: int) -> int:
        return min(max(round(value * scale / 8) * 8, low), high)

    return side(width), side(height)


@dataclass(frozen=True)
class _Plan:
    """What the denoising run starts from, and how its output becomes the result."""

    init: Any  # PIL RGB at the work size
    mask: Any | None  # PIL L at the work size (white = repaint), inpaint-like modes only
    finish: Callable[[Any], Any]
    size: tuple[int, int]  # the result's size


def _resized(image: Any, size: tuple[int, int], *, mask: bool = False) -> Any:
    from PIL import Image

    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.BILINEAR if mask else Image.Resampling.LANCZOS)


def _blurred(mask: Any, radius: int) -> Any:
    from PIL import ImageFilter

    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius else mask


def _spread(mask: Any, radius: int) -> Any:
    """The mask the denoising loop repaints: every painted pixel fully, the blur spreading outwards only.

    A blur that also reached inwards would put the source back, partly, into the painted area's edge at
    every step: painting over a shape, its outline then leaks in and the model redraws it
    (bench/image_edit.py: the old shape back in 25% of cases at a 4 px blur, 0% with this).
    """
    from PIL import ImageChops

    return ImageChops.lighter(_blurred(mask, radius), mask)


def _feathered(mask: Any, radius: int) -> Any:
    """The blurred mask, never above the painted one: the feather goes inwards only."""
    from PIL import ImageChops

    return ImageChops.darker(_blurred(mask, radius), mask)


def _inpaint_plan(request: EditRequest, source: Any, mask: Any, spec: ImageModelSpec) -> _Plan:
    from PIL import Image

    soft = _feathered(mask, request.mask_blur)
    guide = _spread(mask, request.mask_blur)
    box = (0, 0, *source.size)
    if request.inpaint_area == "only_masked":
        left, top, right, bottom = mask.getbbox()
        pad = request.padding
        box = (
            max(left - pad, 0),
            max(top - pad, 0),
            min(right + pad, source.width),
            min(bottom + pad, source.height),
        )
    crop, crop_soft = source.crop(box), soft.crop(box)
    size = work_size(crop.width, crop.height, spec)

    def finish(output: Any) -> Any:
        region = _resized(output.convert("RGB"), crop.size)
        if request.keep_unmasked:
            region = Image.composite(region, crop, crop_soft)
        result = source.copy()
        result.paste(region, box[:2])
        return result

    return _Plan(
        init=_resized(crop, size),
        mask=_resized(guide.crop(box), size, mask=True),
        finish=finish,
        size=source.size,
    )


def _outpaint_canvas(request: EditRequest, source: Any, seed: int, max_pixels: int) -> tuple[Any, Any]:
    """The extended canvas, its new area filled, and the mask of that area."""
    import numpy as np
    from PIL import Image, ImageFilter

    n = request.outpaint_pixels
    left, right, top, bottom = (
        n if side in request.outpaint_sides else 0 for side in ("left", "right", "top", "bottom")
    )
    width, height = source.width + left + right, source.height + top + bottom
    if width * height > max_pixels:
        raise ValidationError(
            "outpaint_pixels", f"the result would be {width}x{height}, over {max_pixels} pixels"
        )
    pixels = np.asarray(source)
    padded = np.pad(pixels, ((top, bottom), (left, right), (0, 0)), mode="edge")
    new_area = np.ones((height, width), dtype=bool)
    new_area[top : top + source.height, left : left + source.width] = False
    if request.fill == "noise":
        noise = np.random.default_rng(seed).integers(0, 256, size=padded.shape, dtype=np.uint8)
        padded = np.where(new_area[..., None], noise, padded)
    elif request.fill == "blur":
        blurred = np.asarray(Image.fromarray(padded).filter(ImageFilter.GaussianBlur(max(n / 2, 1))))
        padded = np.where(new_area[..., None], blurred, padded)
    canvas = Image.fromarray(np.ascontiguousarray(padded))
    canvas.paste(source, (left, top))  # the source's own pixels, untouched by any fill
    return canvas, Image.fromarray(new_area.astype(np.uint8) * 255)


def _plan(
    request: EditRequest, inputs: EditInputs, spec: ImageModelSpec, seed: int, max_pixels: int
) -> _Plan:
    from PIL import Image

    source = inputs.source
    if request.mode == "inpaint":
        return _inpaint_plan(request, source, inputs.mask, spec)
    if request.mode == "outpaint":
        canvas, mask = _outpaint_canvas(request, source, seed, max_pixels)
        return _inpaint_plan(request, canvas, mask, spec)
    if request.mode == "upscale":
        target = (source.width * request.scale, source.height * request.scale)
        if target[0] * target[1] > max_pixels:
            raise ValidationError(
                "scale", f"x{request.scale} would be {target[0]}x{target[1]}, over {max_pixels} pixels"
            )
        if spec.upscale_source:
            # The upscaler works on the source itself (sides in multiples of 8)
            # and makes its own factor; the result is then brought to the target.
            low = (max(8, source.width // 8 * 8), max(8, source.height // 8 * 8))
            return _Plan(
                init=_resized(source, low),
                mask=None,
                finish=lambda out: _resized(out.convert("RGB"), target),
                size=target,
            )
        # Refined at the largest size the model takes, then brought to the target.
        big = source.resize(target, Image.Resampling.LANCZOS)
        size = work_size(*target, spec)
        return _Plan(
            init=_resized(big, size),
            mask=None,
            finish=lambda out: _resized(out.convert("RGB"), target),
            size=target,
        )
    size = work_size(source.width, source.height, spec)  # img2img, variations
    return _Plan(
        init=_resized(source, size),
        mask=None,
        finish=lambda out: _resized(out.convert("RGB"), source.size),
        size=source.size,
    )


def _mode_pipe(loaded: LoadedImageModel, mode: str) -> Any:
    """The pipeline that runs ``mode`` for ``loaded``; a clear ``ValidationError("mode")`` if none can."""
    spec = loaded.spec
    if mode == "upscale" and spec.upscale_source:
        return _upscaler(loaded)
    if _kind(spec) == "atelier-shapes":
        return loaded.pipe
    key = "inpaint" if mode in INPAINT_LIKE else "img2img"
    pipe = loaded.mode_pipes.get(key)
    if pipe is not None:
        return pipe
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    try:
        if key == "inpaint" and spec.inpaint_source:
            dtype = torch.float16 if loaded.device.startswith("cuda") else torch.float32
            pipe = AutoPipelineForInpainting.from_pretrained(spec.inpaint_source, dtype=dtype).to(
                loaded.device
            )
        elif key == "inpaint":
            pipe = AutoPipelineForInpainting.from_pipe(loaded.pipe)
        else:
            pipe = AutoPipelineForImage2Image.from_pipe(loaded.pipe)
    except (ValueError, OSError, TypeError) as exc:
        raise ValidationError("mode", f"model {spec.name!r} cannot do {mode}: {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    loaded.mode_pipes[key] = pipe
    return pipe


def _upscaler(loaded: LoadedImageModel) -> Any:
    """The registry's upscaler for ``loaded`` (its own weights and scheduler), loaded once."""
    pipe = loaded.mode_pipes.get("upscale")
    if pipe is not None:
        return pipe
    import torch
    from diffusers import DiffusionPipeline

    spec = loaded.spec
    dtype = torch.float16 if loaded.device.startswith("cuda") else torch.float32
    try:
        pipe = DiffusionPipeline.from_pretrained(spec.upscale_source, dtype=dtype)
    except (ValueError, OSError, TypeError) as exc:
        raise ValidationError("mode", f"model {spec.name!r} cannot do upscale: {exc}") from exc
    if type(pipe).__name__ not in UPSCALERS:
        raise ValidationError(
            "mode",
            f"model {spec.name!r} cannot do upscale: its upscale_source is a {type(pipe).__name__}, "
            f"not one of {', '.join(sorted(UPSCALERS))}",
        )
    pipe = pipe.to(loaded.device)
    pipe.set_progress_bar_config(disable=True)
    loaded.mode_scheduler_configs["upscale"] = dict(pipe.scheduler.config)
    loaded.mode_revisions["upscale"] = _weights_revision(spec.upscale_source)
    loaded.mode_pipes["upscale"] = pipe
    return pipe


def edit_images(
    request: EditRequest,
    *,
    on_step: OnStep | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview: bool = True,
    max_pixels: int = MAX_SOURCE_PIXELS,
) -> ImageResult:
    """Run one edit to completion or cancellation; the same contract as ``generate_images``.

    Raises ``ValidationError`` (field named) for a bad parameter or file, and
    for a mode the model cannot do. ``max_pixels`` caps the source, the mask
    and the result (an upscale's or an outpaint's). The result's ``params``
    hold the request (files as hashes), the seed, the result's size and the
    size the model worked at.
    """
    validate_edit_request(request)
    inputs = decode_edit_inputs(request, max_pixels=max_pixels)
    request = resolved_prompt(request, inputs)
    loaded = load_image_model(request.model)
    spec = loaded.spec
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**32)
    plan = _plan(request, inputs, spec, seed, max_pixels)
    pipe = _mode_pipe(loaded, request.mode)
    call: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance_scale,
        "num_images_per_prompt": request.num_images,
        "image": plan.init,
        "strength": request.strength,
    }
    extra: dict[str, Any] = {}
    if plan.mask is not None:
        call.update(mask_image=plan.mask, width=plan.init.width, height=plan.init.height)
    if request.mode == "upscale" and spec.upscale_source:  # pipe is the upscaler
        noise_level = min(round(request.strength * UPSCALER_NOISE_PER_STRENGTH), int(pipe.config.max_noise_level))
        call["noise_level"] = noise_level
        del call["strength"]
        extra = {
            "upscaler": spec.upscale_source,
            "upscaler_revision": loaded.mode_revisions["upscale"],
            "noise_level": noise_level,
        }
    params: dict[str, Any] = {
        **request.to_dict(),
        "seed": seed,
        "width": plan.size[0],
        "height": plan.size[1],
        "work_width": plan.init.width,
        "work_height": plan.init.height,
        "model_revision": loaded.revision,
        "sampler": SCHEDULERS[request.scheduler][2],
        **extra,
    }
    started = time.perf_counter()
    run = _denoise(
        loaded,
        pipe,
        request.scheduler,
        call,
        seed=seed,
        on_step=on_step,
        should_stop=should_stop,
        preview=preview,
        scheduler_config=loaded.mode_scheduler_configs.get(request.mode),
    )
    return ImageResult(
        images=tuple(plan.finish(image) for image in run.images),
        params=params,
        model=spec.name,
        model_revision=loaded.revision,
        elapsed=time.perf_counter() - started,
        seconds_per_step=run.seconds_per_step,
        cancelled=run.cancelled,
    )
