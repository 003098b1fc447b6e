"""The ``mentorly`` command as a user runs it: a real process, real settings, real SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, warm_router_cache

PLUGIN = '''
from assistant import ToolContext, ToolError, hookimpl, tool

@tool(capability="math", examples=["add 2 and 3", "what is 4 plus 5", "sum these numbers",
      "把2和3加起来", "4加5等于几", "帮我算一下加法"])
def add_numbers(a: int, b: int, context: ToolContext) -> dict:
    """Add two integers."""
    if a < 0:
        raise ToolError("negative numbers are not supported")
    return {"sum": a + b}

@hookimpl
def register_tools(register):
    register(add_numbers)
'''


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by the module's tests so the router's example embeddings are computed once
    (from the session's: ``warm_router_cache``; only the test plugin's examples are new)."""
    home = tmp_path_factory.mktemp("cli-home")
    warm_router_cache(home)
    return home


@pytest.fixture
def env(tmp_path: Path, module_home: Path) -> dict[str, str]:
    (tmp_path / "cli_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    script = tmp_path / "script.json"
    script.write_text(json.dumps(['{"a": 2, "b": 3}', "2 plus 3 is 5."]))
    return {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}",
        "MENTORLY_HOME": str(module_home),
        "MENTORLY_PLUGINS": '["cli_test_plugin"]',
        "MENTORLY_LLM__BACKEND": "fake",
        "MENTORLY_LLM__FAKE_SCRIPT": str(script),
    }


def mentorly(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mentorly_app", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mentorly"
    out = subprocess.run([str(script), "--help"], text=True, capture_output=True, timeout=60)
    assert out.returncode == 0 and "chat" in out.stdout and "serve" in out.stdout


def test_chat_json_streams_events_and_ends_with_done(env: dict[str, str]) -> None:
    out = mentorly(env, "chat", "what is 2 plus 3?", "--json", "--user", "ada")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "step_started" and types[1] == "step_finished" and types[-1] == "done"
    assert events[1]["result"] == {"sum": 5}
    done = events[-1]
    assert done["tools"] == ["add_numbers"] and done["text"] == "2 plus 3 is 5."
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == done["text"]


def test_chat_human_output_shows_tool_steps(env: dict[str, str]) -> None:
    out = mentorly(env, "chat", "what is 2 plus 3?")
    assert out.returncode == 0, out.stderr
    assert "2 plus 3 is 5." in out.stdout
    assert "add_numbers" in out.stderr and "✓" in out.stderr


@pytest.mark.parametrize(
    "args, message",
    [(["chat", "   "], "the message is empty"),
     (["chat", "x" * 100_000], "the limit is"),
     (["tools", "call", "add_numbers", "--arg", "a=two", "--arg", "b=1"], "a: Input should be a valid integer"),
     (["tools", "call", "no_such_tool"], "no tool named 'no_such_tool'"),
     (["tools", "call", "add_numbers", "--arg", "a=-1", "--arg", "b=1"], "negative numbers"),
     (["tools", "call", "add_numbers", "--arg", "oops"], "is not key=value")],
)
def test_bad_input_is_a_clear_message_and_a_nonzero_exit(env: dict[str, str], args: list[str],
                                                         message: str) -> None:
    out = mentorly(env, *args)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_a_text_file_passed_as_image_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture")
    out = mentorly(env, "chat", "what is this?", "--image", str(fake))
    assert out.returncode == 1
    assert "not an image" in out.stderr.lower() and "Traceback" not in out.stderr


def test_tools_lists_schemas(env: dict[str, str]) -> None:
    out = mentorly(env, "tools", "--json")
    assert out.returncode == 0, out.stderr
    (only,) = json.loads(out.stdout)
    assert only["name"] == "add_numbers" and only["parameters"]["required"] == ["a", "b"]
    assert only["plugin"] == "cli_test_plugin"


def test_tools_call_runs_one_tool(env: dict[str, str]) -> None:
    out = mentorly(env, "tools", "call", "add_numbers", "--arg", "a=40", "--arg", "b=2", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"] == {"sum": 42}


def test_route_prints_a_decision_without_running_anything(env: dict[str, str]) -> None:
    out = mentorly(env, "route", "请帮我算一下 7 加 8", "--json")
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["tool"] == "add_numbers" and 0 <= decision["confidence"] <= 1
    out = mentorly(env, "route", "Thanks a lot, see you tomorrow!", "--json")
    assert json.loads(out.stdout)["tool"] is None


def test_a_missing_model_file_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "MENTORLY_LLM__BACKEND": "local", "MENTORLY_LLM__MODEL_PATH": str(tmp_path / "no.gguf"),
           "MENTORLY_PLUGINS": "[]"}
    out = mentorly(env, "chat", "hello")
    assert out.returncode == 1
    assert "no.gguf" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_chat_in_chinese_with_the_real_local_model(env: dict[str, str], local_model_path: Path) -> None:
    env = {**env, "MENTORLY_LLM__BACKEND": "local", "MENTORLY_LLM__MAX_TOKENS": "40", "MENTORLY_PLUGINS": "[]",
           "MENTORLY_LLM__MODEL_PATH": str(local_model_path)}
    out = mentorly(env, "chat", "你好", "--json", timeout=400)
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout.splitlines()[-1])
    assert done["type"] == "done" and done["model"].startswith("qwen2.5")
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in done["text"])
    assert han >= 2, done["text"]
