"""The DESIGN's one-way data flow, enforced on the imports (every import, including those inside
functions): the accelsim core never imports ``workloads`` or ``mappers``, and no module-level
import cycle exists anywhere in the three packages.

Why an AST scan and not a regex: ``from x import y`` and imports inside functions are exactly the
ones a grep misses (Stream's no-commercial-solver test is the model).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("accelsim", "workloads", "mappers")
# The application layer may import anything; everything else in accelsim is the core.
APPLICATION = ("accelsim.cli", "accelsim.sweep")
# The hardware registry imports its package to register every kind (documented in
# accelsim/hardware/base.py); that one cycle is the registration mechanism itself.
ALLOWED_CYCLE_EDGES = {("accelsim.hardware.base", "accelsim.hardware")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, name, known) for name, path in mods.items()}


def test_core_never_imports_workloads_or_mappers():
    bad = []
    for name, targets in graph().items():
        if not name.startswith("accelsim") or name.startswith(APPLICATION):
            continue
        bad += [f"{name} -> {t}" for t in targets if t.split(".")[0] in ("workloads", "mappers")]
    assert not bad, "the accelsim core imports upward:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    g = graph()
    for a, b in ALLOWED_CYCLE_EDGES:
        g.get(a, set()).discard(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                strong(w)
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
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            strong(v)
    # a package __init__ re-exporting its submodules is not a cycle with them
    real = [c for c in cycles if not all(m.startswith(min(c, key=len)) for m in c)]
    assert not real, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in real)


def test_no_commercial_solver_anywhere():
    banned = {"gurobipy", "cplex", "docplex", "xpress", "mosek"}
    hits = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            hits += [f"{name}: {m}" for m in mods if m.split(".")[0] in banned]
    assert not hits, hits
