"""generation/ is plain Python: no module may import Django."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "generation"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_module_under_generation_imports_django():
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if {"django", "webapp", "channels", "celery"} & _imported_roots(path)
    ]
    assert offenders == []


def test_importing_generation_loads_neither_django_nor_torch():
    code = (
        "import sys, generation, generation.config;"
        "import importlib.util;"
        "[importlib.import_module(m) for m in ('generation.text', 'generation.image') if importlib.util.find_spec(m)];"
        "print(sorted(m for m in ('django', 'torch', 'transformers', 'diffusers') if m in sys.modules))"
    )
    code = "import importlib;" + code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
