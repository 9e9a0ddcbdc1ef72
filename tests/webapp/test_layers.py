"""Imports run downward only (DESIGN.md): reviews sits above chat and studio, audit below both."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

WEBAPP = Path(__file__).resolve().parent.parent.parent / "webapp"


def _imports(app: str) -> set[str]:
    found: set[str] = set()
    for path in (WEBAPP / app).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("app", "forbidden"),
    [
        ("studio", ("webapp.reviews",)),
        ("chat", ("webapp.reviews",)),
        ("audit", ("webapp.reviews", "webapp.studio", "webapp.chat", "webapp.prompts")),
    ],
)
def test_a_lower_app_never_imports_a_higher_one(app, forbidden):
    bad = sorted(m for m in _imports(app) if m.startswith(forbidden))
    assert bad == [], f"webapp/{app} imports {bad}"


def test_the_check_sees_reviews_importing_studio():
    assert any(m.startswith("webapp.studio") for m in _imports("reviews"))


def test_the_layers_contract_names_every_app_and_the_celery_app_below_core():
    import tomllib

    config = tomllib.loads((WEBAPP.parent / "pyproject.toml").read_text())
    (layers,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    named = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    apps = {path.parent.name for path in WEBAPP.glob("*/apps.py")}
    assert not any(name.startswith("(") for name in named), "a layer marked 'may not exist'"
    assert apps <= named, f"apps missing from the layers: {sorted(apps - named)}"
    assert layers["layers"][-2:] == ["core", "celery"] and "celery" not in layers["exhaustive_ignores"]
