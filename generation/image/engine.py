"""Loading image models and running them.

Every model, the default one included, is a diffusers pipeline called with
Stable Diffusion's arguments; progress, previews and cancellation all go
through ``callback_on_step_end``, so one code path serves them all.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.errors import GenerationError
from generation.image.registry import DEFAULT_IMAGE_MODEL, ImageModelSpec, get_image_model_spec
from generation.image.request import SCHEDULERS, ImageRequest, ImageResult, validate_image_request

OnStep = Callable[[int, int, Any], None]
PREVIEW_MAX_SIDE = 128

# Linear latent -> RGB maps (rows: latent channels), the "cheap approximation"
# that A1111 and ComfyUI use for previews instead of a VAE decode.
_SD15_LATENT_RGB = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
_SDXL_LATENT_RGB = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)


@dataclass
class LoadedImageModel:
    """A pipeline ready to run, with what lineage and scheduler swaps need."""

    spec: ImageModelSpec
    pipe: Any
    revision: str
    scheduler_config: dict[str, Any]
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Pipelines derived for edit modes ("img2img", "inpaint"), built on first use.
    mode_pipes: dict[str, Any] = field(default_factory=dict)
    # A mode pipeline with its own weights (the upscaler): the scheduler settings
    # swapped schedulers start from instead of ``scheduler_config``, and its
    # weights' revision, both read once when it loads.
    mode_scheduler_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    mode_revisions: dict[str, str] = field(default_factory=dict)


_cache: dict[str, LoadedImageModel] = {}
_cache_lock = threading.Lock()


class _Cancelled(Exception):
    """Raised from the step callback to leave the pipeline at once."""


def _weights_revision(source: str) -> str:
    """A short hash of a model's weights, for lineage.

    Small files are hashed whole. Files in the Hugging Face cache are symlinks
    to blobs already named by their sha256, so those names are used; other big
    files contribute their size and their first and last MiB.
    """
    root = Path(source)
    digest = hashlib.sha256()
    if not root.exists():
        digest.update(source.encode())
        return digest.hexdigest()[:16]
    weight_suffixes = {".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".json", ".txt", ".model"}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in weight_suffixes):
        if path.name in {"loss_log.csv", "train_config.json"}:
            continue
        digest.update(str(path.relative_to(root)).encode())
        if path.is_symlink() and "blobs" in Path(os.readlink(path)).parts:
            digest.update(Path(os.readlink(path)).name.encode())
            continue
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size <= 64 * 2**20:
                digest.update(handle.read())
            else:
                digest.update(str(size).encode() + handle.read(2**20))
                handle.seek(-(2**20), os.SEEK_END)
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def _kind(spec: ImageModelSpec) -> str:
    if spec.kind != "auto":
        return spec.kind
    index = Path(spec.source) / "model_index.json"
    if index.is_file() and json.loads(index.read_text()).get("_class_name") == "AtelierShapesPipeline":
        return "atelier-shapes"
    return "diffusers"


def _load_pipeline(spec: ImageModelSpec, device: str) -> Any:
    import torch

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    kind = _kind(spec)
    try:
        if kind == "atelier-shapes":
            from generation.image.pipeline import AtelierShapesPipeline

            pipe = AtelierShapesPipeline.from_pretrained(spec.source, dtype=dtype)
        else:
            from diffusers import AutoPipelineForText2Image, DiffusionPipeline

            try:
                pipe = AutoPipelineForText2Image.from_pretrained(spec.source, dtype=dtype)
            except ValueError:
                # Pipelines AutoPipeline has no text-to-image mapping for.
                pipe = DiffusionPipeline.from_pretrained(spec.source, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise GenerationError(f"cannot load image model {spec.name!r} from {spec.source!r}: {exc}") from exc
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def image_model_with_revision(name: str, revision: str) -> str:
    """The registered model whose weights are ``revision``: ``name`` while its weights still are, else another
    entry that keeps those weights (the default model's earlier weights stay registered, such as
    ``atelier-shapes-v1``), else ``name``. "Run again" on an old asset draws it with the weights it was
    drawn with. Hashes each candidate's weights (a few ms for the built-in models)."""
    from generation.image.registry import image_models

    specs = {spec.name: spec for spec in image_models()}
    if not revision or name not in specs or _weights_revision(specs[name].source) == revision:
        return name
    for spec in specs.values():
        if spec.name != name and _weights_revision(spec.source) == revision:
            return spec.name
    return name


def load_image_model(name: str = DEFAULT_IMAGE_MODEL) -> LoadedImageModel:
    """Load ``name`` once per process (thread-safe) and return the cached pipeline.

    CUDA with float16 when a GPU is visible, otherwise CPU float32. Raises
    ``ValidationError`` for an unknown name and ``GenerationError`` when the
    weights cannot be loaded.
    """
    from generation.config import configure_torch_threads, device

    spec = get_image_model_spec(name)
    with _cache_lock:
        loaded = _cache.get(name)
        if loaded is not None and loaded.spec == spec:
            return loaded
        configure_torch_threads()
        target = device()
        pipe = _load_pipeline(spec, target)
        loaded = LoadedImageModel(
            spec=spec,
            pipe=pipe,
            revision=_weights_revision(spec.source),
            scheduler_config=dict(pipe.scheduler.config),
            device=target,
        )
        _cache[name] = loaded
        return loaded


def unload_image_models() -> None:
    """Forget every cached pipeline (tests, and workers that switch models)."""
    with _cache_lock:
        _cache.clear()


def prepare_image_model(name: str = DEFAULT_IMAGE_MODEL) -> str:
    """Setup step: check that ``name`` loads and runs one step; return its revision."""
    loaded = load_image_model(name)
    spec = loaded.spec
    generate_images(
        ImageRequest(
            prompt="a red circle", model=name, steps=1, seed=0, width=spec.min_size, height=spec.min_size
        ),
        preview=False,
    )
    return loaded.revision


def _make_scheduler(name: str, base_config: dict[str, Any]) -> Any:
    import diffusers

    class_name, extra, _ = SCHEDULERS[name]
    return getattr(diffusers, class_name).from_config(base_config, **extra)


def _latent_to_rgb(x0: Any, pipe: Any) -> Any:
    """The first image of ``x0`` as a small uint8 HWC array, without a VAE."""
    import torch

    sample = x0[0].detach().float()
    channels = sample.shape[0]
    if channels == 3 and getattr(pipe, "vae", None) is None:
        rgb = sample
    elif channels == 4:
        factors = _SDXL_LATENT_RGB if "XL" in type(pipe).__name__ else _SD15_LATENT_RGB
        matrix = torch.tensor(factors, dtype=sample.dtype, device=sample.device)
        rgb = torch.einsum("chw,cr->rhw", sample, matrix)
    else:  # unknown latent layout: show three channels, normalised
        rgb = sample[:3]
        rgb = (rgb - rgb.amin()) / (rgb.amax() - rgb.amin() + 1e-6) * 2 - 1
    height, width = rgb.shape[-2:]
    if max(height, width) > PREVIEW_MAX_SIDE:
        scale = PREVIEW_MAX_SIDE / max(height, width)
        rgb = torch.nn.functional.interpolate(rgb[None], scale_factor=scale, mode="area")[0]
    return ((rgb.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def _capture_x0(scheduler: Any, box: dict[str, Any]) -> None:
    """Wrap ``scheduler.step`` so the step callback can see the x0 estimate."""
    original = scheduler.step

    # wraps() keeps step's signature visible: pipelines inspect it to decide
    # whether to pass ``generator`` and ``eta``, and losing those would make
    # ancestral samplers draw from the global RNG.
    @functools.wraps(original)
    def step(*args: Any, **kwargs: Any) -> Any:
        output = original(*args, **kwargs)
        if isinstance(output, tuple):
            x0 = output[1] if len(output) > 1 else None
        else:
            x0 = getattr(output, "pred_original_sample", None)
        if x0 is None and getattr(scheduler, "model_outputs", None):
            # Multistep solvers (DPM++, UniPC) keep their x0 predictions here.
            x0 = scheduler.model_outputs[-1]
        box["x0"] = x0
        return output

    scheduler.step = step


def generate_images(
    request: ImageRequest,
    *,
    on_step: OnStep | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview: bool = True,
) -> ImageResult:
    """Run one request to completion or cancellation.

    Validates first (``ValidationError``), loads the model through the
    per-process cache, then denoises. After every step ``on_step(step, total,
    preview)`` is called (``preview`` a small PIL image of the current x0
    estimate, or None when ``preview=False``) and ``should_stop()`` is polled;
    when it returns True the run ends before the next step and the result has
    ``cancelled=True`` and no images. Jobs on one model run one at a time.
    """
    validate_image_request(request)
    loaded = load_image_model(request.model)
    spec, pipe = loaded.spec, loaded.pipe
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**32)
    width = request.width or spec.default_width
    height = request.height or spec.default_height
    params: dict[str, Any] = {
        **request.to_dict(),
        "seed": seed,
        "width": width,
        "height": height,
        "model_revision": loaded.revision,
        "sampler": SCHEDULERS[request.scheduler][2],
    }
    started = time.perf_counter()
    run = _denoise(
        loaded,
        pipe,
        request.scheduler,
        {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "num_inference_steps": request.steps,
            "guidance_scale": request.guidance_scale,
            "height": height,
            "width": width,
            "num_images_per_prompt": request.num_images,
        },
        seed=seed,
        on_step=on_step,
        should_stop=should_stop,
        preview=preview,
    )
    return ImageResult(
        images=run.images,
        params=params,
        model=spec.name,
        model_revision=loaded.revision,
        elapsed=time.perf_counter() - started,
        seconds_per_step=run.seconds_per_step,
        cancelled=run.cancelled,
    )


@dataclass(frozen=True)
class _Run:
    images: tuple[Any, ...]
    cancelled: bool
    seconds_per_step: float


def _denoise(
    loaded: LoadedImageModel,
    pipe: Any,
    scheduler_name: str,
    call: dict[str, Any],
    *,
    seed: int,
    on_step: OnStep | None,
    should_stop: Callable[[], bool] | None,
    preview: bool,
    scheduler_config: dict[str, Any] | None = None,
) -> _Run:
    """The one denoising run behind every mode: text-to-image and each edit.

    ``pipe`` is the model's pipeline or one derived from it for a mode (sharing
    its weights), or a mode's own pipeline (the upscaler, with its own
    ``scheduler_config``); ``call`` holds the mode's own arguments. The
    scheduler, the seeded generator, progress, previews and cancellation are
    set up here and nowhere else. Pipelines that predate
    ``callback_on_step_end`` (diffusers' upscalers) get the same callback
    through their ``callback``/``callback_steps`` arguments.
    """
    import torch
    from PIL import Image

    if should_stop is not None and should_stop():
        return _Run(images=(), cancelled=True, seconds_per_step=0.0)
    steps_done = 0
    with loaded.lock:
        scheduler = _make_scheduler(scheduler_name, scheduler_config or loaded.scheduler_config)
        box: dict[str, Any] = {}
        want_preview = preview and on_step is not None
        if want_preview:
            _capture_x0(scheduler, box)
        pipe.scheduler = scheduler

        def callback(pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            nonlocal steps_done
            steps_done = index + 1
            if on_step is not None:
                total = getattr(pipe, "_num_timesteps", None) or len(pipe.scheduler.timesteps)
                image = None
                if want_preview:
                    x0 = box.get("x0")
                    image = Image.fromarray(_latent_to_rgb(x0 if x0 is not None else tensors["latents"], pipe))
                on_step(index + 1, total, image)
            if should_stop is not None and should_stop():
                # Raising (rather than only setting pipe._interrupt) also
                # skips the final VAE decode of a cancelled job.
                pipe._interrupt = True
                raise _Cancelled
            return {}

        hooks: dict[str, Any] = {
            "callback_on_step_end": callback,
            "callback_on_step_end_tensor_inputs": ["latents"],
        }
        if "callback_on_step_end" not in inspect.signature(pipe.__call__).parameters:
            hooks = {
                "callback": lambda index, timestep, latents: callback(pipe, index, timestep, {"latents": latents}),
                "callback_steps": 1,
            }
        generator = torch.Generator(device="cpu").manual_seed(seed)
        loop_started = time.perf_counter()
        cancelled = False
        images: tuple[Any, ...] = ()
        try:
            output = pipe(**call, generator=generator, **hooks)
            images = tuple(output.images)
        except _Cancelled:
            cancelled = True
        finally:
            pipe._interrupt = False
        loop_time = time.perf_counter() - loop_started
    return _Run(
        images=() if cancelled else images,
        cancelled=cancelled,
        seconds_per_step=loop_time / steps_done if steps_done else 0.0,
    )
