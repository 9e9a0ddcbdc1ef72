"""Editing on tiny models built in code: the default pipeline's class with random
weights, and a tiny Stable Diffusion (through AutoPipelineForImage2Image and
AutoPipelineForInpainting), both registered through ATELIER_IMAGE_MODELS."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generation.errors import ValidationError
from generation.image import SCHEDULERS, EditRequest, edit_images, read_png_metadata, save_png
from generation.image.edit import work_size
from generation.image.registry import get_image_model_spec
from tests.generation.test_image_engine import TINY_UNET, build_tiny_sd

SHAPES, SD, UNCONDITIONAL = "tiny-shapes", "tiny-sd-edit", "tiny-ddpm"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _source(size: int = 32) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


SOURCE_IMAGE = _source()
SOURCE = png(SOURCE_IMAGE)
MASK_ARRAY = np.zeros((32, 32), dtype=np.uint8)
MASK_ARRAY[10:22, 6:20] = 255
MASK = png(Image.fromarray(MASK_ARRAY))


def build_tiny_upscaler(folder: Path) -> Path:
    """Save a randomly initialised, tiny StableDiffusionUpscalePipeline (x4, as diffusers' own tests build it)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    sd = build_tiny_sd(folder / "sd")
    from diffusers import StableDiffusionPipeline

    base = StableDiffusionPipeline.from_pretrained(sd)
    torch.manual_seed(0)
    # The noisy latents and the low-resolution image in; the noise level as a class.
    unet = UNet2DConditionModel(**{**TINY_UNET, "in_channels": 7, "num_class_embeds": 100})
    vae = AutoencoderKL(  # three blocks: latents at the low-resolution size decode x4
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 16),
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        scaling_factor=0.08333,  # the real x4 upscaler's
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=99,
    )
    pipe.save_pretrained(folder / "upscaler")
    return folder / "upscaler"


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    from generation.image.train import build_pipeline

    shapes = tmp_path_factory.mktemp("tiny-shapes")
    build_pipeline(seed=0).save_pretrained(shapes)
    unconditional = tmp_path_factory.mktemp("tiny-ddpm")
    unet = UNet2DModel(
        sample_size=16,
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=4,
    )
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(unconditional)
    return {
        "shapes": shapes,
        "sd": build_tiny_sd(tmp_path_factory.mktemp("tiny-sd-edit")),
        "ddpm": unconditional,
        "upscaler": build_tiny_upscaler(tmp_path_factory.mktemp("tiny-upscaler")),
    }


@pytest.fixture(autouse=True)
def tiny_models(tiny_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = {"default_width": 32, "default_height": 32, "min_size": 16, "max_size": 64, "max_pixels": 64 * 64}
    models = [
        {"name": SHAPES, "source": str(tiny_dirs["shapes"]), "kind": "atelier-shapes", "default_steps": 4,
         "default_guidance": 3.0, "default_scheduler": "ddpm", **sizes},
        {"name": SD, "source": str(tiny_dirs["sd"]), "default_steps": 4, "default_guidance": 5.0, **sizes},
        {"name": UNCONDITIONAL, "source": str(tiny_dirs["ddpm"]), "kind": "diffusers", "default_steps": 2, **sizes},
        {"name": "shapes-i2i-only", "source": str(tiny_dirs["shapes"]), "kind": "atelier-shapes",
         "edit_modes": ["img2img"], **sizes},
        {"name": "sd-x4", "source": str(tiny_dirs["sd"]), "default_steps": 3, "default_guidance": 5.0,
         "upscale_source": str(tiny_dirs["upscaler"]), **{**sizes, "max_size": 128, "max_pixels": 128 * 128}},
        {"name": "sd-bad-upscaler", "source": str(tiny_dirs["sd"]), "upscale_source": str(tiny_dirs["sd"]),
         **sizes},
    ]  # fmt: skip
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", json.dumps(models))
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def edit(**fields) -> object:
    fields.setdefault("model", SHAPES)
    fields.setdefault("prompt", "a large red circle on a white background")
    fields.setdefault("seed", 1)
    return edit_images(EditRequest(source=SOURCE, **fields))


# Every mode on the default model's pipeline class ----------------------------


def test_img2img_keeps_the_source_size_and_records_the_edit() -> None:
    result = edit(mode="img2img", strength=0.5)

    assert not result.cancelled and result.images[0].size == (32, 32)
    assert result.params["mode"] == "img2img" and result.params["strength"] == 0.5
    assert result.params["source_hash"] == EditRequest(mode="img2img", source=SOURCE).source_hash
    assert result.params["mask_hash"] is None and "source" not in result.params


def test_img2img_with_a_seed_is_reproducible_and_seeds_differ() -> None:
    first, again, other = (edit(mode="img2img", seed=seed) for seed in (3, 3, 4))

    assert np.array_equal(pixels(first.images[0]), pixels(again.images[0]))
    assert not np.array_equal(pixels(first.images[0]), pixels(other.images[0]))


def test_img2img_runs_strength_times_steps_and_reports_each_with_a_preview() -> None:
    seen: list[tuple[int, int, object]] = []
    edit_images(
        EditRequest(mode="img2img", source=SOURCE, prompt="x", model=SHAPES, steps=10, strength=0.3),
        on_step=lambda step, total, preview: seen.append((step, total, preview)),
    )

    assert [(step, total) for step, total, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(isinstance(preview, Image.Image) for _, _, preview in seen)


def test_a_weak_img2img_stays_closer_to_the_source_than_a_strong_one() -> None:
    weak = np.abs(
        pixels(edit(mode="img2img", strength=0.1, steps=20).images[0]) - pixels(SOURCE_IMAGE)
    ).mean()
    strong = np.abs(
        pixels(edit(mode="img2img", strength=1.0, steps=20).images[0]) - pixels(SOURCE_IMAGE)
    ).mean()

    assert weak < strong


def test_inpaint_leaves_every_pixel_outside_the_mask_bit_identical() -> None:
    result = edit(mode="inpaint", mask=MASK, mask_blur=4)
    out, source = pixels(result.images[0]), pixels(SOURCE_IMAGE)

    assert np.array_equal(out[MASK_ARRAY == 0], source[MASK_ARRAY == 0])
    assert np.abs(out[MASK_ARRAY > 0] - source[MASK_ARRAY > 0]).mean() > 10


@pytest.mark.parametrize("blur", [0, 4])
def test_the_denoising_loop_repaints_every_painted_pixel_and_the_blur_spreads_outwards(blur: int) -> None:
    """A blur reaching inwards would mix the source back into the painted edge at every step (the outline of
    a shape painted over leaked in and was redrawn); only the final composite feathers inwards."""
    from generation.image.edit import _inpaint_plan
    from generation.image.edit_request import decode_edit_inputs

    request = EditRequest(mode="inpaint", source=SOURCE, mask=MASK, model=SHAPES, mask_blur=blur)
    inputs = decode_edit_inputs(request)
    plan = _inpaint_plan(request, inputs.source, inputs.mask, get_image_model_spec(SHAPES))
    guide = np.asarray(plan.mask)

    assert guide.shape == MASK_ARRAY.shape and (guide[MASK_ARRAY == 255] == 255).all()
    spread = guide[MASK_ARRAY == 0] > 0
    assert spread.any() if blur else not spread.any()


def test_inpaint_outside_pixels_survive_the_png_round_trip() -> None:
    result = edit(mode="inpaint", mask=MASK)
    buffer = io.BytesIO()
    save_png(result.images[0], buffer, result.params)
    buffer.seek(0)

    stored = pixels(Image.open(buffer).convert("RGB"))

    assert np.array_equal(stored[MASK_ARRAY == 0], pixels(SOURCE_IMAGE)[MASK_ARRAY == 0])


def test_without_the_composite_the_model_repaints_outside_the_mask_too() -> None:
    result = edit(mode="inpaint", mask=MASK, keep_unmasked=False)

    assert not np.array_equal(
        pixels(result.images[0])[MASK_ARRAY == 0], pixels(SOURCE_IMAGE)[MASK_ARRAY == 0]
    )


def test_only_masked_works_on_the_padded_box_scaled_to_the_model_size() -> None:
    result = edit(mode="inpaint", mask=MASK, inpaint_area="only_masked", padding=2)
    out, source = pixels(result.images[0]), pixels(SOURCE_IMAGE)

    # The box is 14x12 plus 2 px each side (18x16), worked at the model's minimum side and up.
    assert (result.params["work_width"], result.params["work_height"]) == work_size(
        18, 16, get_image_model_spec(SHAPES)
    )
    assert result.params["work_height"] >= 16 and result.images[0].size == (32, 32)
    assert np.array_equal(out[MASK_ARRAY == 0], source[MASK_ARRAY == 0])
    assert not np.array_equal(out[MASK_ARRAY > 0], source[MASK_ARRAY > 0])


@pytest.mark.parametrize("fill", ["noise", "edge", "blur"])
def test_outpaint_extends_the_chosen_sides_and_keeps_the_source(fill: str) -> None:
    result = edit(mode="outpaint", outpaint_sides=("left", "bottom"), outpaint_pixels=8, fill=fill)
    out = pixels(result.images[0])

    assert result.images[0].size == (40, 40)
    assert np.array_equal(out[:32, 8:], pixels(SOURCE_IMAGE))
    assert result.params["fill"] == fill and result.params["outpaint_sides"] == ["left", "bottom"]


def test_outpaint_over_the_pixel_limit_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as caught:
        edit_images(
            EditRequest(mode="outpaint", source=SOURCE, prompt="x", model=SHAPES, outpaint_sides=("left",),
                        outpaint_pixels=100),
            max_pixels=64 * 64,
        )  # fmt: skip
    assert caught.value.field == "outpaint_pixels"


@pytest.mark.parametrize(("scale", "work"), [(2, 64), (4, 64)])
def test_upscale_resizes_and_refines_at_the_largest_size_the_model_takes(scale: int, work: int) -> None:
    result = edit(mode="upscale", scale=scale)

    assert result.images[0].size == (32 * scale, 32 * scale)
    assert result.params["work_width"] == work and result.params["strength"] == 0.3


@pytest.mark.parametrize("scale", [2, 4])
def test_upscale_runs_the_registry_s_own_upscaler_and_brings_its_x4_to_the_scale(scale: int) -> None:
    from generation.image.engine import load_image_model

    steps: list[tuple[int, int]] = []
    result = edit_images(
        EditRequest(mode="upscale", source=SOURCE, prompt="x", model="sd-x4", scale=scale, steps=3, seed=2),
        on_step=lambda step, total, preview: steps.append((step, total)),
    )

    assert result.images[0].size == (32 * scale, 32 * scale)
    assert steps == [(1, 3), (2, 3), (3, 3)]
    upscaler = load_image_model("sd-x4").mode_pipes["upscale"]
    assert type(upscaler).__name__ == "StableDiffusionUpscalePipeline"
    # Its own scheduler settings (v-prediction), not the base model's.
    assert upscaler.scheduler.config.prediction_type == "v_prediction"
    assert result.params["upscaler"].endswith("upscaler") and result.params["noise_level"] == 20
    assert (result.params["work_width"], result.params["work_height"]) == (32, 32)
    buffer = io.BytesIO()
    save_png(result.images[0], buffer, result.params)
    buffer.seek(0)
    assert "Upscaler hash: " + result.params["upscaler_revision"] in read_png_metadata(buffer)["parameters"]


def test_the_upscaler_follows_strength_and_seeds() -> None:
    def run(**fields):
        return edit_images(EditRequest(mode="upscale", source=SOURCE, prompt="x", model="sd-x4", steps=2, **fields))

    strong, again, other = run(strength=0.9, seed=1), run(strength=0.9, seed=1), run(strength=0.9, seed=2)

    assert strong.params["noise_level"] == 60
    assert np.array_equal(pixels(strong.images[0]), pixels(again.images[0]))
    assert not np.array_equal(pixels(strong.images[0]), pixels(other.images[0]))


def test_the_upscaler_cancels_within_one_step() -> None:
    steps: list[int] = []
    result = edit_images(
        EditRequest(mode="upscale", source=SOURCE, prompt="x", model="sd-x4", steps=10),
        on_step=lambda step, total, preview: steps.append(step),
        should_stop=lambda: len(steps) >= 2,
    )

    assert result.cancelled and result.images == () and steps == [1, 2]


def test_an_upscale_source_that_is_no_upscaler_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as caught:
        edit(mode="upscale", model="sd-bad-upscaler")

    assert caught.value.field == "mode" and "sd-bad-upscaler" in caught.value.message
    assert "StableDiffusionPipeline" in caught.value.message


def test_variations_use_the_prompt_in_the_source_and_new_seeds() -> None:
    buffer = io.BytesIO()
    save_png(SOURCE_IMAGE, buffer, {"prompt": "a large blue star on a black background"})
    result = edit_images(EditRequest(mode="variations", source=buffer.getvalue(), model=SHAPES, num_images=2))

    assert result.params["prompt"] == "a large blue star on a black background"
    assert len(result.images) == 2 and not np.array_equal(pixels(result.images[0]), pixels(result.images[1]))


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_inpaints_and_keeps_the_outside(scheduler: str) -> None:
    result = edit(mode="inpaint", mask=MASK, scheduler=scheduler, steps=3, strength=0.7)

    assert np.array_equal(pixels(result.images[0])[MASK_ARRAY == 0], pixels(SOURCE_IMAGE)[MASK_ARRAY == 0])
    assert result.params["sampler"] == SCHEDULERS[scheduler][2]


def test_cancel_stops_an_edit_within_one_step() -> None:
    steps: list[int] = []
    result = edit_images(
        EditRequest(mode="inpaint", source=SOURCE, mask=MASK, prompt="x", model=SHAPES, steps=20),
        on_step=lambda step, total, preview: steps.append(step),
        should_stop=lambda: len(steps) >= 2,
    )

    assert result.cancelled and result.images == () and steps == [1, 2]


def test_the_png_parameters_record_mode_strength_and_hashes() -> None:
    result = edit(mode="inpaint", mask=MASK, strength=0.8, inpaint_area="only_masked", padding=3)
    buffer = io.BytesIO()
    save_png(result.images[0], buffer, result.params)
    buffer.seek(0)

    text = read_png_metadata(buffer)["parameters"]

    request = EditRequest(mode="inpaint", source=SOURCE, mask=MASK)
    for expected in (
        "Mode: inpaint",
        "Denoising strength: 0.8",
        f"Source hash: {request.source_hash}",
        f"Mask hash: {request.mask_hash}",
        "Inpaint area: Only masked",
        "Masked area padding: 3",
    ):
        assert expected in text  # fmt: skip


def test_a_mode_the_model_does_not_do_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as caught:
        edit(mode="inpaint", mask=MASK, model="shapes-i2i-only")

    assert caught.value.field == "mode" and "shapes-i2i-only" in caught.value.message


# Diffusers models ------------------------------------------------------------


def test_a_diffusers_model_does_img2img_through_its_auto_pipeline() -> None:
    from generation.image.engine import load_image_model

    result = edit(mode="img2img", model=SD, strength=0.5)

    assert result.images[0].size == (32, 32) and result.params["mode"] == "img2img"
    assert type(load_image_model(SD).mode_pipes["img2img"]).__name__ == "StableDiffusionImg2ImgPipeline"


def test_a_diffusers_model_inpaints_and_keeps_the_outside_bit_identical() -> None:
    from generation.image.engine import load_image_model

    result = edit(mode="inpaint", model=SD, mask=MASK)
    out, source = pixels(result.images[0]), pixels(SOURCE_IMAGE)

    assert np.array_equal(out[MASK_ARRAY == 0], source[MASK_ARRAY == 0])
    assert not np.array_equal(out[MASK_ARRAY > 0], source[MASK_ARRAY > 0])
    assert type(load_image_model(SD).mode_pipes["inpaint"]).__name__ == "StableDiffusionInpaintPipeline"


def test_a_diffusers_model_reports_progress_and_cancels_in_an_edit() -> None:
    steps: list[tuple[int, int]] = []
    result = edit_images(
        EditRequest(mode="img2img", source=SOURCE, prompt="x", model=SD, steps=8, strength=0.5),
        on_step=lambda step, total, preview: steps.append((step, total)),
        should_stop=lambda: len(steps) >= 2,
    )

    assert result.cancelled and steps == [(1, 4), (2, 4)]


def test_a_pipeline_with_no_edit_mapping_says_so_by_name() -> None:
    with pytest.raises(ValidationError) as caught:
        edit(mode="img2img", model=UNCONDITIONAL)

    assert caught.value.field == "mode"
    assert UNCONDITIONAL in caught.value.message and "img2img" in caught.value.message
