"""Does the default image model read each caption word? A probe of the conditioning path (issue 25).

For prompts that differ in one word (colour red/blue, background white/black,
position top left/bottom right), it feeds the UNet the same noisy input (an
all-gray x0 noised to step t, so x_t shows none of those attributes) and
reports how far that one word moves the model's x0 estimate, at several t:
the centre's red channel for colour, the top and bottom rows for background,
the top-left quarter minus the bottom-right one (red channel) for position.
A word the model reads moves its measure; one it ignores leaves the two values
equal. It also reports, at the first step the default sampler takes, how
closely the x0 estimate's mean follows the starting noise's mean over seeds.
Seconds on a CPU; no sampling. The last line is one JSON object.

    python bench/image_conditioning.py [--model NAME | --source FOLDER]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generation.image import DEFAULT_IMAGE_MODEL, get_image_model_spec

PROBES: dict[str, tuple[str, str]] = {
    "colour": (
        "a large red circle in the center on a gray background",
        "a large blue circle in the center on a gray background",
    ),
    "background": (
        "a large red circle in the center on a white background",
        "a large red circle in the center on a black background",
    ),
    "position": (
        "a large red circle in the top left on a gray background",
        "a large red circle in the bottom right on a gray background",
    ),
}
TIMESTEPS = (999, 980, 900, 800, 600, 400)


def _x0(output: Any, x_t: Any, alpha_bar: Any, prediction_type: str) -> Any:
    """The model's x0 estimate from its output, whichever target it was trained on."""
    if prediction_type == "v_prediction":  # v = √ᾱ ε - √(1-ᾱ) x0
        return alpha_bar.sqrt() * x_t - (1 - alpha_bar).sqrt() * output
    return (x_t - (1 - alpha_bar).sqrt() * output) / alpha_bar.sqrt()


def _measure(name: str, x0: Any) -> float:
    import torch

    if name == "colour":
        return float(x0[:, 0, 12:20, 12:20].mean())
    if name == "background":
        return float(torch.cat([x0[:, :, 0, :], x0[:, :, -1, :]], dim=2).mean())
    return float((x0[:, 0, :16, :16] - x0[:, 0, 16:, 16:]).mean())


def probe(source: str, *, n: int = 16, seed: int = 0) -> dict[str, Any]:
    """Per word: its measure under each prompt of the pair at each t; and the first step's noise-mean correlation."""
    import numpy as np
    import torch

    from generation.image.pipeline import AtelierShapesPipeline, with_coordinates

    pipe = AtelierShapesPipeline.from_pretrained(source)
    unet, alphas = pipe.unet, pipe.scheduler.alphas_cumprod
    kind = pipe.scheduler.config.prediction_type
    noise = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    gray = torch.zeros_like(noise)
    result: dict[str, Any] = {}
    with torch.no_grad():
        for name, prompts in PROBES.items():
            embeds = [pipe.encode_prompt([p] * n, "cpu") for p in prompts]
            rows = {}
            for t in TIMESTEPS:
                a = alphas[t]
                x_t = a.sqrt() * gray + (1 - a).sqrt() * noise
                values = []
                for embed in embeds:
                    out = unet(with_coordinates(x_t, unet), torch.tensor(t), encoder_hidden_states=embed).sample
                    values.append(round(_measure(name, _x0(out, x_t, a, kind).clamp(-1, 1)), 3))
                rows[str(t)] = {
                    "first": values[0],
                    "second": values[1],
                    "gap": round(values[0] - values[1], 3),
                }
            result[name] = {"prompts": prompts, "by_t": rows}
        pipe.scheduler.set_timesteps(50)
        first = int(pipe.scheduler.timesteps[0])
        a = alphas[first]
        out = unet(
            with_coordinates(noise, unet),
            torch.tensor(first),
            encoder_hidden_states=pipe.encode_prompt([PROBES["background"][0]] * n, "cpu"),
        ).sample
        x0 = _x0(out, noise, a, kind)
        corr = np.corrcoef(noise.mean(dim=(1, 2, 3)).numpy(), x0.mean(dim=(1, 2, 3)).numpy())[0, 1]
        result["first_step"] = {
            "t": first,
            "alpha_bar": float(a),
            "noise_mean_vs_x0_mean_correlation": round(float(corr), 3),
            "x0_share_outside_unit_range": round(float((x0.abs() > 1).float().mean()), 3),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_IMAGE_MODEL)
    parser.add_argument("--source", default=None, help="a model folder (overrides --model)")
    args = parser.parse_args(argv)
    source = args.source or get_image_model_spec(args.model).source

    from generation.config import configure_torch_threads

    configure_torch_threads()
    result = probe(source)
    for name in PROBES:
        cells = "; ".join(
            f"t={t}: {v['first']:+.2f} vs {v['second']:+.2f}" for t, v in result[name]["by_t"].items()
        )
        print(f"{name:10s} {cells}")
    print(f"first step: {result['first_step']}")
    print(json.dumps({"bench": "image_conditioning", "source": source, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
