"""The services are thin and independent: neither imports the other (shared domain lives in limr/curation)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize(("service", "other"), [("scorer", "datasets"), ("datasets", "scorer")])
def test_services_import_nothing_from_each_other(service: str, other: str) -> None:
    files = sorted((SERVICES / service).rglob("*.py"))
    assert files
    offending = {
        f"{f.relative_to(SERVICES)}: {m}" for f in files for m in _imports(f) if m.startswith(f"services.{other}")
    }
    assert not offending
