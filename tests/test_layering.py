"""The package map of docs/DEVELOPING.md, kept: who may import whom, no import cycle, no module over 400 lines.

Imports are read with `ast` (nothing is imported): module-level ones, those inside functions and those under
`TYPE_CHECKING` all count, since each is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "DEVELOPING.md"
FOUNDATION = {"limr.atomic", "limr.secrets", "limr.console", "limr.jsonl"}  # any package but limr.algo may use them
MAX_LINES = 400
VLLM_MODULES = {
    "limr.rollout.engine",
    "limr.rollout.updates",
    "limr.rollout.openai_api",
    "limr.rollout.transfer",
    "limr.learner.generator.publisher",
    "limr.learner.generator.exporter",
}


@dataclass(frozen=True)
class Rule:
    may: frozenset[str]  # packages it may import ("*": any limr package and services)
    never: frozenset[str]  # third-party top-level modules it must not import


def read_map(text: str) -> dict[str, Rule]:
    """The rows of the package table: `| `pkg` | what | may import | never imports |`."""
    rules: dict[str, Rule] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.fullmatch(r"`(limr|services)\.[a-z_]+`", cells[0]):
            continue
        may = set(re.findall(r"`([a-z_.]+)`", cells[2]))
        if "any `limr.*`" in cells[2]:
            may.add("*")
        never = {w.strip() for w in cells[3].split(",") if w.strip()}
        rules[cells[0].strip("`")] = Rule(frozenset(may), frozenset(never))
    return rules


def modules() -> dict[str, Path]:
    found = {}
    for top in ("limr", "services"):
        for path in sorted((REPO / top).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, name: str) -> set[str]:
    """Every module name an import statement of the file names (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def unit(name: str) -> str:
    """The row of the map a module belongs to: `limr.x` / `services.x` (a top-level module is its own unit)."""
    return ".".join(name.split(".")[:2])


def own(target: str, mods: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (`limr.scoring.EpochCounts` -> `limr.scoring`)."""
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or None


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Path], dict[str, set[str]]]:
    mods = modules()
    return mods, {name: imports(path, name) for name, path in mods.items()}


def test_the_map_parses_and_names_every_package(graph) -> None:  # noqa: ANN001
    rules = read_map(DOC.read_text())
    mods, _ = graph
    units = {unit(m) for m in mods} - FOUNDATION - {"limr", "services", "limr.__main__"}
    assert len(rules) >= 15
    missing = sorted(units - set(rules))
    assert not missing, f"packages without a row in the package map of docs/{DOC.name} (add one): {missing}"
    assert rules["limr.algo"].may == frozenset() and "ray" in rules["limr.algo"].never


def test_every_import_follows_the_package_map(graph) -> None:  # noqa: ANN001
    rules = read_map(DOC.read_text())
    mods, edges = graph
    broken: list[str] = []
    for name, targets in sorted(edges.items()):
        src = unit(name)
        rule = rules.get(src)
        if rule is None:  # the foundation modules, limr/__init__, limr/__main__ (it only calls the CLI)
            allowed = {"limr.cli"} if src == "limr.__main__" else set()
        elif "*" in rule.may:
            continue
        else:
            allowed = set(rule.may) | (FOUNDATION if src != "limr.algo" else set())
        for target in targets:
            top = target.split(".")[0]
            if rule is not None and top in rule.never:
                broken.append(f"{name} imports {target}: {src} never imports {top}")
            mod = own(target, mods)
            if mod is None or unit(mod) == src or mod in ("limr", "services"):
                continue
            if unit(mod) not in allowed:
                broken.append(f"{name} imports {mod}: {src} may import only {sorted(allowed)}")
    assert not broken, (
        "imports against the package map of docs/DEVELOPING.md (change the code, or the map if the new dependency is"
        " right):\n" + "\n".join(sorted(set(broken)))
    )


def test_vllm_is_imported_only_by_the_engine_transfer_and_publisher_modules(graph) -> None:  # noqa: ANN001
    _, edges = graph
    users = {name for name, targets in edges.items() if any(t.split(".")[0] == "vllm" for t in targets)}
    assert users <= VLLM_MODULES, f"vLLM imported outside its adapters: {sorted(users - VLLM_MODULES)}"


def test_limr_has_no_import_cycle(graph) -> None:  # noqa: ANN001
    mods, edges = graph
    g = nx.DiGraph()
    for name, targets in edges.items():
        if not name.startswith("limr"):
            continue
        g.add_node(name)
        for target in targets:
            mod = own(target, mods)
            if mod and mod != name and mod.startswith("limr") and mod != "limr":
                g.add_edge(name, mod)
    cycles = sorted(sorted(c) for c in nx.simple_cycles(g))
    assert not cycles, f"import cycles among limr's modules: {cycles[:5]}"


def test_no_module_of_limr_is_over_400_lines(graph) -> None:  # noqa: ANN001
    mods, _ = graph
    sizes = {name: len(path.read_text().splitlines()) for name, path in mods.items() if name.startswith("limr")}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them along a real seam): {over}"


def test_the_checks_catch_what_they_look_for(tmp_path) -> None:  # noqa: ANN001
    """The parsing the tests rely on: a table row, a relative import, a lazy import inside a function."""
    rules = read_map("| `limr.x` | things | `limr.store`, `limr.events` | ray, vllm |\n| not | a | row | |")
    assert rules == {"limr.x": Rule(frozenset({"limr.store", "limr.events"}), frozenset({"ray", "vllm"}))}
    pkg = tmp_path / "limr" / "x"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("from . import b\nfrom .b import f\n\ndef g():\n    import ray\n")
    assert imports(pkg / "a.py", "limr.x.a") == {"limr.x", "limr.x.b", "limr.x.b.f", "ray"}
    assert own("limr.scoring.EpochCounts", {"limr.scoring": Path()}) == "limr.scoring"
