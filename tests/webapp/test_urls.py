"""Every URL that takes an object id must have an outsider test.

An outsider test is a test function whose name contains ``outsider`` and whose
source names the URL (``"app:name"``), directly or in its parametrize list.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import url_patterns

TESTS = Path(__file__).resolve().parent.parent
ID_KWARG_SUFFIXES = ("_id", "pk")


def _outsider_tested_names() -> set[str]:
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "outsider" in node.name:
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                        names.add(inner.value)
    return names


def test_every_url_with_an_object_id_has_an_outsider_test():
    tested = _outsider_tested_names()
    missing = [
        f"{name} ({route})"
        for name, route, converters in url_patterns()
        if not name.startswith("admin:")
        and any(kwarg.endswith(ID_KWARG_SUFFIXES) for kwarg in converters)
        and name not in tested
    ]
    assert not missing, "URLs with an object id but no outsider test:\n" + "\n".join(missing)


def test_the_walker_sees_the_project_urls():
    names = {name for name, _, _ in url_patterns()}
    assert "workspaces:project_detail" in names
