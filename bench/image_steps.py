"""Seconds per denoising step and per image for the default model, engine vs bare pipeline.

At the model's default size, for num_images 1 and 4: the engine with previews
on (an ``on_step`` that receives every preview) against a bare call of the
same pipeline with the same arguments and no callback. The goal is an engine
overhead of at most 1.05x. The last line is one JSON object.

    python bench/image_steps.py [--model NAME] [--repeats N] [--steps N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.image import (
    DEFAULT_IMAGE_MODEL,
    ImageRequest,
    generate_images,
    get_image_model_spec,
    load_image_model,
)
from generation.image.engine import _make_scheduler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_IMAGE_MODEL)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    import torch

    spec = get_image_model_spec(args.model)
    loaded = load_image_model(args.model)
    pipe = loaded.pipe
    steps = args.steps or spec.default_steps
    figures: dict[str, dict] = {}
    for num_images in (1, 4):
        request = ImageRequest(
            prompt="a large red circle on a white background",
            model=args.model,
            steps=steps,
            seed=0,
            num_images=num_images,
        )

        def engine(request: ImageRequest = request) -> float:
            previews = []
            started = time.perf_counter()
            generate_images(request, on_step=lambda s, t, p: previews.append(p), preview=True)
            assert len(previews) == steps and previews[-1] is not None
            return time.perf_counter() - started

        def bare(request: ImageRequest = request) -> float:
            pipe.scheduler = _make_scheduler(request.scheduler, loaded.scheduler_config)
            started = time.perf_counter()
            pipe(
                prompt=request.prompt,
                num_inference_steps=request.steps,
                guidance_scale=request.guidance_scale,
                generator=torch.Generator().manual_seed(0),
                height=spec.default_height,
                width=spec.default_width,
                num_images_per_prompt=request.num_images,
            )
            return time.perf_counter() - started

        engine()
        bare()  # warm-up
        # Interleave so that load from other processes hits both alike.
        engine_times, bare_times = [], []
        for _ in range(args.repeats):
            engine_times.append(engine())
            bare_times.append(bare())
        e, b = statistics.median(engine_times), statistics.median(bare_times)
        figures[f"num_images_{num_images}"] = {
            "engine_s_per_step": round(e / steps, 5),
            "bare_s_per_step": round(b / steps, 5),
            "engine_s_per_image": round(e / num_images, 4),
            "bare_s_per_image": round(b / num_images, 4),
            "ratio": round(e / b, 3),
        }
        print(f"num_images={num_images}: {figures[f'num_images_{num_images}']}", flush=True)
    result = {
        "bench": "image_steps",
        "model": args.model,
        "device": loaded.device,
        "threads": torch.get_num_threads(),
        "size": [spec.default_width, spec.default_height],
        "steps": steps,
        "scheduler": spec.default_scheduler,
        "repeats": args.repeats,
        **figures,
        "worst_ratio": max(f["ratio"] for f in figures.values()),
        "goal_ratio": 1.05,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
