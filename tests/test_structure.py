"""The first-party import graph has no cycles. Every import counts, at module level or inside
a function: a lazy import hides a cycle, it does not remove it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {"migrations", "tests", "bench", "__pycache__"}


def first_party_modules() -> dict[str, Path]:
    """Dotted name → file, for every package at the root (tests and bench aside)."""
    modules = {}
    for package in sorted(path.parent for path in ROOT.glob("*/__init__.py")):
        if package.name in SKIPPED_DIRS:
            continue
        for path in package.rglob("*.py"):
            if SKIPPED_DIRS & set(path.relative_to(ROOT).parts[:-1]):
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The first-party modules `name` imports anywhere in its body (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_the_walk_sees_function_level_and_relative_imports():
    modules = first_party_modules()
    assert {"assessments.services.verbs", "traces.views", "feedbackhub.middleware"} <= set(modules)
    # traces.views imports the assessments panel inside functions
    assert "assessments.panel" in imports_of("traces.views", modules["traces.views"], modules)
    # `from . import held` inside the services package
    verbs = imports_of("assessments.services.verbs", modules["assessments.services.verbs"], modules)
    assert "assessments.services.held" in verbs


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_first_party_modules():
    modules = first_party_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert cycles(graph) == []
