"""The package is layered: no import cycle among ``dpsrgan``'s modules, function-level imports
included (a function-level import hides a cycle from Python's import machinery, not from the
design: the two modules still cannot be understood, tested or moved one without the other).

The graph is read from the source with ``ast``: every ``import`` / ``from … import`` anywhere in a
module (module level, functions, methods, ``try`` blocks), except under ``if TYPE_CHECKING:``
(never executed). ``from dpsrgan.x import y`` where ``y`` is a submodule imports ``dpsrgan.x.y``;
importing ``dpsrgan.x.y`` also runs the ``__init__`` of each package on the way
(``dpsrgan.x``), except the importer's own ancestors, which are already initialised or
initialising when it runs. Names loaded with ``importlib`` (the lazy ``__getattr__`` of
``dpsrgan`` and ``dpsrgan.inference``) are not imports of the importing module.

Run it alone to see the graph's cycles: ``python -m pytest tests/test_layering.py``.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "dpsrgan"

Graph = dict[str, dict[str, str]]
"""module → {imported module → where (``path:line``) the first such import stands}."""


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under ``root/package`` (packages by ``__init__``)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _executed_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree`` except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                found.extend(_executed_imports(ast.Module(body=[branch], type_ignores=[])))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        else:
            found.extend(_executed_imports(node))
    return found


def _imported_names(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: dict[str, Path]
) -> list[tuple[str, bool]]:
    """``(dotted name, whether its own code is used)`` for what an import statement loads. A
    ``from X import a, b`` uses X's own code unless every name is a submodule (X is then only
    their container); each submodule named is loaded too."""
    if isinstance(node, ast.Import):
        return [(alias.name, True) for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = importer.split(".") if is_package else importer.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
    return [(base, len(submodules) < len(node.names)), *((name, True) for name in submodules)]


def _loaded_modules(name: str, used: bool, importer: str, known: dict[str, Path]) -> list[str]:
    """Project modules that importing ``name`` runs: ``name`` itself and each package on its path,
    without the importer's own ancestors (unless ``name`` is one and its own code is ``used``)."""
    parts = name.split(".")
    loaded = []
    for end in range(1, len(parts) + 1):
        module = ".".join(parts[:end])
        ancestor = importer.startswith(module + ".")
        explicit = end == len(parts) and used
        if module in known and module != importer and (explicit or not ancestor):
            loaded.append(module)
    return loaded


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> Graph:
    """Who imports whom among the modules of ``package`` (see the module docstring)."""
    known = modules(root, package)
    graph: Graph = {name: {} for name in known}
    for importer, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _executed_imports(tree):
            for name, used in _imported_names(node, importer, path.name == "__init__.py", known):
                for module in _loaded_modules(name, used, importer, known):
                    graph[importer].setdefault(module, f"{path.relative_to(root)}:{node.lineno}")
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (each one a knot of cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def one_cycle(graph: Graph, component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as ``[a, b, …, a]``."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node]):
            if target == start:
                path = [node]  # node back to start, then reversed
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target in members and target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise AssertionError(f"no cycle through {start} in {component}")


def describe(graph: Graph, component: list[str]) -> str:
    """The component's modules, and one of its cycles with the file:line of each import."""
    cycle = one_cycle(graph, component)
    steps = [f"    {a} -> {b}  ({graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)]
    return f"cycle among {', '.join(component)}:\n" + "\n".join(steps)


def test_no_import_cycles():
    graph = import_graph()
    knots = strongly_connected(graph)
    assert not knots, "import cycles (function-level imports count):\n" + "\n".join(
        describe(graph, component) for component in knots
    )


def test_the_scan_sees_function_level_and_relative_imports(tmp_path):
    """The check itself: a cycle closed by a function-level import, through a package's
    ``__init__`` and a relative import, is found and described; a TYPE_CHECKING import is not."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .leaf import VALUE\n")
    (package / "sub" / "leaf.py").write_text("VALUE = 1\n\ndef late():\n    from pkg import top\n")
    (package / "top.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.other\nfrom pkg.sub import leaf\n")
    (package / "other.py").write_text("import pkg.top\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.top"] == {"pkg.sub": "pkg/top.py:4", "pkg.sub.leaf": "pkg/top.py:4"}
    assert "pkg" not in graph["pkg.sub.leaf"]  # an ancestor package is not an import
    knots = strongly_connected(graph)
    assert knots == [["pkg.sub", "pkg.sub.leaf", "pkg.top"]]
    assert "pkg.sub.leaf -> pkg.top  (pkg/sub/leaf.py:4)" in describe(graph, knots[0])
