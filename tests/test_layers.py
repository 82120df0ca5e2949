"""The package's layers (docs/architecture.md): lower layers never import upper ones, and no import cycle exists.

The graph is read from the source with ``ast``, function-level imports included, so a cycle hidden by a late
import is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ganforge

ROOT = Path(ganforge.__file__).parent
LOWER = ("models", "losses", "data", "metrics", "augment")
UPPER = ("train", "cli", "studio", "detection")


def _module_name(path: Path) -> str:
    parts = ("ganforge", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ganforge"):
                targets = [resolve(f"{node.module}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names if a.name.startswith("ganforge")]
            else:
                continue
            graph[mod] |= {t for t in targets if t and t != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative over a small graph)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lower_layers_never_import_upper_ones() -> None:
    bad = [
        f"{mod} imports {dep}"
        for mod, deps in _graph().items()
        if mod.split(".")[1:2] and mod.split(".")[1] in LOWER
        for dep in deps
        if dep.split(".")[1:2] and dep.split(".")[1] in UPPER
    ]
    assert bad == []


def test_models_hold_networks_only() -> None:
    deps = {d for m, ds in _graph().items() if m.startswith("ganforge.models") for d in ds}
    allowed = ("ganforge.models", "ganforge.registry")
    assert sorted(d for d in deps if not d.startswith(allowed)) == []
