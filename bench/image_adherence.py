"""Prompt adherence of the default image model: every word of the caption, on held-out and trained pairs.

Generates one image for each held-out prompt (every size, position and
background of the (colour, shape) pairs that training never saw: 150 prompts)
and for as many prompts of trained pairs, then judges every attribute of each
image: shape and colour with the checker CNN, background, position and size
with the pixel rules of ``generation.image.checker`` (100% on the data's own
renders). It reports each attribute's accuracy, "all words right" (all five at
once) and a position confusion table. The last line is one JSON object.

Images are drawn in batches straight through the loaded pipeline, with one
generator per image seeded like the engine's (seed = prompt index), so each
image is the one ``generate_images`` would draw for that seed.

    python bench/image_adherence.py [--model M] [--guidance G] [--steps N] [--scheduler S]
        [--timestep-spacing leading|trailing] [--grid docs/samples.png]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.image import (
    DEFAULT_IMAGE_MODEL,
    SCHEDULERS,
    get_image_model_spec,
    load_image_model,
    shapes,
)
from generation.image.checker import NOT_FOUND, accuracy_on_generator, judge, load_checker

ATTRIBUTES = ("shape", "colour", "position", "background", "size")
GOALS = {"shape": 0.85, "colour": 0.9, "position": 0.85, "background": 0.95, "size": 0.85, "all": 0.6}


def _grid(rows: list[list], path: Path, scale: int = 3) -> None:
    from PIL import Image

    cell = shapes.IMAGE_SIZE + 2
    grid = Image.new("RGB", (cell * max(len(r) for r in rows), cell * len(rows)), (255, 255, 255))
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            grid.paste(image, (x * cell + 1, y * cell + 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST).save(path)


def generate(
    scenes: list[shapes.Scene],
    *,
    model: str = DEFAULT_IMAGE_MODEL,
    steps: int,
    guidance: float,
    scheduler: str,
    scheduler_overrides: dict[str, Any] | None = None,
    batch_size: int = 50,
) -> tuple[list[Any], float]:
    """One image per scene (full caption, seed = index), and the seconds per denoising step per image."""
    import diffusers
    import torch

    loaded = load_image_model(model)
    class_name, extra, _ = SCHEDULERS[scheduler]
    config = {**loaded.scheduler_config, **(scheduler_overrides or {})}
    images: list[Any] = []
    started = time.perf_counter()
    with loaded.lock:
        loaded.pipe.scheduler = getattr(diffusers, class_name).from_config(config, **extra)
        for first in range(0, len(scenes), batch_size):
            chunk = scenes[first : first + batch_size]
            generators = [torch.Generator(device="cpu").manual_seed(first + i) for i in range(len(chunk))]
            output = loaded.pipe(
                prompt=[scene.caption() for scene in chunk],
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=generators,
            )
            images += list(output.images)
    per_image_step = (time.perf_counter() - started) / max(1, len(scenes) * steps)
    return images, per_image_step


def score(found: list[dict[str, str]], scenes: list[shapes.Scene]) -> dict[str, Any]:
    """Accuracy of each attribute, of all at once, and the position confusion counts."""
    n = len(scenes)
    right = {a: [f[a] == getattr(s, a) for f, s in zip(found, scenes, strict=True)] for a in ATTRIBUTES}
    figures: dict[str, Any] = {"prompts": n}
    figures.update({a: round(sum(r) / n, 3) for a, r in right.items()})
    figures["all"] = round(sum(all(r[i] for r in right.values()) for i in range(n)) / n, 3)
    columns = [*shapes.POSITIONS, NOT_FOUND]
    figures["position_confusion"] = {
        asked: {
            judged: sum(
                1
                for f, s in zip(found, scenes, strict=True)
                if s.position == asked and f["position"] == judged
            )
            for judged in columns
        }
        for asked in shapes.POSITIONS
    }
    figures["backgrounds_judged"] = {
        name: sum(1 for f in found if f["background"] == name) for name in [*shapes.BACKGROUNDS, NOT_FOUND]
    }
    return figures


def confusion_table(confusion: dict[str, dict[str, int]]) -> str:
    """The position confusion counts as a Markdown table (rows asked, columns judged)."""
    columns = list(next(iter(confusion.values())))
    lines = ["| asked \\ judged | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for asked, row in confusion.items():
        lines.append(f"| {asked} | " + " | ".join(str(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_IMAGE_MODEL)
    known, _ = parser.parse_known_args(argv)
    spec = get_image_model_spec(known.model)
    parser.add_argument("--guidance", type=float, default=spec.default_guidance)
    parser.add_argument("--steps", type=int, default=spec.default_steps)
    parser.add_argument("--scheduler", default=spec.default_scheduler)
    parser.add_argument(
        "--timestep-spacing", default=None, help="override the model's scheduler timestep_spacing (diagnosis)"
    )
    parser.add_argument(
        "--clip-sample", choices=("true", "false"), default=None, help="override clip_sample (diagnosis)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only N prompts of each set, spread evenly over it (quick runs)"
    )
    parser.add_argument("--held-out-only", action="store_true", help="skip the trained-pair prompts")
    parser.add_argument("--grid", type=Path, default=None, help="write a sample grid PNG here")
    args = parser.parse_args(argv)

    from generation.config import configure_torch_threads

    configure_torch_threads()
    checker = load_checker()
    checker_all = accuracy_on_generator(checker, n=1000, held_out=None)
    checker_held = accuracy_on_generator(checker, n=500, held_out=True, seed=99)
    print(f"checker accuracy on generator images: all {checker_all}, held-out pairs {checker_held}")
    overrides: dict[str, Any] = {}
    if args.timestep_spacing:
        overrides["timestep_spacing"] = args.timestep_spacing
    if args.clip_sample:
        overrides["clip_sample"] = args.clip_sample == "true"

    def spread(scenes: list[shapes.Scene]) -> list[shapes.Scene]:
        if not args.limit or args.limit >= len(scenes):
            return scenes
        return [scenes[i * len(scenes) // args.limit] for i in range(args.limit)]

    sets = {"held_out": spread(shapes.all_scenes(held_out=True))}
    if not args.held_out_only:
        trained = random.Random(7).sample(
            shapes.all_scenes(held_out=False), len(shapes.all_scenes(held_out=True))
        )
        sets["trained_pairs"] = spread(trained)
    result: dict[str, Any] = {
        "bench": "image_adherence",
        "model": args.model,
        "scheduler": args.scheduler,
        "steps": args.steps,
        "guidance_scale": args.guidance,
        "scheduler_overrides": overrides,
    }
    held_images: list[Any] = []
    for label, scenes in sets.items():
        images, per_step = generate(
            scenes,
            model=args.model,
            steps=args.steps,
            guidance=args.guidance,
            scheduler=args.scheduler,
            scheduler_overrides=overrides,
        )
        figures = score(judge(checker, images), scenes)
        figures["s_per_image_step"] = round(per_step, 4)
        result[label] = figures
        if label == "held_out":
            held_images = images
        summary = {k: v for k, v in figures.items() if k not in ("position_confusion",)}
        print(f"{label}: {summary}", flush=True)
        print(confusion_table(figures["position_confusion"]), flush=True)
    result["goal_held_out"] = GOALS
    result["checker_accuracy"] = {"all": checker_all, "held_out_pairs": checker_held}
    if args.grid:
        # One row per held-out pair: its first ten prompts (each size, position and background in turn).
        held_scenes = sets["held_out"]
        rows = []
        for colour, shape in sorted(shapes.HELD_OUT, key=lambda p: shapes.SHAPES.index(p[1])):
            row = [
                img
                for scene, img in zip(held_scenes, held_images, strict=True)
                if (scene.colour, scene.shape) == (colour, shape)
            ]
            rows.append(row[:10])
        _grid(rows, args.grid)
        print(f"grid: {args.grid}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
