"""``python -m generation chat|image|train-default ...``"""
from __future__ import annotations

import sys

COMMANDS = {
    "chat": "generation.text.cli",
    "image": "generation.image.cli",
    "train-default": "generation.image.train",
    "prepare": "generation.prepare",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m generation {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    import importlib

    module = importlib.import_module(COMMANDS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
