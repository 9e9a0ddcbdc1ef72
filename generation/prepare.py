"""``python -m generation prepare``: make the default models ready to serve.

Idempotent: a second run finds the cached copies and returns in a moment.
"""

from __future__ import annotations

import importlib
import sys
import time


def main(argv: list[str] | None = None) -> int:
    steps = [
        ("chat model", "generation.text", "prepare_text_model"),
        ("chat model's OpenVINO IR", "generation.text", "prepare_openvino_text_model"),
        ("image model", "generation.image", "prepare_image_model"),
    ]
    for label, module_name, func_name in steps:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        prepare = getattr(module, func_name, None)
        if prepare is None:
            continue
        started = time.perf_counter()
        result = prepare()
        if result is not None:
            print(f"prepared {label}: {result} ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
    return 0
