"""The image engine: text-to-image and image editing with diffusers pipelines.

``generate_images(ImageRequest(...))`` runs any registered model: the default
``atelier-shapes`` model that Atelier trains itself (``python -m generation
train-default``), or any diffusers pipeline registered through
``ATELIER_IMAGE_MODELS``. ``edit_images(EditRequest(...))`` edits an existing image (img2img, inpaint,
outpaint, upscale, variations) through the same denoising run.
Importing this package loads neither torch nor
diffusers; the functions that need them import them.
"""

from __future__ import annotations

from generation.image.edit import edit_images
from generation.image.edit_request import (
    EditRequest,
    decode_edit_inputs,
    decode_image,
    validate_edit_request,
)
from generation.image.engine import (
    generate_images,
    image_model_with_revision,
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
    "EditRequest",
    "ImageModelSpec",
    "ImageRequest",
    "ImageResult",
    "decode_edit_inputs",
    "decode_image",
    "edit_images",
    "generate_images",
    "get_image_model_spec",
    "image_model_with_revision",
    "image_models",
    "load_image_model",
    "prepare_image_model",
    "read_png_metadata",
    "save_png",
    "unload_image_models",
    "validate_edit_request",
    "validate_image_request",
]
