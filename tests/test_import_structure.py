"""The import structure, checked from the source in the spirit of import-linter (``ast`` only).

Every ``.py`` file of the project's packages is parsed; its imports are collected wherever they
sit (module level, inside functions, under ``TYPE_CHECKING``), with ``importlib.import_module``
calls and string constants that name a project module (a plugin list) counted as imports too
(not the package names given to ``importlib.resources.files``: reading data is not importing).
The test fails on

- an import loop: two or more modules that import each other, directly or round a cycle
  (imports under ``if TYPE_CHECKING:`` never run, so they do not make a loop);
- an upward or sideways import, ``TYPE_CHECKING`` ones included: the layers below may not
  import the ones above them, and a built-in tool package may not import another one.

Run it with ``-s`` to see the package -> package import graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ROOT_PACKAGE = "mentorly_app"  # the composition root: it alone names the core, the tools and the UI
PACKAGES = ("assistant", "knowledge", "tools", "ui", ROOT_PACKAGE)
FORBIDDEN: dict[str, set[str]] = {
    "knowledge": {"assistant", "tools", "ui", ROOT_PACKAGE},
    "assistant": {"tools", "ui", ROOT_PACKAGE},
    "tools": {"ui", ROOT_PACKAGE},
    "ui": {"tools", ROOT_PACKAGE},
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    typing_only: bool = False  # under ``if TYPE_CHECKING:``

    def __str__(self) -> str:
        typing = ", under TYPE_CHECKING" if self.typing_only else ""
        return f"{self.source} -> {self.target} (line {self.line}{typing})"


def module_name(path: Path, repo: Path) -> str:
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(repo: Path) -> dict[str, Path]:
    """Module name -> file, for every module of the project's packages."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((repo / package).rglob("*.py")):
            found[module_name(path, repo)] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a project module (``a.b.func`` -> ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _call_name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_import_module(func: ast.expr) -> bool:
    """``importlib.import_module(...)``, ``import_module(...)`` or ``__import__(...)``."""
    return _call_name(func) in ("import_module", "__import__")


def _inside(tree: ast.AST) -> tuple[set[int], set[int]]:
    """The ids of the nodes under ``if TYPE_CHECKING:``, and of the string arguments of
    ``resources.files(...)``/``getLogger(...)`` (a package named to read its data or to name a
    logger, not imported)."""
    typing_only: set[int] = set()
    not_imports: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _call_name(node.test) == "TYPE_CHECKING":
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
        elif isinstance(node, ast.Call) and _call_name(node.func) in ("files", "getLogger"):
            not_imports.update(id(arg) for arg in node.args)
    return typing_only, not_imports


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    typing_only, not_imports = _inside(tree)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            names = [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names = [first.value]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "." in node.value and node.value in modules and id(node) not in not_imports:
                names = [node.value]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                yield Edge(module, target, node.lineno, id(node) in typing_only)


def collect(repo: Path = REPO_ROOT) -> list[Edge]:
    modules = discover(repo)
    return sorted({e for m, p in modules.items() for e in imports_of(m, p, modules)},
                  key=lambda e: (e.source, e.target, e.line))


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.typing_only:
            continue
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def unit(module: str) -> str:
    """The unit the layering rules speak of: a top-level package, or ``tools.<tool>``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "tools" and len(parts) > 1 else parts[0]


def forbidden(edges: list[Edge]) -> list[Edge]:
    bad = []
    for e in edges:
        source, target = unit(e.source), unit(e.target)
        top_source, top_target = source.split(".")[0], target.split(".")[0]
        if top_target in FORBIDDEN.get(top_source, set()):
            bad.append(e)
        elif top_source == top_target == "tools" and "." in source and "." in target and source != target:
            bad.append(e)  # one tool package importing another
    return bad


def package_graph(edges: list[Edge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        source, target = unit(e.source), unit(e.target)
        if source != target:
            graph.setdefault(source, set()).add(target)
    return graph


def describe(graph: dict[str, set[str]]) -> str:
    return "\n".join(f"{source} -> {', '.join(sorted(targets))}" for source, targets in sorted(graph.items()))


def test_the_import_graph_is_printed() -> None:
    edges = collect()
    assert edges, "no imports found: is REPO_ROOT right?"
    print("\npackage -> package imports:\n" + describe(package_graph(edges)))


def test_no_import_loops() -> None:
    loops = cycles(collect())
    assert not loops, "import loops:\n" + "\n".join(" <-> ".join(c) for c in loops)


def test_no_upward_or_sideways_imports() -> None:
    bad = forbidden(collect())
    assert not bad, "forbidden imports:\n" + "\n".join(map(str, bad))


def test_the_checker_sees_what_it_must(tmp_path: Path) -> None:
    """The checker itself: a loop, a lazy upward import and a plugin named by a string are found."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "tools" / "a").mkdir()
    (tmp_path / "tools" / "a" / "__init__.py").write_text("")
    (tmp_path / "tools" / "a" / "x.py").write_text("from .y import Y\n")
    (tmp_path / "tools" / "a" / "y.py").write_text("def f():\n    from tools.a import x\n")
    (tmp_path / "tools" / "a" / "z.py").write_text(  # no loop: typing only, and data read
        "from typing import TYPE_CHECKING\nfrom importlib import resources\nif TYPE_CHECKING:\n"
        "    from .w import W\nDATA = resources.files('tools.a.w')\n")
    (tmp_path / "tools" / "a" / "w.py").write_text("from . import z\n")
    (tmp_path / "assistant" / "core.py").write_text(
        "import importlib\n\ndef f():\n    from ui import thing\n    importlib.import_module('tools.a')\n")
    (tmp_path / "assistant" / "listing.py").write_text("PLUGINS = ('tools.a.x',)\n")
    edges = collect(tmp_path)
    assert cycles(edges) == [["tools.a.x", "tools.a.y"]]
    assert {(e.source, e.target) for e in forbidden(edges)} == {
        ("assistant.core", "ui"), ("assistant.core", "tools.a"), ("assistant.listing", "tools.a.x")}
