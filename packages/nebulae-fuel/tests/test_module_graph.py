"""fuel's modules import each other without cycles, and only through public names."""

from __future__ import annotations

import ast
from pathlib import Path

import nebulae.fuel

PACKAGE = Path(nebulae.fuel.__file__).parent


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported sibling module, names taken from it)] for every relative import, at any depth."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        edges = found.setdefault(path.stem, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    edges.append((node.module, [a.name for a in node.names]))
                else:
                    edges.extend((a.name, []) for a in node.names)
    return found


def test_no_module_imports_a_private_name_of_another():
    private = [
        f"{module} imports {name} from {source}"
        for module, edges in _imports().items()
        for source, names in edges
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private


def test_the_module_import_graph_has_no_cycle():
    imports = _imports()
    graph = {m: sorted({s for s, _ in edges if s in imports}) for m, edges in imports.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in graph[module]:
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles
