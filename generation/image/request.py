"""``ImageRequest``, ``ImageResult`` and the static checks on a request.

No torch here: the web process validates forms with :func:`validate_image_request`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from generation.errors import ValidationError
from generation.image.registry import DEFAULT_IMAGE_MODEL, get_image_model_spec

# Name -> (diffusers class, extra from_config arguments, A1111 sampler name).
SCHEDULERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "ddpm": ("DDPMScheduler", {}, "DDPM"),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "dpmpp_2m": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2},
        "DPM++ 2M",
    ),
    "dpmpp_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
        "DPM++ 2M Karras",
    ),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
}

MIN_STEPS, MAX_STEPS = 1, 150
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
MAX_IMAGES = 8
MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ImageRequest:
    """One text-to-image job.

    ``scheduler``, ``steps`` and ``guidance_scale`` left as None take the
    model's defaults at construction (so they hold concrete values afterwards
    whenever the model is known); ``width``/``height`` None mean the model's
    default size, resolved at generation; ``seed`` None draws a random seed
    (recorded in the result).
    """

    prompt: str
    negative_prompt: str = ""
    model: str = DEFAULT_IMAGE_MODEL
    scheduler: str = None  # type: ignore[assignment]
    steps: int = None  # type: ignore[assignment]
    guidance_scale: float = None  # type: ignore[assignment]
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    num_images: int = 1

    def __post_init__(self) -> None:
        if None in (self.scheduler, self.steps, self.guidance_scale):
            try:
                spec = get_image_model_spec(self.model)
            except (ValidationError, TypeError):
                return  # validate_image_request reports the model by name
            for name, default in (
                ("scheduler", spec.default_scheduler),
                ("steps", spec.default_steps),
                ("guidance_scale", spec.default_guidance),
            ):
                if getattr(self, name) is None:
                    object.__setattr__(self, name, default)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (``from_dict`` reads them back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRequest:
        """Build from ``to_dict`` output or form/API data; unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ValidationError(key, "unknown parameter")
        if "prompt" not in data:
            raise ValidationError("prompt", "is required")
        return cls(**data)


@dataclass(frozen=True)
class ImageResult:
    """What a job produced. ``params`` holds every value actually used, seed included."""

    images: tuple[Any, ...]  # PIL.Image.Image, kept untyped so PIL loads lazily
    params: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    model_revision: str = ""
    elapsed: float = 0.0
    seconds_per_step: float = 0.0
    cancelled: bool = False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(name: str, value: Any, spec: Any) -> None:
    if value is None:
        return
    if not _is_int(value):
        raise ValidationError(name, "must be a whole number of pixels")
    if value % 8:
        raise ValidationError(name, "must be a multiple of 8")
    if not spec.min_size <= value <= spec.max_size:
        raise ValidationError(name, f"must be between {spec.min_size} and {spec.max_size} for {spec.name}")


def validate_image_request(request: ImageRequest) -> None:
    """Raise ``ValidationError(field, message)`` for the first bad parameter.

    Static checks only: needs no loaded model and allocates nothing, so the web
    process can call it on form input and huge values never reach torch.
    """
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise ValidationError("prompt", "must not be empty")
    if len(request.prompt) > MAX_PROMPT_CHARS:
        raise ValidationError("prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
    if not isinstance(request.negative_prompt, str):
        raise ValidationError("negative_prompt", "must be text")
    if len(request.negative_prompt) > MAX_PROMPT_CHARS:
        raise ValidationError("negative_prompt", f"must be at most {MAX_PROMPT_CHARS} characters")
    if not isinstance(request.model, str):
        raise ValidationError("model", "must be a model name")
    spec = get_image_model_spec(request.model)
    if request.scheduler not in SCHEDULERS:
        raise ValidationError("scheduler", f"must be one of {', '.join(SCHEDULERS)}")
    if not _is_int(request.steps) or not MIN_STEPS <= request.steps <= MAX_STEPS:
        raise ValidationError("steps", f"must be a whole number from {MIN_STEPS} to {MAX_STEPS}")
    guidance = request.guidance_scale
    if (
        not isinstance(guidance, int | float)
        or isinstance(guidance, bool)
        or not math.isfinite(guidance)
        or not MIN_GUIDANCE <= guidance <= MAX_GUIDANCE
    ):
        raise ValidationError("guidance_scale", f"must be a number from {MIN_GUIDANCE:g} to {MAX_GUIDANCE:g}")
    if request.seed is not None and (not _is_int(request.seed) or not 0 <= request.seed <= MAX_SEED):
        raise ValidationError("seed", f"must be a whole number from 0 to {MAX_SEED}")
    _check_size("width", request.width, spec)
    _check_size("height", request.height, spec)
    width = request.width or spec.default_width
    height = request.height or spec.default_height
    if width * height > spec.max_pixels:
        raise ValidationError(
            "width", f"width x height must be at most {spec.max_pixels} pixels for {spec.name}"
        )
    if not _is_int(request.num_images) or not 1 <= request.num_images <= MAX_IMAGES:
        raise ValidationError("num_images", f"must be a whole number from 1 to {MAX_IMAGES}")
