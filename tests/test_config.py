from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.config import load_settings
from assistant.errors import ConfigError
from mentorly_app.cli import cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MENTORLY_HOME", str(tmp_path))
    return tmp_path


def test_defaults_live_under_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MENTORLY_DATABASE_URL", raising=False)  # set by the PostgreSQL mode
    s = load_settings()
    assert s.home == home
    assert s.db_url == f"sqlite:///{home / 'mentorly.db'}"
    assert s.llm.backend == "local" and s.llm.threads == 1


def test_environment_overrides_nested_fields(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_LLM__THREADS", "3")
    monkeypatch.setenv("MENTORLY_PLUGINS", '["a", "b"]')
    s = load_settings()
    assert s.llm.threads == 3
    assert s.plugins == ["a", "b"]


def test_toml_file_is_read_and_environment_wins(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "config.toml").write_text('default_tenant = "school"\n[llm]\nthreads = 2\nmodel = "m"\n')
    s = load_settings()
    assert (s.default_tenant, s.llm.threads, s.llm.model) == ("school", 2, "m")
    monkeypatch.setenv("MENTORLY_LLM__THREADS", "4")
    assert load_settings().llm.threads == 4


def test_explicit_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text("[server]\nport = 9001\n")
    monkeypatch.setenv("MENTORLY_CONFIG", str(cfg))
    assert load_settings().server.port == 9001
    monkeypatch.setenv("MENTORLY_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()


@pytest.mark.parametrize(
    "content, match",
    [("[llm\nthreads = 2", "not valid TOML"), ("[llm]\nthreads = 0\n", "invalid settings")],
)
def test_bad_config_is_a_clear_error(home: Path, content: str, match: str) -> None:
    (home / "config.toml").write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_settings()


def test_config_show_masks_secrets(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTORLY_LLM__API_KEY", "sk-very-secret")
    monkeypatch.setenv("MENTORLY_DATABASE_URL", "postgresql://app:hunter2@db.internal/mentorly")
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "sk-very-secret" not in result.output and "hunter2" not in result.output
    shown = json.loads(result.output)
    assert shown["llm"]["api_key"] == "********"
    assert shown["database_url"] == "postgresql://app:********@db.internal/mentorly"


def test_cli_reports_bad_config_without_traceback(home: Path) -> None:
    (home / "config.toml").write_text("[llm]\nthreads = -1\n")
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 1
    assert "Error: invalid settings" in result.output
    assert "Traceback" not in result.output


def test_plugin_section_reads_its_toml_table_and_environment_wins(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.knowledge_search.settings import KnowledgeSettings, knowledge_settings

    (home / "config.toml").write_text("[knowledge]\nmax_file_mb = 2.5\nchunk_units = 300\n")
    ks = knowledge_settings(load_settings())
    assert isinstance(ks, KnowledgeSettings)
    assert (ks.max_file_mb, ks.chunk_units, ks.overlap_units) == (2.5, 300, 24)
    monkeypatch.setenv("MENTORLY_KNOWLEDGE__MAX_FILE_MB", "7")
    assert knowledge_settings(load_settings()).max_file_mb == 7.0
    shown = json.loads(CliRunner().invoke(cli, ["config", "show"]).output)
    assert shown["knowledge"]["max_file_mb"] == 7.0 and shown["knowledge"]["chunk_units"] == 300
    assert knowledge_settings(load_settings()) is knowledge_settings(load_settings())  # reused
    config = home / "config.toml"
    config.write_text("[knowledge]\nchunk_units = 400\n")
    later = config.stat().st_mtime_ns + 10_000_000
    os.utime(config, ns=(later, later))  # an edit the next read must see
    assert knowledge_settings(load_settings()).chunk_units == 400


@pytest.mark.parametrize("content, match", [
    ("[knowledge]\nchunk_units = 5\n", r"invalid \[knowledge\] settings"),
    ("knowledge = 3\n", r"\[knowledge\] must be a table"),
])
def test_bad_plugin_section_is_a_clear_error(home: Path, content: str, match: str) -> None:
    from tools.knowledge_search.settings import knowledge_settings

    (home / "config.toml").write_text(content)
    with pytest.raises(ConfigError, match=match):
        knowledge_settings(load_settings())
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "knowledge" in result.output


def test_plugin_section_must_use_its_own_prefix() -> None:
    from pydantic_settings import SettingsConfigDict

    from assistant.config import PluginSettings

    with pytest.raises(TypeError, match="MENTORLY_GRADES__"):
        class Wrong(PluginSettings):
            section = "grades"
            model_config = SettingsConfigDict(env_prefix="GRADES_")
