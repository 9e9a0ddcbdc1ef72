"""``python -m generation train-default`` and the procedural data it learns from."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from generation.image import ImageRequest, generate_images, load_image_model, shapes
from generation.image.train import main as train_main


def test_training_never_draws_a_held_out_pair() -> None:
    rng = random.Random(0)

    drawn = {(s.colour, s.shape) for s in (shapes.random_scene(rng) for _ in range(3000))}

    assert not drawn & shapes.HELD_OUT
    assert len(drawn) == len(shapes.COLOURS) * len(shapes.SHAPES) - len(shapes.HELD_OUT)


def test_there_are_at_least_100_held_out_prompts() -> None:
    scenes = shapes.all_scenes(held_out=True)

    assert len({scene.caption() for scene in scenes}) >= 100
    assert all((s.colour, s.shape) in shapes.HELD_OUT for s in scenes)


def test_captions_name_the_scene_and_parse_back() -> None:
    scene = shapes.Scene("star", "red", "small", "top left", "gray")

    assert scene.caption() == "a small red star in the top left on a gray background"
    assert shapes.parse_caption(scene.caption()) == {
        "size": "small",
        "colour": "red",
        "shape": "star",
        "background": "gray",
    }


def test_rendering_is_32_pixels_and_shows_the_colour() -> None:
    image = shapes.render(shapes.Scene("square", "blue", "large", "center", "white"))
    pixels = np.asarray(image)

    assert image.size == (32, 32)
    assert tuple(pixels[16, 16]) == shapes.COLOURS["blue"]
    assert tuple(pixels[0, 0]) == shapes.BACKGROUNDS["white"]


def test_train_default_writes_a_loadable_pipeline_with_its_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "model"
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")

    code = train_main(
        ["--out", str(out), "--steps", "2", "--batch-size", "4", "--log-every", "1", "--save-every", "1"]
    )

    assert code == 0
    config = json.loads((out / "train_config.json").read_text())
    assert config["trained_steps"] == 2 and config["args"]["seed"] == 0
    assert config["data"]["held_out"]
    with (out / "loss_log.csv").open() as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2"]
    spec = {"name": "fresh", "source": str(out), "default_width": 32, "default_height": 32, "min_size": 32}
    monkeypatch.setenv("ATELIER_IMAGE_MODELS", json.dumps([{**spec, "max_size": 64, "max_pixels": 4096}]))
    result = generate_images(ImageRequest(prompt="a red star", model="fresh", steps=2, seed=0))
    assert type(load_image_model("fresh").pipe).__name__ == "AtelierShapesPipeline"
    assert result.images[0].size == (32, 32)


def test_train_default_can_continue_from_earlier_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")
    tiny = ["--steps", "1", "--batch-size", "2", "--log-every", "1"]
    train_main(["--out", str(tmp_path / "first"), *tiny])

    train_main(["--out", str(tmp_path / "second"), "--init", str(tmp_path / "first"), "--seed", "1", *tiny])

    config = json.loads((tmp_path / "second" / "train_config.json").read_text())
    assert config["trained_steps"] == 2 and config["previous_run"]["trained_steps"] == 1
    with (tmp_path / "second" / "loss_log.csv").open() as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2"]


def test_a_resumed_run_ends_where_an_unbroken_one_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")
    tiny = ["--steps", "3", "--batch-size", "2", "--log-every", "1", "--warmup", "1"]
    train_main(["--out", str(tmp_path / "whole"), "--checkpoint", str(tmp_path / "whole.pt"), *tiny])
    split = ["--out", str(tmp_path / "split"), "--checkpoint", str(tmp_path / "split.pt"), *tiny]

    train_main([*split, "--max-minutes", "0"])  # the session ends after its first step
    stopped = json.loads((tmp_path / "split" / "train_config.json").read_text())
    train_main([*split, "--resume"])

    assert stopped["trained_steps"] == 1
    config = json.loads((tmp_path / "split" / "train_config.json").read_text())
    assert config["trained_steps"] == 3 and config["session_steps"] == 2
    whole = load_file(str(tmp_path / "whole" / "unet" / "diffusion_pytorch_model.safetensors"))
    resumed = load_file(str(tmp_path / "split" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(bool((whole[name] == resumed[name]).all()) for name in whole)
    with (tmp_path / "split" / "loss_log.csv").open() as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2", "3"]


def test_the_timestep_curriculum_draws_its_share_from_the_noisiest_steps() -> None:
    import torch

    from generation.image.train import draw_timesteps

    torch.manual_seed(0)
    plain = draw_timesteps(20000, total=1000)
    curriculum = draw_timesteps(20000, total=1000, high_share=0.5, high_from=900)

    assert 0.08 < float((plain >= 900).float().mean()) < 0.12
    assert 0.52 < float((curriculum >= 900).float().mean()) < 0.58  # 0.5 + 0.5 * 0.1
    assert int(curriculum.min()) >= 0 and int(curriculum.max()) <= 999


@pytest.mark.parametrize(
    ("prediction_type", "spacing"), [("v_prediction", "trailing"), ("epsilon", "leading")]
)
def test_the_saved_scheduler_samples_the_way_the_model_was_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prediction_type: str, spacing: str
) -> None:
    monkeypatch.setenv("ATELIER_TORCH_THREADS", "1")
    out = tmp_path / prediction_type

    train_main(["--out", str(out), "--steps", "1", "--batch-size", "2", "--prediction-type", prediction_type])

    scheduler = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert (scheduler["prediction_type"], scheduler["timestep_spacing"]) == (prediction_type, spacing)
    assert json.loads((out / "train_config.json").read_text())["scheduler"]["prediction_type"] == prediction_type


def test_a_v_model_is_trained_on_the_velocity_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss target is v = √ᾱ ε - √(1-ᾱ) x0: at the last step (ᾱ ≈ 0) it is -x0, the image itself."""
    import torch

    from generation.image.train import build_pipeline

    scheduler = build_pipeline(0).scheduler
    x0, noise = torch.full((1, 3, 4, 4), 0.5), torch.randn(1, 3, 4, 4)

    v_last = scheduler.get_velocity(x0, noise, torch.tensor([999]))
    v_first = scheduler.get_velocity(x0, noise, torch.tensor([0]))

    assert torch.allclose(v_last, -x0, atol=1e-3)
    assert torch.allclose(v_first, noise, atol=0.05)


def test_coordinate_channels_tell_the_unet_where_each_pixel_is() -> None:
    import torch

    from generation.image.pipeline import with_coordinates
    from generation.image.train import build_pipeline

    unet = build_pipeline(0).unet
    pixels = torch.zeros(2, 3, 8, 16)

    widened = with_coordinates(pixels, unet)

    assert unet.config.in_channels == 5 and widened.shape == (2, 5, 8, 16)
    x, y = widened[0, 3], widened[0, 4]
    assert (x[:, 0] == -1).all() and (x[:, -1] == 1).all() and (y[0] == -1).all() and (y[-1] == 1).all()
    assert torch.equal(widened[1], widened[0])


def test_a_three_channel_unet_gets_the_pixels_alone() -> None:
    import torch
    from diffusers import UNet2DConditionModel

    from generation.image.pipeline import with_coordinates
    from generation.image.registry import SHAPES_V1_DIR

    v1 = UNet2DConditionModel.from_pretrained(SHAPES_V1_DIR / "unet")
    pixels = torch.randn(1, 3, 32, 32)

    assert v1.config.in_channels == 3 and with_coordinates(pixels, v1) is pixels


def test_widening_an_earlier_unet_keeps_its_weights_and_gives_the_coordinates_some() -> None:
    """--init from the first default model (RGB in): its weights stay; the coordinate channels get random
    weights at the RGB ones' scale (zeros would never learn: their gradient cancels out over captions)."""
    from diffusers import UNet2DConditionModel

    from generation.image.registry import SHAPES_V1_DIR
    from generation.image.train import UNET_CONFIG, _widened

    v1 = UNet2DConditionModel.from_pretrained(SHAPES_V1_DIR / "unet")
    wide = UNet2DConditionModel(**UNET_CONFIG)
    weights = _widened(v1.state_dict(), wide.state_dict())
    wide.load_state_dict(weights)

    old, new = v1.conv_in.weight.detach(), wide.conv_in.weight.detach()
    assert new.shape[1] == 5 and (new[:, :3] == old).all()
    assert 0.5 < float(new[:, 3:].std() / old.std()) < 2.0
    assert all((weights[name] == value).all() for name, value in v1.state_dict().items() if name != "conv_in.weight")
