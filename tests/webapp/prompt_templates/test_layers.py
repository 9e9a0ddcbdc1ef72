"""prompt_templates sits below chat and studio: it must never import them (they write its "use" rows)."""
from __future__ import annotations

import ast
from pathlib import Path

import webapp.prompt_templates

HIGHER = ("webapp.chat", "webapp.studio", "webapp.reviews", "webapp.api")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_prompt_templates_imports_nothing_from_the_layers_above():
    root = Path(webapp.prompt_templates.__file__).parent
    offending = {
        f"{path.relative_to(root)}: {name}"
        for path in root.rglob("*.py")
        for name in _imports(path)
        if name.startswith(HIGHER)
    }
    assert not offending, offending


def test_the_check_sees_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from webapp.chat.models import Message\nimport webapp.studio.services\n")
    assert {"webapp.chat.models", "webapp.studio.services"} <= _imports(sample)
