"""The adherence checker: a small CNN names a 32x32 image's shape and colour;
pixel rules name its background, position and size.

Trained on :mod:`generation.image.shapes` images (every combination, held-out
pairs included, since it judges rather than generates), with mild noise so it
tolerates a generator's artefacts. Its weights are committed next to this file
(``checker.safetensors``, about 0.2 MB); ``python -m generation.image.checker``
retrains them.

The pixel rules (:func:`judge_background`, :func:`judge_position`,
:func:`judge_size`) need no training: the background is the median colour of
the one-pixel border, the shape is the largest connected group of pixels that
differ from it, and position and size come from that group's bounding box.
They name every one of :mod:`shapes`' exact renders correctly and 99.5% or
more of its jittered training renders (tests/generation/test_image_checker.py).
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


# A pixel belongs to the shape when its RGB distance from the border colour is
# above this (antialiased edge pixels below it are left out on every side alike).
_FOREGROUND_DISTANCE = 60.0
# A border this far from every background colour is none of them (a model that
# paints a purple background has not drawn a gray one, whatever is nearest).
_BACKGROUND_TOLERANCE = 60.0
# The bounding box's centre is within 1 px of the middle for centred renders
# and 2.5 px or more away (on both axes) for corner ones.
_CENTRE_RADIUS = 2.25
# Largest distance from the box centre to a shape pixel: at most 8.5 for
# "small" renders (radius 7), at least 9.5 for "large" ones (radius 11).
_LARGE_RADIUS = 9.5
NOT_FOUND = "none"


def _pixels(image: Any) -> Any:
    import numpy as np

    if hasattr(image, "convert"):
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float64)[..., :3]


def _border_colour(pixels: Any) -> Any:
    import numpy as np

    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    return np.median(border, axis=0)


def judge_background(image: Any) -> str:
    """The background colour name whose RGB is nearest the border's median, or ``"none"``."""
    import numpy as np

    border = _border_colour(_pixels(image))
    names = list(shapes.BACKGROUNDS)
    distances = [float(np.linalg.norm(border - np.array(shapes.BACKGROUNDS[n]))) for n in names]
    best = int(np.argmin(distances))
    return names[best] if distances[best] <= _BACKGROUND_TOLERANCE else NOT_FOUND


def shape_mask(image: Any) -> Any:
    """Boolean HxW mask of the largest 4-connected group of pixels unlike the border."""
    import numpy as np

    pixels = _pixels(image)
    differs = np.linalg.norm(pixels - _border_colour(pixels), axis=-1) > _FOREGROUND_DISTANCE
    labels = np.zeros(differs.shape, dtype=np.int32)
    height, width = differs.shape
    best_label, best_size, label = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(differs), strict=True):
        if labels[y0, x0]:
            continue
        label += 1
        labels[y0, x0] = label
        stack, size = [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and differs[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = label
                    stack.append((ny, nx))
        if size > best_size:
            best_label, best_size = label, size
    return labels == best_label if best_size else differs


def _box(mask: Any) -> tuple[float, float, Any, Any] | None:
    import numpy as np

    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    centre_x = (xs.min() + xs.max() + 1) / 2
    centre_y = (ys.min() + ys.max() + 1) / 2
    return centre_x, centre_y, xs, ys


def judge_position(image: Any) -> str:
    """One of :data:`shapes.POSITIONS` from the shape's bounding-box centre, or ``"none"``."""
    box = _box(shape_mask(image))
    if box is None:
        return NOT_FOUND
    half = _pixels(image).shape[0] / 2
    dx, dy = box[0] - half, box[1] - half
    if max(abs(dx), abs(dy)) < _CENTRE_RADIUS:
        return "center"
    return ("top" if dy < 0 else "bottom") + " " + ("left" if dx < 0 else "right")


def judge_size(image: Any) -> str:
    """``"small"`` or ``"large"`` from the shape's extent around its box centre, or ``"none"``."""
    import numpy as np

    box = _box(shape_mask(image))
    if box is None:
        return NOT_FOUND
    centre_x, centre_y, xs, ys = box
    radius = float(np.sqrt((xs + 0.5 - centre_x) ** 2 + (ys + 0.5 - centre_y) ** 2).max())
    return "large" if radius > _LARGE_RADIUS else "small"


def judge(net: Any, images: list[Any]) -> list[dict[str, str]]:
    """Every caption attribute of each image: the checker's shape and colour plus the pixel rules."""
    found = classify(net, images)
    return [
        {
            **names,
            "position": judge_position(image),
            "background": judge_background(image),
            "size": judge_size(image),
        }
        for names, image in zip(found, images, strict=True)
    ]


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
