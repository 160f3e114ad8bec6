"""The shape of the code, read with ``ast`` (nothing is imported): no import circle, no script
imported, dependencies pointing inward (experiments -> policies -> planner <- envs), short
functions in the library packages.

Every import counts, a lazy one inside a function included: it is a dependency all the same.
"""

import ast
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("planner", "envs", "policies", "experiments")
"""Walked; results/ is not (its analysis scripts are no part of the packages)."""
FORBIDDEN = {
    "planner": {"envs", "policies", "experiments", "gymnasium", "mujoco", "stable_baselines3"},
    "envs": {"policies", "experiments"},
    "policies": {"experiments"},
}
"""What each layer may not import (top-level names)."""
MAX_FUNCTION_LINES = 80
"""From the ``def`` line to the last line of the body, docstring included."""
SHORT_FUNCTION_PACKAGES = ("planner", "policies", "envs")


def module_name(path: Path) -> str:
    """``planner/mpc.py`` -> ``planner.mpc``; ``planner/__init__.py`` -> ``planner``."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, ast.Module]:
    """Every module of the packages, by dotted name, parsed."""
    return {
        module_name(path): ast.parse(path.read_text(), filename=str(path))
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
    }


def imported_names(name: str, tree: ast.Module) -> set[str]:
    """The dotted names module ``name`` imports: ``from a.b import c`` gives ``a.b.c`` when that
    is a module of the packages, ``a.b`` otherwise; relative imports are resolved."""
    is_package = (REPO / Path(*name.split(".")) / "__init__.py").is_file()
    package = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..y import z
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules() else base)
    return found


@cache
def graph() -> dict[str, frozenset[str]]:
    """Module -> the modules of the packages it imports (itself excluded)."""
    return {
        name: frozenset(n for n in imported_names(name, tree) if n in modules() and n != name)
        for name, tree in modules().items()
    }


def find_circle(edges: dict[str, frozenset[str]]) -> list[str] | None:
    """One import circle ``[a, b, ..., a]`` of the graph ``edges``, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(edges.get(node, ())):
            circle = visit(target)
            if circle:
                return circle
        path.pop()
        done.add(node)
        return None

    for start in sorted(edges):
        circle = visit(start)
        if circle:
            return circle
    return None


def is_script(name: str) -> bool:
    """A module directly under experiments/ other than its __init__ (the harness is a package)."""
    parts = name.split(".")
    return len(parts) == 2 and parts[0] == "experiments" and parts[1] != "harness"


def test_the_walk_sees_the_packages_and_their_imports():
    edges = graph()
    assert len(edges) > 60 and {"planner.mpc", "experiments.harness.cli"} <= set(edges)
    assert {"planner.elites", "planner.warm_start"} <= edges["planner.mpc"]
    assert "envs.mujoco_tasks" in edges["envs.registry"]  # from envs import mujoco_tasks
    assert "experiments.harness.cli" in edges["experiments.run_mpc"]
    assert is_script("experiments.run_mpc") and not is_script("experiments.harness")


def test_find_circle_finds_a_circle_and_only_a_circle():
    chain = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset()}
    assert find_circle(chain) is None
    assert find_circle({**chain, "c": frozenset({"a"})}) == ["a", "b", "c", "a"]


def test_no_import_circle():
    circle = find_circle(graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_no_module_imports_a_script():
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in graph().items()
        for target in targets
        if is_script(target)
    )
    assert offenders == [], "scripts share code through experiments/harness, not each other"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_dependencies_point_inward(layer):
    offenders = sorted(
        f"{name} imports {imported}"
        for name, tree in modules().items()
        if name.split(".")[0] == layer
        for imported in imported_names(name, tree)
        if imported.split(".")[0] in FORBIDDEN[layer]
    )
    assert offenders == []


def test_functions_of_the_library_packages_are_short():
    long = sorted(
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in modules().items()
        if name.split(".")[0] in SHORT_FUNCTION_PACKAGES
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    )
    assert long == [], f"split these into named steps (at most {MAX_FUNCTION_LINES} lines)"
