"""The tool-package convention of ``tools/README.md``, checked for every built-in tool package
and the example plugin: ``__init__.py`` holds hook implementations only, ``tool.py`` the tool
and ``TOOL_VERSION``, ``examples.py`` the routing examples in English and Chinese, and a
package imports itself relatively (so a copy works under a new name)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

from assistant.plugins import load_registry
from mentorly_app.wiring import BUILTIN_PLUGINS
from tests.conftest import REPO_ROOT

EXAMPLE_PLUGIN = "mentorly_reading_time"
EXAMPLE_ROOT = REPO_ROOT / "examples" / "mentorly-reading-time"
PACKAGES = (*BUILTIN_PLUGINS, EXAMPLE_PLUGIN)
MIN_EXAMPLES_PER_LANGUAGE = 25  # built-ins; the example plugin is kept short
_CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def _example_plugin_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE_ROOT))


def _folder(package: str) -> Path:
    return EXAMPLE_ROOT / package if package == EXAMPLE_PLUGIN else REPO_ROOT / Path(*package.split("."))


def _module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_has_the_three_files(package: str) -> None:
    folder = _folder(package)
    assert {"__init__.py", "tool.py", "examples.py"} <= {p.name for p in folder.glob("*.py")}


@pytest.mark.parametrize("package", PACKAGES)
def test_init_holds_hook_implementations_only(package: str) -> None:
    tree = ast.parse((_folder(package) / "__init__.py").read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), "say what the plugin adds"
    for node in tree.body[1:]:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        assert isinstance(node, ast.FunctionDef), f"line {node.lineno}: only imports and hooks"
        decorators = [d.id if isinstance(d, ast.Name) else ast.unparse(d) for d in node.decorator_list]
        assert decorators == ["hookimpl"], f"{node.name}: not a @hookimpl"


@pytest.mark.parametrize("package", PACKAGES)
def test_examples_are_english_then_chinese(package: str) -> None:
    examples = _module(package, "examples")
    assert examples.EXAMPLES == examples.EXAMPLES_EN + examples.EXAMPLES_ZH
    assert not [e for e in examples.EXAMPLES_EN if _CJK.search(e)]
    assert all(_CJK.search(e) for e in examples.EXAMPLES_ZH)
    if package != EXAMPLE_PLUGIN:
        assert len(examples.EXAMPLES_EN) >= MIN_EXAMPLES_PER_LANGUAGE
        assert len(examples.EXAMPLES_ZH) >= MIN_EXAMPLES_PER_LANGUAGE


@pytest.mark.parametrize("package", PACKAGES)
def test_the_registered_tool_reports_tool_version_and_examples(package: str) -> None:
    registry = load_registry([package], builtins=BUILTIN_PLUGINS)
    tool_module = _module(package, "tool")
    examples = _module(package, "examples")
    assert len(registry) >= 1
    for name in registry.names():
        registered = registry.get(name)
        assert registered.plugin == package
        assert registered.version == tool_module.TOOL_VERSION
        assert registered.examples == examples.EXAMPLES


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_imports_itself_relatively(package: str) -> None:
    for path in sorted(_folder(package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            own = [n for n in names if n == package or n.startswith(package + ".")]
            assert not own, f"{path.name}:{node.lineno}: import {own[0]} relatively"
