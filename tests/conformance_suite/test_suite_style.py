"""Every conformance test states its requirement (MUST/SHOULD) and carries a capability marker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import conformance.suite

SUITE = Path(conformance.suite.__file__).parent
MODULES = sorted(SUITE.glob("test_*.py"))


def _marks(node: ast.expr) -> list[str]:
    """Marker names in a decorator or a pytestmark value."""
    found: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
            found.append(sub.attr)
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_each_test_states_a_requirement_and_a_capability(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    module_marks: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets):
            module_marks += _marks(stmt.value)
    tests = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    assert tests, f"{module.name} has no tests"
    for test in tests:
        doc = ast.get_docstring(test) or ""
        assert "MUST" in doc or "SHOULD" in doc, f"{module.name}::{test.name}: docstring lacks MUST/SHOULD"
        marks = module_marks + [m for d in test.decorator_list for m in _marks(d)]
        assert "capability" in marks, f"{module.name}::{test.name}: no capability marker"
