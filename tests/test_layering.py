"""The layout: no import cycles anywhere in `minitron/` or `search/`, the library never imports Ray
or Optuna, and no module grows past a size a reader can hold."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("minitron", "search")

CODE = """
import importlib, pkgutil, sys
import minitron
for module in pkgutil.walk_packages(minitron.__path__, "minitron."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] in ("ray", "optuna")))
"""


def test_minitron_never_imports_ray_or_optuna() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at the top or inside functions (a lazy import is a
    dependency too), plus the packages above it (importing a module runs its packages' __init__)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    package = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join([*package, base] if base else package)
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert "minitron.importance.cache" in graph and "search.run.pipeline" in graph
    assert "minitron.model.surgery" in graph["minitron.importance.depth"], "lazy imports are edges too"
    assert cycles(graph) == []


def test_the_library_does_not_depend_on_the_search() -> None:
    graph = import_graph()
    leaks = sorted(
        f"{m} -> {t}"
        for m, ts in graph.items()
        if m.startswith("minitron")
        for t in ts
        if t.startswith("search")
    )
    assert leaks == []


#: A backstop, not a target: modules are cut by concern (each says which in its docstring); one that
#: passes this many lines has grown past one concern, or holds data that belongs in a file.
MAX_LINES = 800


def test_every_module_says_what_it_holds_and_none_grows_without_bound() -> None:
    """Readable files come from one concern per module, stated where a reader starts: every module
    opens with a docstring. A module's length alone is no reason to split it (a 400-line cap cut
    modules to fit the rule, not a concern); the generous cap only catches a file that keeps growing."""
    undocumented = sorted(
        name for name, path in _modules().items() if not ast.get_docstring(ast.parse(path.read_text()))
    )
    assert undocumented == []
    long = {
        name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


#: The search's packages, lowest first: each may import those before it, never one after it.
SEARCH_LAYERS = ("search.plan", "search.outputs", "search.run", "search.api", "search.cli")


def _layer(module: str) -> int | None:
    return next((i for i, p in enumerate(SEARCH_LAYERS) if module == p or module.startswith(p + ".")), None)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports from a search package into one above it (`search/__init__` imports none)."""
    bad = []
    for module, targets in graph.items():
        if module == "search":
            bad += [f"search -> {t}" for t in targets if t.startswith("search.")]
            continue
        mine = _layer(module)
        for target in targets:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(f"{module} -> {target}")
    return sorted(bad)


def test_the_layer_rule_finds_an_upward_import() -> None:
    graph = {"search.plan.settings": {"search.run.pipeline"}, "search.run.pipeline": {"search.plan.settings"}}
    assert layer_violations(graph) == ["search.plan.settings -> search.run.pipeline"]
    assert layer_violations({"search.cli.main": {"search.run.pipeline", "search.plan.space"}}) == []


def test_the_search_packages_import_one_way() -> None:
    graph = import_graph()
    assert "search.run.winners" in graph["search.run.pipeline"] and "search.plan.settings" in graph
    assert layer_violations(graph) == []


def test_every_search_module_lives_in_a_package_that_says_what_it_owns() -> None:
    """No flat list of modules under `search/`: each is in one of the layers, whose docstring names
    what it may import."""
    search = [name for name in _modules() if name.startswith("search.")]
    flat = sorted(name for name in search if _layer(name) is None)
    assert flat == []
    for package in SEARCH_LAYERS:
        doc = ast.get_docstring(ast.parse((ROOT / package.replace(".", "/") / "__init__.py").read_text()))
        assert doc and "May import:" in doc, package
