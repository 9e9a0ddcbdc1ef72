"""``python -m generation train-default``: train the default image model.

What it implements (the DDPM recipe, with diffusers' building blocks):

* the forward process q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I) with a cosine
  beta schedule (``DDPMScheduler.add_noise``);
* a denoiser ε_θ(x_t, t, text): a small ``UNet2DConditionModel`` on 32x32 RGB
  pixels, cross-attending to a tiny ``CLIPTextModel`` trained jointly over a
  word-level tokenizer;
* the simple loss: the unweighted mean squared error of the network's
  prediction at t drawn uniformly, with the caption dropped 10% of the time so
  that classifier-free guidance works. ``--prediction-type epsilon`` is DDPM's
  L_simple E‖ε - ε_θ(x_t, t)‖² as written (the first default model);
  ``v_prediction`` (the default now) is the same loss on the target
  v = √ᾱ_t ε - √(1-ᾱ_t) x_0 (Salimans & Ho, 2022), which is ε's loss weighted
  by 1/ᾱ_t. With ε, the noisiest steps, where only the caption can say what
  the background is and where the shape goes, move the loss by almost nothing
  (the background shifts ε by √ᾱ_t ≈ 0.03 at t = 980); with v, the loss there
  is the error of the whole predicted image (README, issue 25). Sampling a
  v model starts at the last training step (``timestep_spacing="trailing"``),
  where x_T holds no trace of an image;
* a timestep curriculum: half of each batch (``--high-t-share``) draws t from
  the last 50 steps (``--high-t-from 950``), where only the caption can say
  where the shape goes; uniform t gives those steps 5% of the batch, and the
  position words were not learned in thousands of steps that way;
* two coordinate channels beside RGB at the UNet's input
  (:func:`generation.image.pipeline.with_coordinates`), so that from pure
  noise the UNet can tell the top left from the bottom right;
* sampling by iterative denoising, in :class:`AtelierShapesPipeline`.

Data comes from :mod:`generation.image.shapes`, drawn on the fly; the held-out
(colour, shape) pairs are never drawn. The output folder is a diffusers
pipeline (EMA weights) plus ``train_config.json`` and ``loss_log.csv``; it is
rewritten at every checkpoint, so a stopped run still leaves usable weights.

Training resumes across sessions: every save also writes a checkpoint (raw and
EMA weights, optimizer, learning-rate schedule, step, loss log and the data and
torch random states; about 32 MB, so it lives under ``var/`` rather than in
git). ``--resume`` continues from it exactly where it stopped: the same data
stream and the same cosine schedule over ``--steps`` (the total across
sessions), so a run split over several sessions equals an unsplit one.
``--max-minutes`` only ends a session; the learning rate follows the steps.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from generation.image import shapes

DEFAULT_OUT = Path(__file__).resolve().parent / "default_model"
MAX_TOKENS = 16

TEXT_CONFIG: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": MAX_TOKENS,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 2,
    "projection_dim": 128,
}
UNET_CONFIG: dict[str, Any] = {
    "sample_size": shapes.IMAGE_SIZE,
    # RGB and the x, y coordinate channels (pipeline.with_coordinates).
    "in_channels": 5,
    "out_channels": 3,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "cross_attention_dim": TEXT_CONFIG["hidden_size"],
    "attention_head_dim": 4,
}
SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
    "timestep_spacing": "trailing",
    "clip_sample": True,
}
PREDICTION_TYPES = ("v_prediction", "epsilon")


def scheduler_config(prediction_type: str) -> dict[str, Any]:
    """The scheduler settings a model trained for ``prediction_type`` samples with."""
    if prediction_type == "epsilon":  # the first default model's settings
        return {**SCHEDULER_CONFIG, "prediction_type": "epsilon", "timestep_spacing": "leading"}
    return {**SCHEDULER_CONFIG, "prediction_type": prediction_type}


def build_tokenizer() -> Any:
    """A word-level tokenizer over :data:`shapes.VOCABULARY` (no network)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}
    for word in shapes.VOCABULARY:
        vocab.setdefault(word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))  # noqa: S106
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",  # noqa: S106
        pad_token="[PAD]",  # noqa: S106
        eos_token="[EOS]",  # noqa: S106
        model_max_length=MAX_TOKENS,
    )


def build_pipeline(seed: int, prediction_type: str = "v_prediction") -> Any:
    """A freshly initialised default pipeline (random weights from ``seed``)."""
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from generation.image.pipeline import AtelierShapesPipeline

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), **TEXT_CONFIG))
    unet = UNet2DConditionModel(**UNET_CONFIG)
    scheduler = DDPMScheduler(**scheduler_config(prediction_type))
    return AtelierShapesPipeline(
        unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
    )


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m generation train-default", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (diffusers format)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--cfg-drop", type=float, default=0.1, help="probability of an empty caption")
    parser.add_argument(
        "--prediction-type",
        choices=PREDICTION_TYPES,
        default="v_prediction",
        help="what the UNet predicts (epsilon: the first default model)",
    )
    parser.add_argument(
        "--high-t-share",
        type=float,
        default=0.5,
        help="curriculum: this share of each batch draws t from [--high-t-from, T) instead of [0, T)"
        " (0: plain uniform t)",
    )
    parser.add_argument("--high-t-from", type=int, default=950)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init", type=Path, default=None, help="continue from the weights in this folder (fresh optimizer state)"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="resumable checkpoint file (default: var/train-default/<out folder name>.pt)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from --checkpoint when it exists (else start afresh)"
    )
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=60.0,
        help="wall-clock budget of this session: it saves a checkpoint and stops (resume with --resume)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        from generation.config import var_dir

        args.checkpoint = var_dir() / "train-default" / f"{args.out.resolve().name}.pt"
    return args


def draw_timesteps(n: int, *, total: int, high_share: float = 0.0, high_from: int = 900) -> Any:
    """``n`` training timesteps: uniform on [0, total), except a ``high_share`` drawn from [high_from, total).

    Background and position are only worth reading from the caption at the
    noisiest steps (below them x_t itself shows them), so uniform timesteps
    give those words almost no gradient (README, issue 25). With
    ``high_share=0`` this is the plain L_simple draw and uses the torch RNG as
    the first default model's training did.
    """
    import torch

    t = torch.randint(0, total, (n,))
    if high_share > 0:
        high = torch.rand(n) < high_share
        t = torch.where(high, torch.randint(high_from, total, (n,)), t)
    return t


def _widened(weights: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """``weights`` of an earlier UNet for ``target``'s shapes: a first convolution that took fewer input
    channels (the first default model's RGB alone) gets random weights for the new ones, drawn at the
    scale of the old ones (torch's RNG). Not zeros: a zero weight on the coordinates gets no gradient
    that points one way (the errors it would answer differ in sign from one caption to the next), so
    the coordinates would never reach the layers that could combine them with the caption."""
    import torch

    out = dict(weights)
    old, new = weights["conv_in.weight"], target["conv_in.weight"]
    if old.shape[1] < new.shape[1]:
        extra = torch.randn(old.shape[0], new.shape[1] - old.shape[1], *old.shape[2:], dtype=old.dtype)
        out["conv_in.weight"] = torch.cat([old, extra * old.std()], dim=1)
    return out


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a stop mid-write leaves the previous checkpoint."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)


def _save(pipe: Any, ema: Any, params: list, out: Path, config: dict, log: list[dict]) -> None:
    ema.store(params)
    ema.copy_to(params)
    pipe.save_pretrained(out)
    ema.restore(params)
    (out / "train_config.json").write_text(json.dumps(config, indent=2) + "\n")
    with (out / "loss_log.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "loss", "lr", "elapsed_s"])
        writer.writeheader()
        writer.writerows(log)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(list(sys.argv[1:] if argv is None else argv))
    import math

    import numpy as np
    import torch
    from diffusers.training_utils import EMAModel
    from tqdm import tqdm

    from generation.config import configure_torch_threads
    from generation.image.pipeline import with_coordinates

    threads = configure_torch_threads()
    random.seed(args.seed)
    np.random.seed(args.seed)
    pipe = build_pipeline(args.seed, args.prediction_type)
    history: dict[str, Any] = {}
    prior_log: list[dict] = []
    if args.init is not None:
        from generation.image.pipeline import AtelierShapesPipeline

        previous = AtelierShapesPipeline.from_pretrained(args.init)
        pipe.unet.load_state_dict(_widened(previous.unet.state_dict(), pipe.unet.state_dict()))
        pipe.text_encoder.load_state_dict(previous.text_encoder.state_dict())
        history = json.loads((args.init / "train_config.json").read_text())
        with (args.init / "loss_log.csv").open() as handle:
            prior_log = list(csv.DictReader(handle))
    base_steps = int(history.get("trained_steps", 0))
    base_time = float(history.get("elapsed_s", 0.0))
    unet, text_encoder, tokenizer, scheduler = pipe.unet, pipe.text_encoder, pipe.tokenizer, pipe.scheduler
    unet.train()
    text_encoder.train()
    params = [p for p in (*unet.parameters(), *text_encoder.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)

    started = time.monotonic()

    def lr_at(step: int) -> float:
        # Cosine decay over the total steps (across resumed sessions), so a
        # split run follows the same schedule as an unsplit one.
        if step < args.warmup:
            return (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    ema = EMAModel(params, decay=args.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4)
    rng = random.Random(args.seed)
    first_step = 0
    if args.resume and args.checkpoint.is_file():
        state = torch.load(args.checkpoint, weights_only=False)
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        lr_schedule.load_state_dict(state["lr_schedule"])
        ema.load_state_dict(state["ema"])
        rng.setstate(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])
        first_step = int(state["step"])
        history, prior_log = state["history"], state["log"]
        base_steps, base_time = int(state["base_steps"]), float(state["elapsed_s"])
        print(f"resumed from {args.checkpoint} at step {first_step}", flush=True)
    counts = {
        "unet": sum(p.numel() for p in unet.parameters()),
        "text_encoder": sum(p.numel() for p in text_encoder.parameters()),
    }
    config = {
        "command": "python -m generation train-default " + " ".join(argv or sys.argv[1:]),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "threads": threads,
        "torch": torch.__version__,
        "parameters": counts,
        "unet": {k: list(v) if isinstance(v, tuple) else v for k, v in UNET_CONFIG.items()},
        "text_encoder": TEXT_CONFIG,
        "scheduler": scheduler_config(args.prediction_type),
        "data": {
            "shapes": list(shapes.SHAPES),
            "colours": list(shapes.COLOURS),
            "backgrounds": list(shapes.BACKGROUNDS),
            "sizes": list(shapes.SIZES),
            "positions": list(shapes.POSITIONS),
            "held_out": sorted(list(pair) for pair in shapes.HELD_OUT),
        },
    }
    if history:
        config["previous_run"] = history
    print(f"parameters: {counts}, threads: {threads}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)

    log: list[dict] = prior_log
    running, seen = 0.0, 0
    # Steps count from the start of this run (``first_step`` > 0 when resumed);
    # ``base_steps`` are those of an --init model this run continues from.
    session_started_at = first_step
    elapsed_before = base_time

    def save(step_done: int) -> None:
        config["trained_steps"] = base_steps + step_done
        config["elapsed_s"] = round(elapsed_before + time.monotonic() - started, 1)
        _save(pipe, ema, params, args.out, config, log)
        _save_checkpoint(
            args.checkpoint,
            {
                "step": step_done,
                "unet": unet.state_dict(),
                "text_encoder": text_encoder.state_dict(),
                "optimizer": optimizer.state_dict(),
                "lr_schedule": lr_schedule.state_dict(),
                "ema": ema.state_dict(),
                "data_rng": rng.getstate(),
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "log": log,
                "base_steps": base_steps,
                "elapsed_s": config["elapsed_s"],
            },
        )

    progress = tqdm(
        range(first_step, args.steps),
        initial=first_step,
        total=args.steps,
        desc="train-default",
        mininterval=5,
        file=sys.stdout,
    )
    step = first_step - 1
    for step in progress:
        pixels, scenes = shapes.batch(rng, args.batch_size)
        x0 = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        captions = ["" if rng.random() < args.cfg_drop else scene.caption(rng) for scene in scenes]
        ids = tokenizer(
            captions, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt"
        )
        noise = torch.randn_like(x0)
        t = draw_timesteps(
            x0.shape[0],
            total=scheduler.config.num_train_timesteps,
            high_share=args.high_t_share,
            high_from=args.high_t_from,
        )
        x_t = scheduler.add_noise(x0, noise, t)  # √ᾱ_t x0 + √(1-ᾱ_t) ε
        prediction = unet(
            with_coordinates(x_t, unet), t, encoder_hidden_states=text_encoder(ids.input_ids)[0]
        ).sample
        target = noise if args.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
        loss = torch.nn.functional.mse_loss(prediction, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_schedule.step()
        ema.step(params)
        running += loss.item()
        seen += 1
        if (step + 1) % args.log_every == 0:
            entry = {
                "step": base_steps + step + 1,
                "loss": round(running / seen, 5),
                "lr": f"{lr_schedule.get_last_lr()[0]:.3g}",
                "elapsed_s": round(elapsed_before + time.monotonic() - started, 1),
            }
            log.append(entry)
            progress.set_postfix(loss=entry["loss"])
            running, seen = 0.0, 0
        out_of_time = args.max_minutes is not None and time.monotonic() - started > args.max_minutes * 60
        if (step + 1) % args.save_every == 0 and not out_of_time:
            save(step + 1)
        if out_of_time:
            print(f"stopping after {args.max_minutes} minutes; continue with --resume", flush=True)
            break
    config["final_loss"] = log[-1]["loss"] if log else None
    config["session_steps"] = step + 1 - session_started_at
    save(step + 1)
    print(
        json.dumps(
            {"out": str(args.out), **{k: config[k] for k in ("trained_steps", "elapsed_s", "final_loss")}}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
