"""The engine on a tiny Stable Diffusion pipeline built in code.

The pipeline is saved to a folder and registered through ATELIER_IMAGE_MODELS,
so it goes through the same registry, loading and generation path as a real
Stable Diffusion checkpoint would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generation.image import (
    SCHEDULERS,
    ImageRequest,
    generate_images,
    get_image_model_spec,
    load_image_model,
)

TINY = "tiny-sd"


# A tiny Stable Diffusion UNet's settings (4 latent channels in and out); the tiny upscaler widens its input.
TINY_UNET = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": 32,
    "attention_head_dim": 2,
}


def build_tiny_sd(folder: Path) -> Path:
    """Save a randomly initialised, tiny StableDiffusionPipeline to ``folder``."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from tokenizers import pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**TINY_UNET)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32),
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=32,
    )
    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(specials + chars + [c + "</w>" for c in chars])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture
def tiny_sd(tiny_sd_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Register the tiny pipeline as model ``tiny-sd`` (inline JSON) and return its name."""
    spec = {
        "name": TINY,
        "source": str(tiny_sd_dir),
        "display_name": "Tiny SD (test)",
        "default_width": 32,
        "default_height": 32,
        "default_steps": 3,
        "default_guidance": 5.0,
        "min_size": 16,
        "max_size": 64,
        "max_pixels": 64 * 64,
    }
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", json.dumps([spec]))
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")
    return TINY


def _pixels(result) -> np.ndarray:
    return np.stack([np.asarray(image) for image in result.images])


def test_tiny_sd_loads_through_the_registry_as_a_diffusers_pipeline(tiny_sd: str) -> None:
    loaded = load_image_model(tiny_sd)

    assert type(loaded.pipe).__name__ == "StableDiffusionPipeline"
    assert loaded.device == "cpu"
    assert str(loaded.pipe.unet.dtype) == "torch.float32"
    assert load_image_model(tiny_sd) is loaded


def test_generate_images_returns_the_requested_images_and_parameters(tiny_sd: str) -> None:
    result = generate_images(
        ImageRequest(prompt="a red star", model=tiny_sd, seed=7, width=32, height=48, num_images=2)
    )

    assert [image.size for image in result.images] == [(32, 48), (32, 48)]
    assert all(image.mode == "RGB" for image in result.images)
    assert result.params["seed"] == 7
    assert result.params["steps"] == 3 and result.params["guidance_scale"] == 5.0
    assert (result.params["width"], result.params["height"]) == (32, 48)
    assert result.model == tiny_sd and not result.cancelled
    assert result.model_revision == result.params["model_revision"] and len(result.model_revision) == 16
    assert result.seconds_per_step > 0 and result.elapsed >= result.seconds_per_step
    json.dumps(result.params)


def test_default_size_comes_from_the_model_spec(tiny_sd: str) -> None:
    result = generate_images(ImageRequest(prompt="a red star", model=tiny_sd, seed=1))

    assert result.images[0].size == (32, 32)
    assert (result.params["width"], result.params["height"]) == (32, 32)


def test_same_seed_gives_identical_pixels(tiny_sd: str) -> None:
    request = ImageRequest(prompt="a blue circle", model=tiny_sd, seed=123, num_images=2)

    first, second = generate_images(request), generate_images(request)

    assert np.array_equal(_pixels(first), _pixels(second))


def test_different_seeds_give_different_pixels(tiny_sd: str) -> None:
    first = generate_images(ImageRequest(prompt="a blue circle", model=tiny_sd, seed=1))
    second = generate_images(ImageRequest(prompt="a blue circle", model=tiny_sd, seed=2))

    assert not np.array_equal(_pixels(first), _pixels(second))


def test_a_random_seed_is_drawn_and_recorded(tiny_sd: str) -> None:
    result = generate_images(ImageRequest(prompt="a blue circle", model=tiny_sd))
    again = generate_images(ImageRequest(prompt="a blue circle", model=tiny_sd, seed=result.params["seed"]))

    assert isinstance(result.params["seed"], int)
    assert np.array_equal(_pixels(result), _pixels(again))


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_name_works(tiny_sd: str, scheduler: str) -> None:
    steps: list[int] = []
    result = generate_images(
        ImageRequest(prompt="a green square", model=tiny_sd, scheduler=scheduler, steps=3, seed=0),
        on_step=lambda step, total, preview: steps.append(step),
    )

    assert len(result.images) == 1 and result.params["scheduler"] == scheduler
    assert steps == [1, 2, 3]
    assert type(load_image_model(tiny_sd).pipe.scheduler).__name__ == SCHEDULERS[scheduler][0]


def test_on_step_reports_progress_with_a_small_preview(tiny_sd: str) -> None:
    calls = []
    generate_images(
        ImageRequest(prompt="a red star", model=tiny_sd, steps=4, seed=0, width=64, height=64),
        on_step=lambda step, total, preview: calls.append((step, total, preview)),
    )

    assert [(step, total) for step, total, _ in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    preview = calls[-1][2]
    assert preview.mode == "RGB" and preview.size == (32, 32)  # latent resolution, no VAE decode


def test_preview_false_passes_none(tiny_sd: str) -> None:
    previews = []
    generate_images(
        ImageRequest(prompt="a red star", model=tiny_sd, seed=0),
        on_step=lambda step, total, preview: previews.append(preview),
        preview=False,
    )

    assert previews == [None, None, None]


def test_previews_do_not_change_the_pixels(tiny_sd: str) -> None:
    request = ImageRequest(prompt="a red star", model=tiny_sd, seed=5, scheduler="euler_a")

    bare = generate_images(request, preview=False)
    watched = generate_images(request, on_step=lambda *_: None)

    assert np.array_equal(_pixels(bare), _pixels(watched))


def test_cancel_stops_within_one_step(tiny_sd: str) -> None:
    steps: list[int] = []
    result = generate_images(
        ImageRequest(prompt="a red star", model=tiny_sd, steps=20, seed=0),
        on_step=lambda step, total, preview: steps.append(step),
        should_stop=lambda: len(steps) >= 2,
    )

    assert result.cancelled
    assert result.images == ()
    assert steps == [1, 2]
    assert result.params["seed"] == 0


def test_cancel_before_the_first_step_runs_nothing(tiny_sd: str) -> None:
    steps: list[int] = []
    result = generate_images(
        ImageRequest(prompt="a red star", model=tiny_sd, seed=0),
        on_step=lambda step, total, preview: steps.append(step),
        should_stop=lambda: True,
    )

    assert result.cancelled and result.images == () and steps == []


def test_the_model_still_works_after_a_cancel(tiny_sd: str) -> None:
    generate_images(ImageRequest(prompt="a red star", model=tiny_sd, seed=0), should_stop=lambda: True)
    full = generate_images(ImageRequest(prompt="a red star", model=tiny_sd, seed=0, steps=3))

    assert len(full.images) == 1 and not full.cancelled


def test_negative_prompt_changes_the_image(tiny_sd: str) -> None:
    plain = generate_images(ImageRequest(prompt="a red star", model=tiny_sd, seed=3))
    negative = generate_images(
        ImageRequest(prompt="a red star", negative_prompt="blue", model=tiny_sd, seed=3)
    )

    assert negative.params["negative_prompt"] == "blue"
    assert not np.array_equal(_pixels(plain), _pixels(negative))


def test_model_revision_is_a_stable_hash_of_the_weights(tiny_sd: str, tiny_sd_dir: Path) -> None:
    from generation.image.engine import _weights_revision

    assert load_image_model(tiny_sd).revision == _weights_revision(str(tiny_sd_dir))
    assert get_image_model_spec(tiny_sd).source == str(tiny_sd_dir)


def test_importing_the_package_loads_no_torch_and_no_django() -> None:
    code = (
        "import sys, generation.image, generation.image.cli, generation.image.shapes;"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'django') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"


def test_the_image_modules_import_no_django() -> None:
    code = (
        "import sys, generation.image.engine, generation.image.pipeline, generation.image.train,"
        " generation.image.checker; print('django' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "False"


def test_the_model_with_an_asset_s_revision_is_the_one_keeping_those_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generation.image import image_model_with_revision
    from generation.image.engine import _weights_revision
    from generation.image.train import build_pipeline

    new, old = tmp_path / "new", tmp_path / "old"
    build_pipeline(seed=1).save_pretrained(new)
    build_pipeline(seed=2).save_pretrained(old)
    sizes = {"kind": "atelier-shapes", "default_width": 32, "default_height": 32, "min_size": 32}
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", json.dumps([
        {"name": "shapes", "source": str(new), **sizes}, {"name": "shapes-old", "source": str(old), **sizes},
    ]))  # fmt: skip
    old_revision, new_revision = _weights_revision(str(old)), _weights_revision(str(new))

    assert old_revision != new_revision
    assert image_model_with_revision("shapes", new_revision) == "shapes"
    assert image_model_with_revision("shapes", old_revision) == "shapes-old"
    # Weights nobody keeps any more (or no revision recorded): the model asked for.
    assert image_model_with_revision("shapes", "0123456789abcdef") == "shapes"
    assert image_model_with_revision("shapes", "") == "shapes"
