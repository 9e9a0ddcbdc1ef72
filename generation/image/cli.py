"""``python -m generation image "PROMPT" --out DIR [...]``

Writes one PNG per image (parameters embedded). With ``--json`` it prints one
JSON object per step and a final one with the files and parameters; otherwise a
progress bar on stderr. A bad argument prints one line and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from generation.errors import GenerationError, ValidationError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m generation image", description="Generate images from a prompt.")
    parser.add_argument("prompt")
    parser.add_argument("--model", default=None)
    parser.add_argument("--negative", default="")
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--num-images", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", action="store_true", help="one JSON object per step, then a final one")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from generation.image import ImageRequest, generate_images, save_png, validate_image_request
    from generation.image.registry import DEFAULT_IMAGE_MODEL

    try:
        request = ImageRequest(
            prompt=args.prompt,
            negative_prompt=args.negative,
            model=args.model or DEFAULT_IMAGE_MODEL,
            scheduler=args.scheduler,
            steps=args.steps,
            guidance_scale=args.guidance,
            seed=args.seed,
            width=args.width,
            height=args.height,
            num_images=args.num_images,
        )
        validate_image_request(request)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    bar = None
    if args.json:

        def on_step(step: int, total: int, _preview: object) -> None:
            print(json.dumps({"event": "step", "step": step, "total": total}), flush=True)

    else:
        from tqdm import tqdm

        def on_step(step: int, total: int, _preview: object) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, desc="image", file=sys.stderr)
            bar.update(step - bar.n)

    try:
        result = generate_images(request, on_step=on_step, preview=False)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GenerationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    args.out.mkdir(parents=True, exist_ok=True)
    files = []
    for index, image in enumerate(result.images):
        path = args.out / f"{result.params['seed']}-{index}.png"
        save_png(image, path, {**result.params, "batch_index": index})
        files.append(str(path))
    summary = {
        "event": "done",
        "files": files,
        "params": result.params,
        "model_revision": result.model_revision,
        "elapsed": round(result.elapsed, 3),
        "seconds_per_step": round(result.seconds_per_step, 4),
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print("\n".join(files))
    return 0
