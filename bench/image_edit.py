"""Image editing on the default model: the measures of issue 19, at the engine (no web stack).

- outside the mask: mean and max absolute pixel difference from the source over every inpaint job;
- inside the mask: a held-out (colour, shape) pair inpainted over a generated shape's box
  (the shape's pixels, grown by 2 px); the checker CNN judges the result's shape and colour, and
  whether it still sees the old shape;
- image-to-image: mean absolute distance to the source at strength 0.2, 0.5, 0.9, and how often
  the checker still finds the source's shape at 0.3;
- speed: an inpaint's s/step over a text-to-image job's at the same size and steps.

    python bench/image_edit.py [--n 100] [--steps 50]

Prints one line per measure; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _png(image) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> int:
    import numpy as np
    from PIL import Image

    from generation.image import EditRequest, ImageRequest, edit_images, generate_images
    from generation.image.checker import classify, load_checker, shape_mask
    from generation.image.shapes import COLOURS, HELD_OUT, SHAPES

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100, help="inpaint jobs (one per source)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--inpaint-area", choices=("whole", "only_masked"), default="whole",
                        help="the inpaint jobs' area (diagnosis; the product's default is whole)")
    parser.add_argument("--strength", type=float, default=1.0, help="the inpaint jobs' strength (diagnosis)")
    parser.add_argument("--mask-blur", type=int, default=None, help="the inpaint jobs' mask blur (diagnosis)")
    parser.add_argument("--skip-img2img", action="store_true", help="only the inpaint measures (quick runs)")
    args = parser.parse_args()
    checker = load_checker()
    rng = random.Random(0)
    held_out = sorted(HELD_OUT)
    trained = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELD_OUT]

    outside_max, outside_sum, outside_count = 0, 0, 0
    new_shape = new_colour = old_shape = 0
    sources = []
    for index in range(args.n):
        old_c, old_s = rng.choice(trained)
        new_c, new_s = rng.choice([pair for pair in held_out if pair[1] != old_s and pair[0] != old_c])
        background = rng.choice(["white", "black", "gray"])
        source = generate_images(
            ImageRequest(prompt=f"a large {old_c} {old_s} on a {background} background", seed=index, steps=args.steps),
            preview=False,
        ).images[0]
        sources.append((source, old_s, f"a large {old_c} {old_s} on a {background} background"))
        mask = shape_mask(source)
        ys, xs = np.nonzero(mask)
        box = np.zeros(mask.shape, dtype=np.uint8)
        if len(ys):
            box[max(ys.min() - 2, 0) : ys.max() + 3, max(xs.min() - 2, 0) : xs.max() + 3] = 255
        else:
            box[8:24, 8:24] = 255
        result = edit_images(
            EditRequest(mode="inpaint", source=_png(source), mask=_png(Image.fromarray(box)), steps=args.steps,
                        prompt=f"a large {new_c} {new_s} on a {background} background", seed=index,
                        inpaint_area=args.inpaint_area, strength=args.strength,
                        **({} if args.mask_blur is None else {"mask_blur": args.mask_blur})),
            preview=False,
        )  # fmt: skip
        out, original = np.asarray(result.images[0], dtype=int), np.asarray(source, dtype=int)
        diff = np.abs(out - original)[box == 0]
        outside_max = max(outside_max, int(diff.max()) if diff.size else 0)
        outside_sum += int(diff.sum())
        outside_count += diff.size
        verdict = classify(checker, [result.images[0]])[0]
        new_shape += verdict["shape"] == new_s
        new_colour += verdict["colour"] == new_c
        old_shape += verdict["shape"] == old_s
    n = args.n
    figures = {
        "inpaint_jobs": n,
        "outside_mean_abs_diff": outside_sum / max(outside_count, 1),
        "outside_max_abs_diff": outside_max,
        "inside_new_shape": new_shape / n,
        "inside_new_colour": new_colour / n,
        "inside_old_shape": old_shape / n,
    }
    print(f"outside the mask: mean |diff| {figures['outside_mean_abs_diff']:.4f}, max {outside_max} over {n} jobs")
    print(f"inside the mask: new shape {new_shape / n:.0%}, new colour {new_colour / n:.0%}, old shape {old_shape / n:.0%}")

    if args.skip_img2img:
        print(json.dumps(figures))
        return 0
    distances: dict[float, list[float]] = {0.2: [], 0.5: [], 0.9: []}
    kept = 0
    sample = sources[: min(n, 30)]
    for index, (source, shape, prompt) in enumerate(sample):
        data = _png(source)
        for strength, values in distances.items():
            out = edit_images(EditRequest(mode="img2img", source=data, prompt=prompt, strength=strength,
                                          steps=args.steps, seed=index), preview=False).images[0]  # fmt: skip
            values.append(float(np.abs(np.asarray(out, dtype=int) - np.asarray(source, dtype=int)).mean()))
        out = edit_images(EditRequest(mode="img2img", source=data, prompt=prompt, strength=0.3, steps=args.steps,
                                      seed=index), preview=False).images[0]  # fmt: skip
        kept += classify(checker, [out])[0]["shape"] == shape
    means = {strength: sum(v) / len(v) for strength, v in distances.items()}
    figures.update({f"img2img_distance_{s}": d for s, d in means.items()})
    figures["img2img_shape_kept_at_0.3"] = kept / len(sample)
    print("img2img distance: " + ", ".join(f"{s}: {d:.1f}" for s, d in means.items())
          + f"; shape kept at 0.3: {kept / len(sample):.0%} of {len(sample)}")  # fmt: skip

    source, _, prompt = sources[0]
    full = np.full((32, 32), 255, dtype=np.uint8)
    t2i, edit = [], []
    for seed in range(5):
        t2i.append(generate_images(ImageRequest(prompt=prompt, steps=args.steps, seed=seed), preview=False).seconds_per_step)
        edit.append(edit_images(EditRequest(mode="inpaint", source=_png(source), mask=_png(Image.fromarray(full)),
                                            prompt=prompt, steps=args.steps, seed=seed), preview=False).seconds_per_step)  # fmt: skip
    figures["edit_over_t2i_seconds_per_step"] = (sum(edit) / len(edit)) / (sum(t2i) / len(t2i))
    print(f"speed: inpaint s/step over text-to-image s/step: {figures['edit_over_t2i_seconds_per_step']:.2f}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
