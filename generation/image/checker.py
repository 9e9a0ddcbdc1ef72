"""The adherence checker: a small CNN that names a 32x32 image's shape and colour.

Trained on :mod:`generation.image.shapes` images (every combination, held-out
pairs included, since it judges rather than generates), with mild noise so it
tolerates a generator's artefacts. Its weights are committed next to this file
(``checker.safetensors``, about 0.2 MB); ``python -m generation.image.checker``
retrains them.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from generation.image import shapes

WEIGHTS = Path(__file__).resolve().parent / "checker.safetensors"


def _network() -> Any:
    import torch
    from torch import nn

    class Checker(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 32, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, padding=1, stride=2),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding=1, stride=2),
                nn.ReLU(),
                nn.Conv2d(64, 96, 3, padding=1),
                nn.ReLU(),
                nn.AdaptiveMaxPool2d(1),
                nn.Flatten(),
            )
            self.shape = nn.Linear(96, len(shapes.SHAPES))
            self.colour = nn.Linear(96, len(shapes.COLOURS))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.features(x)
            return self.shape(h), self.colour(h)

    return Checker()


def _to_tensor(pixels: Any) -> Any:
    import numpy as np
    import torch

    array = np.stack([np.asarray(p.convert("RGB")) if hasattr(p, "convert") else p for p in pixels])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def load_checker(path: Path = WEIGHTS) -> Any:
    from safetensors.torch import load_file

    net = _network()
    net.load_state_dict(load_file(str(path)))
    return net.eval()


def classify(net: Any, images: list[Any]) -> list[dict[str, str]]:
    """``[{"shape": ..., "colour": ...}]`` for PIL images or uint8 HWC arrays (resized to 32x32)."""
    import torch

    size = (shapes.IMAGE_SIZE, shapes.IMAGE_SIZE)
    images = [
        im.convert("RGB").resize(size) if hasattr(im, "convert") and im.size != size else im for im in images
    ]
    with torch.no_grad():
        shape_logits, colour_logits = net(_to_tensor(images))
    names, colours = shapes.SHAPES, list(shapes.COLOURS)
    return [
        {"shape": names[s], "colour": colours[c]}
        for s, c in zip(shape_logits.argmax(1).tolist(), colour_logits.argmax(1).tolist(), strict=True)
    ]


def accuracy_on_generator(
    net: Any, *, n: int = 1000, seed: int = 1234, held_out: bool | None = None
) -> dict[str, float]:
    """The checker's own accuracy on fresh procedural images."""
    pixels, scenes = shapes.batch(random.Random(seed), n, held_out=held_out)
    found = classify(net, list(pixels))
    return {
        "shape": sum(f["shape"] == s.shape for f, s in zip(found, scenes, strict=True)) / n,
        "colour": sum(f["colour"] == s.colour for f, s in zip(found, scenes, strict=True)) / n,
    }


def train_checker(
    *, steps: int = 1500, batch_size: int = 64, seed: int = 0, out: Path = WEIGHTS
) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_file

    from generation.config import configure_torch_threads

    configure_torch_threads()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    net = _network()
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    shape_index = {name: i for i, name in enumerate(shapes.SHAPES)}
    colour_index = {name: i for i, name in enumerate(shapes.COLOURS)}
    for _ in range(steps):
        pixels, scenes = shapes.batch(rng, batch_size, held_out=None)
        x = _to_tensor(list(pixels))
        # Noise and a little blur: generated images are never as clean as these.
        x = x + torch.randn_like(x) * rng.uniform(0.0, 0.15)
        if rng.random() < 0.3:
            x = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        shape_logits, colour_logits = net(x)
        loss = torch.nn.functional.cross_entropy(
            shape_logits, torch.tensor([shape_index[s.shape] for s in scenes])
        ) + torch.nn.functional.cross_entropy(
            colour_logits, torch.tensor([colour_index[s.colour] for s in scenes])
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    net.eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out))
    return {"steps": steps, "batch_size": batch_size, "seed": seed, "accuracy": accuracy_on_generator(net)}


if __name__ == "__main__":
    print(json.dumps(train_checker(steps=int(sys.argv[1]) if len(sys.argv) > 1 else 1500)))
