from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pluggy import PluginValidationError

from assistant.errors import ConfigError
from assistant.plugins import build_registry, load_registry, make_plugin_manager
from tests.conftest import REPO_ROOT

GOOD = '''
from assistant import hookimpl, tool

@tool(examples=["say hello", "打个招呼"], capability="greeting")
def hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"

@hookimpl
def register_tools(register):
    register(hello)
'''


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return name


def test_a_module_plugin_registers_its_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _module(tmp_path, monkeypatch, "plug_good", GOOD)
    registry = load_registry([name])
    assert registry.names() == ["hello"]
    hello = registry.get("hello")
    assert hello.plugin == name and hello.capability == "greeting"
    assert hello.invoke({"name": "Ada"}, None).data == "hello Ada"  # type: ignore[arg-type]


def test_a_misspelt_hook_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _module(tmp_path, monkeypatch, "plug_typo", GOOD.replace("def register_tools", "def register_tool"))
    with pytest.raises(PluginValidationError, match="register_tool"):
        make_plugin_manager([name])


def test_two_plugins_cannot_claim_one_tool_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _module(tmp_path, monkeypatch, "plug_a", GOOD)
    b = _module(tmp_path, monkeypatch, "plug_b", GOOD)
    with pytest.raises(ConfigError, match="already registered"):
        build_registry(make_plugin_manager([a, b]))


def test_unknown_plugin_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no_such_plugin_xyz"):
        make_plugin_manager(["no_such_plugin_xyz"])


def test_empty_selection_loads_nothing() -> None:
    assert len(load_registry([])) == 0


@pytest.fixture(scope="module")
def example_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin installed for real (wheel build, dist-info, entry point) into a folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO_ROOT / "examples" / "mentorly-reading-time")],
        check=True, capture_output=True, timeout=240,
    )
    assert (target / "mentorly_reading_time").is_dir()
    return target


def _mentorly(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO_ROOT}"}
    return subprocess.run([sys.executable, "-m", "mentorly_app", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_example_plugin_loads_through_its_entry_point(example_plugin_site: Path) -> None:
    out = _mentorly(example_plugin_site, "plugins", "--json")
    assert out.returncode == 0, out.stderr
    assert {"name": "reading_time", "tools": ["reading_time"]} in json.loads(out.stdout)


def test_example_plugin_tool_runs_from_the_cli(example_plugin_site: Path) -> None:
    out = _mentorly(example_plugin_site, "tools", "call", "reading_time", "--arg",
                    "text=Mitochondria are the powerhouse of the cell. 细胞的能量工厂", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)["data"]
    assert data["words"] == 7 and data["chinese_characters"] == 7


def test_plugin_selection_can_exclude_an_installed_plugin(example_plugin_site: Path) -> None:
    env_site = example_plugin_site
    out = subprocess.run(
        [sys.executable, "-m", "mentorly_app", "plugins", "--json"],
        env={**os.environ, "PYTHONPATH": f"{env_site}{os.pathsep}{REPO_ROOT}", "MENTORLY_PLUGINS": "[]"},
        text=True, capture_output=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
