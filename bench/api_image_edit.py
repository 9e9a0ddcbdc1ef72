"""The API's image edit against the engine alone: what an ``openai`` client waits for ``images.edit``.

    python bench/api_image_edit.py [--repeats 8] [--steps 50]

Starts its own stack on free ports (a temporary database, an embedded Redis,
daphne and an image worker; the model cache is shared), signs a user up,
makes a project and an API key on the project's API page. Then, for held-out
prompts in turn, it alternates:

- the stack: the official ``openai`` client's ``images.edit`` with a source
  PNG and an OpenAI-style mask (transparent = repaint), ``b64_json``, one image,
  the default model at ``--steps``; timed from the call to the decoded answer;
- the engine alone: ``edit_images`` in this process, the same inpaint (same
  source, mask, prompt, steps and seed), on as many torch threads as the
  image worker has.

Issue 19 asks the round trip to be at most 1.10x the engine alone. The last
line is one JSON object.
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import Stack, log, run_stack_bench  # noqa: E402
from bench.api_stream import make_key  # noqa: E402
from bench.chat_stream import sign_up_with_project  # noqa: E402

PROMPTS = (
    "a large red star in the center on a white background",
    "a large blue square in the center on a black background",
    "a large green triangle in the center on a gray background",
    "a large yellow circle in the center on a black background",
)


def _png(image) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _inputs() -> tuple[bytes, bytes, bytes]:
    """A source drawn by the default model, its grey mask (white = repaint) and the same as OpenAI's RGBA mask."""
    import numpy as np
    from PIL import Image

    from generation.image import ImageRequest, generate_images

    source = generate_images(ImageRequest(prompt="a large cyan cross in the center on a gray background", seed=0))
    area = np.zeros((32, 32), dtype=np.uint8)
    area[6:26, 6:26] = 255
    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 3] = 255 - area
    return _png(source.images[0]), _png(Image.fromarray(area, "L")), _png(Image.fromarray(rgba, "RGBA"))


async def bench(stack: Stack, args) -> dict:
    from openai import OpenAI

    from generation.config import configure_torch_threads, worker_threads
    from generation.image import EditRequest, edit_images, load_image_model

    # The engine alone gets the image worker's thread count (webapp.worker sets it the same way).
    os.environ["ATELIER_TORCH_THREADS"] = str(worker_threads("image"))
    log(f"torch threads: {configure_torch_threads()} (the image worker's)")
    session, _, project_id = sign_up_with_project(stack.base_url)
    client = OpenAI(base_url=stack.base_url + "/v1", api_key=make_key(stack, session, project_id), max_retries=0)
    load_image_model("atelier-shapes")
    source, grey_mask, openai_mask = _inputs()

    def via_api(prompt: str, seed: int) -> float:
        started = time.perf_counter()
        result = client.images.edit(
            model="atelier-shapes", image=("source.png", source, "image/png"),
            mask=("mask.png", openai_mask, "image/png"), prompt=prompt, n=1, response_format="b64_json",
            extra_body={"steps": args.steps, "seed": seed},
        )  # fmt: skip
        base64.b64decode(result.data[0].b64_json)
        return time.perf_counter() - started

    def alone(prompt: str, seed: int) -> float:
        started = time.perf_counter()
        result = edit_images(
            EditRequest(mode="inpaint", source=source, mask=grey_mask, prompt=prompt, steps=args.steps, seed=seed,
                        model="atelier-shapes")
        )  # fmt: skip
        assert len(result.images) == 1
        return time.perf_counter() - started

    log("warming up both sides")
    via_api(PROMPTS[0], 0)
    alone(PROMPTS[0], 0)
    rows = []
    for repeat in range(args.repeats):
        prompt = PROMPTS[repeat % len(PROMPTS)]
        api_s, engine_s = via_api(prompt, repeat + 1), alone(prompt, repeat + 1)
        rows.append({"api_s": api_s, "engine_s": engine_s})
        log(f"[{repeat}] api {api_s * 1000:.0f} ms, engine alone {engine_s * 1000:.0f} ms, "
            f"ratio {api_s / engine_s:.3f}")
    api, engine = (statistics.median(r[k] for r in rows) for k in ("api_s", "engine_s"))
    ratio = api / engine
    return {
        "bench": "api_image_edit",
        "model": "atelier-shapes",
        "steps": args.steps,
        "runs": len(rows),
        "api_ms": round(api * 1000, 1),
        "engine_ms": round(engine * 1000, 1),
        "ratio": round(ratio, 3),
        "ratio_paired": round(statistics.median(r["api_s"] / r["engine_s"] for r in rows), 3),
        "extra_ms": round((api - engine) * 1000, 1),
        "goal_met": {"ratio<=1.10": ratio <= 1.10},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args(argv)
    return run_stack_bench(args, name="api-image-edit", workers=("image",), bench=bench)


if __name__ == "__main__":
    raise SystemExit(main())
