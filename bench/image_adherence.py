"""Prompt adherence of the default image model on held-out (colour, shape) pairs.

Generates one image for each held-out prompt (every size, position and
background of the pairs that training never saw: 150 prompts), judges each with
the checker CNN, and reports shape and colour accuracy, next to the checker's
own accuracy on real generator images. The last line is one JSON object.

    python bench/image_adherence.py [--guidance G] [--steps N] [--scheduler S] [--grid docs/samples.png]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.image import (
    DEFAULT_IMAGE_MODEL,
    ImageRequest,
    generate_images,
    get_image_model_spec,
    shapes,
)
from generation.image.checker import accuracy_on_generator, classify, load_checker


def _grid(rows: list[list], path: Path, scale: int = 3) -> None:
    from PIL import Image

    cell = shapes.IMAGE_SIZE + 2
    grid = Image.new("RGB", (cell * max(len(r) for r in rows), cell * len(rows)), (255, 255, 255))
    for y, row in enumerate(rows):
        for x, image in enumerate(row):
            grid.paste(image, (x * cell + 1, y * cell + 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST).save(path)


def main(argv: list[str] | None = None) -> int:
    spec = get_image_model_spec(DEFAULT_IMAGE_MODEL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guidance", type=float, default=spec.default_guidance)
    parser.add_argument("--steps", type=int, default=spec.default_steps)
    parser.add_argument("--scheduler", default=spec.default_scheduler)
    parser.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    parser.add_argument("--trained", action="store_true", help="also score as many training-pair prompts")
    parser.add_argument("--grid", type=Path, default=None, help="write a sample grid PNG here")
    args = parser.parse_args(argv)

    checker = load_checker()
    checker_all = accuracy_on_generator(checker, n=1000, held_out=None)
    checker_held = accuracy_on_generator(checker, n=500, held_out=True, seed=99)
    print(f"checker accuracy on generator images: all {checker_all}, held-out pairs {checker_held}")

    def score(scenes: list[shapes.Scene], label: str) -> tuple[dict, list]:
        images = []
        started = time.perf_counter()
        for index, scene in enumerate(scenes):
            request = ImageRequest(
                prompt=scene.caption(),
                steps=args.steps,
                guidance_scale=args.guidance,
                scheduler=args.scheduler,
                seed=index,
            )
            images.append(generate_images(request, preview=False).images[0])
        found = classify(checker, images)
        n = len(scenes)
        shape = sum(f["shape"] == s.shape for f, s in zip(found, scenes, strict=True)) / n
        colour = sum(f["colour"] == s.colour for f, s in zip(found, scenes, strict=True)) / n
        both = (
            sum(f["shape"] == s.shape and f["colour"] == s.colour for f, s in zip(found, scenes, strict=True))
            / n
        )
        figures = {"prompts": n, "shape": round(shape, 3), "colour": round(colour, 3), "both": round(both, 3)}
        print(f"{label}: {figures} in {time.perf_counter() - started:.1f}s", flush=True)
        return figures, images

    held_scenes = shapes.all_scenes(held_out=True)[: args.limit]
    held, held_images = score(held_scenes, "held-out pairs")
    result = {
        "bench": "image_adherence",
        "model": DEFAULT_IMAGE_MODEL,
        "scheduler": args.scheduler,
        "steps": args.steps,
        "guidance_scale": args.guidance,
        "held_out": held,
        "checker_accuracy": {"all": checker_all, "held_out_pairs": checker_held},
        "goal": {"colour": 0.8, "shape": 0.7},
    }
    if args.trained:
        import random

        rng = random.Random(7)
        trained_scenes = rng.sample(shapes.all_scenes(held_out=False), len(held_scenes))
        result["trained_pairs"], _ = score(trained_scenes, "training pairs")
    if args.grid:
        # One row per held-out pair (large, centre, each background twice), then the real renders.
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
