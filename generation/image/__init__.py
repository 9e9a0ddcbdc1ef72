"""The image engine: text-to-image with diffusers pipelines.

``generate_images(ImageRequest(...))`` runs any registered model: the default
``atelier-shapes`` model that Atelier trains itself (``python -m generation
train-default``), or any diffusers pipeline registered through
``ATELIER_IMAGE_MODELS``. Importing this package loads neither torch nor
diffusers; the functions that need them import them.
"""

from __future__ import annotations

from generation.image.engine import (
    generate_images,
    load_image_model,
    prepare_image_model,
    unload_image_models,
)
from generation.image.png import read_png_metadata, save_png
from generation.image.registry import (
    DEFAULT_IMAGE_MODEL,
    ImageModelSpec,
    get_image_model_spec,
    image_models,
)
from generation.image.request import SCHEDULERS, ImageRequest, ImageResult, validate_image_request

__all__ = [
    "DEFAULT_IMAGE_MODEL",
    "SCHEDULERS",
    "ImageModelSpec",
    "ImageRequest",
    "ImageResult",
    "generate_images",
    "get_image_model_spec",
    "image_models",
    "load_image_model",
    "prepare_image_model",
    "read_png_metadata",
    "save_png",
    "unload_image_models",
    "validate_image_request",
]
