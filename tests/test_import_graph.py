"""Data flows one way: no two parts of the package import each other.

The parts are the modules of ``persona_exp``, with a subpackage's modules
cut to ``persona_exp.<sub>.<module>``. Every import counts, including those
inside functions (a lazy import still ties two modules together). (Between
whole subpackages ``spec`` is two layers: its models and loader sit below
everything, ``spec.experiment`` composes the experiments' blocks above them.)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "persona_exp"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Absolute names of the persona_exp modules a file imports (``from pkg
    import sub`` names the submodule, not the package's ``__init__``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("persona_exp"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("persona_exp"):
                for a in node.names:
                    out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return out


def _graph(level: int) -> dict[str, set[str]]:
    """Edges between modules cut to ``level`` name parts (2 = subpackages),
    keeping only the names that exist as modules or packages."""
    files = [p for p in PACKAGE.rglob("*.py")]
    known = {_module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    for p in files:
        src = ".".join(_module_name(p).split(".")[:level])
        for target in _imports(p, known):
            while target and target not in known:
                target = target.rpartition(".")[0]
            dst = ".".join(target.split(".")[:level])
            if target and dst != src and dst != "persona_exp":
                graph.setdefault(src, set()).add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_import_circle_between_modules():
    assert _cycles(_graph(3)) == []
