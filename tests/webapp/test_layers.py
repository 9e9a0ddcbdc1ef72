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
