"""Fuzz every built-in tool's arguments: a bad argument is a clear error, never a crash.

For each tool registered by the built-in plugins, many bad argument sets (wrong types, empty and
blank strings, NUL bytes, lone surrogates, huge strings, unknown model names, labels that are a
string / one item / non-strings / duplicates, negative and huge ``k``, unknown subject and
level, missing required and extra keys) go through ``tool.validate`` and then ``tool.invoke``
with a real ``ToolContext`` (the session's throw-away home, the packaged embedder, a small
catalog and document collection). ``validate`` may only raise ``InvalidInput``; once the
arguments validate, ``invoke`` may only return a ``ToolResult`` or raise ``ToolError`` — the
agent reports anything else as a crash — and an error's message stays a readable sentence.

A deterministic table covers the named cases; hypothesis adds random argument sets per tool.
Cases that reach the embedder are bounded (strings are short, huge ones are cut by the tools),
so the module runs in well under a minute on two cores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from assistant.config import Settings, load_settings
from assistant.errors import InvalidInput, ToolError
from assistant.registry import ToolRegistry
from assistant.tooling import Tool, ToolContext, ToolResult, Upload
from mentorly_app import BUILTIN_PLUGINS, load_registry

TENANT = "default"
MAX_MESSAGE_CHARS = 400
"""An error message is a sentence for a learner, not an echo of a megabyte of input."""

BAD_STRINGS: list[str] = [
    "", " ", "\t\n  \r", "\x00", "a\x00b", "\ud800", "ok \udfff text", "\u202egnirts",
    "\ufeff\u200b\u200d", "😀" * 30, "ｆｕｌｌ　ｗｉｄｔｈ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "../../etc/passwd",
    "mentorly train text", "作业太难了，我快崩溃了", "x" * 20_000, "'; DROP TABLE x; --",
    "\\", "%s%n{0}", "e\u0301\u0301\u0301", "\x7f\x1b[31m",
]
WRONG_TYPES: list[Any] = [
    None, 0, -1, 1.5, math.nan, math.inf, True, False, 10**30, [], {}, ["x"], {"a": 1},
    [None], b"bytes",
]
LABEL_VALUES: list[Any] = [
    "urgent, can wait", ["urgent"], ["urgent", "urgent"], ["urgent", " URGENT "], ["", ""],
    ["", "a"], ["a", 1], [1, 2], [None, None], [["a"], ["b"]], ["a", "b" * 10_000],
    ["\x00", "\ud800"], ["x"] * 500, ["math", "not math"], ["紧急", "不紧急"],
    ["positive", "negative", "positive"], ["😀", "😡"], [" ", "\t"],
]
MODEL_NAMES: list[Any] = [
    "mentorly train text", "no-such-model", "sentiment", "../sentiment", "a" * 65, "..",
    ".hidden", "CON", "model\x00", "模型", "resnet50",
]
NUMBERS: list[Any] = [0, -1, -(10**18), 21, 10**30, 2.5, "3", "many", math.nan, True]
SUBJECTS: list[Any] = ["mathematics", "数学", "underwater basket weaving", "x" * 201, "MATH"]
LEVELS: list[Any] = ["wizard", "BEGINNER", "入门", "x" * 20_000, "advanced\x00"]

BASE: dict[str, dict[str, Any]] = {
    "classify_text": {"text": "The homework is far too hard."},
    "knowledge_search": {"query": "late submission policy"},
    "recommend_resources": {},
    "classify_image": {},
}
EXTRA: dict[tuple[str, str], list[Any]] = {
    ("classify_text", "labels"): LABEL_VALUES,
    ("classify_text", "model"): MODEL_NAMES,
    ("classify_image", "model"): MODEL_NAMES,
    ("classify_image", "top_k"): NUMBERS,
    ("knowledge_search", "k"): NUMBERS,
    ("knowledge_search", "collection"): ["demo", "fuzz", "no-such-collection", "x" * 300],
    ("recommend_resources", "k"): NUMBERS,
    ("recommend_resources", "subject"): SUBJECTS,
    ("recommend_resources", "level"): LEVELS,
}


@pytest.fixture(scope="module")
def fuzz_settings(session_home: Path) -> Settings:
    s = load_settings(home=session_home / "fuzz")
    s.ensure_dirs()
    return s


@pytest.fixture(scope="module")
def registry(fuzz_settings: Settings) -> ToolRegistry:
    """The built-in tools, with the data they read: the demo catalog and learners (a few
    seconds) and a one-file document collection."""
    from tools.knowledge_search.service import knowledge_base
    from tools.recommendation import prepare_models

    prepare_models(settings=fuzz_settings, progress=False)
    docs = fuzz_settings.home / "fuzz-docs"
    docs.mkdir(exist_ok=True)
    (docs / "policy.md").write_text(
        "# Late submission policy\n\nHomework handed in late loses 10% per day.\n\n"
        "# 迟交规定\n\n作业每迟交一天扣百分之十。\n", "utf-8")
    knowledge_base(fuzz_settings).ingest([docs], TENANT, "fuzz")
    return load_registry(BUILTIN_PLUGINS)  # the built-ins only, not installed third parties


@pytest.fixture(scope="module")
def image_upload(tmp_path_factory: pytest.TempPathFactory) -> Upload:
    path = tmp_path_factory.mktemp("fuzz-upload") / "square.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(path)
    return Upload("img-fuzz", path, "image/png", path.stat().st_size, 32, 32)


def _contexts(settings: Settings, upload: Upload) -> list[ToolContext]:
    return [
        ToolContext(TENANT, "learner-fuzz", settings=settings, language="en"),
        ToolContext(TENANT, "learner-fuzz", settings=settings, language="zh", files=[upload]),
    ]


def _cases(tool: Tool) -> Iterator[Any]:
    """Argument sets for ``tool``: each parameter replaced by each bad value, plus the
    whole-object cases (missing required, unknown keys, not an object)."""
    base = BASE[tool.name]
    props = tool.parameters.get("properties", {})
    yield from ([], "text", None, 42)
    yield {}
    yield {**base, "unknown": 1}
    yield {**base, "context": "forged"}
    yield {**base, "": None}
    for name in tool.parameters.get("required", []):
        yield {k: v for k, v in base.items() if k != name}
    for name in props:
        for value in [*BAD_STRINGS, *WRONG_TYPES, *EXTRA.get((tool.name, name), [])]:
            yield {**base, name: value}


def _check(tool: Tool, args: Any, context: ToolContext) -> None:
    """``validate`` raises only ``InvalidInput``; valid arguments give a ``ToolResult`` or a
    short ``ToolError``."""
    try:
        tool.validate(args)
    except InvalidInput:
        with pytest.raises(InvalidInput):  # invoke validates the same way
            tool.invoke(args, context)
        return
    try:
        result = tool.invoke(args, context)
    except ToolError as exc:
        for text in (exc.message, exc.zh):
            assert text is None or _readable(text), f"{tool.name}({_short(args)}): {text!r:.300}"
        return
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{tool.name}({_short(args)}) raised {type(exc).__name__}: "
                    f"{str(exc)[:300]}")
    assert isinstance(result, ToolResult)
    # what the learner sees must be sendable: UTF-8 (no lone surrogate echoed back) and JSON
    json.dumps(result.data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    (result.summary or "").encode("utf-8")


def _readable(text: str) -> bool:
    """A sentence: not blank, not an echo of a huge input, encodable as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(text.strip()) and len(text) <= MAX_MESSAGE_CHARS


def _short(args: Any) -> str:
    text = repr(args)
    return text if len(text) <= 200 else text[:200] + "…"


TOOLS = ["classify_text", "knowledge_search", "recommend_resources", "classify_image"]
WITH_EXTRACTORS = ["classify_text", "knowledge_search", "recommend_resources"]  # image: by upload


def test_every_builtin_tool_is_fuzzed(registry: ToolRegistry) -> None:
    assert sorted(t.name for t in registry if t.extractor is not None) == sorted(WITH_EXTRACTORS)
    assert sorted(registry.names()) == sorted(TOOLS)


@pytest.mark.parametrize("name", TOOLS)
def test_bad_arguments_never_crash(name: str, registry: ToolRegistry, fuzz_settings: Settings,
                                   image_upload: Upload) -> None:
    tool = registry.get(name)
    contexts = _contexts(fuzz_settings, image_upload)
    for n, args in enumerate(_cases(tool)):
        _check(tool, args, contexts[n % 2])


_any_text = st.text(st.characters(exclude_categories=()), max_size=30)  # surrogates too
_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    _any_text, st.sampled_from(BAD_STRINGS[:-1] + MODEL_NAMES),
)
_json = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _typed(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the schema's type (so most reach the tool's body), with hostile content."""
    branches = prop.get("anyOf") or [prop]
    out: list[st.SearchStrategy[Any]] = []
    for branch in branches:
        kind = branch.get("type")
        if kind == "string":
            out.append(_any_text | st.sampled_from(BAD_STRINGS[:-1] + MODEL_NAMES + SUBJECTS))
        elif kind == "integer":
            out.append(st.integers(min_value=-3, max_value=25) | st.integers())
        elif kind == "boolean":
            out.append(st.booleans())
        elif kind == "array":
            out.append(st.lists(_any_text | st.sampled_from(["math", "physics", "紧急", ""]),
                                max_size=6))
        elif kind == "null":
            out.append(st.none())
    return st.one_of(*out) if out else _json


@pytest.mark.parametrize("name", TOOLS)
def test_random_arguments_never_crash(name: str, registry: ToolRegistry,
                                      fuzz_settings: Settings, image_upload: Upload) -> None:
    """Random argument sets: mostly of the schema's types (so they reach the tool's body),
    one value in ten of any JSON type, one set in ten with an unknown key."""
    tool = registry.get(name)
    props = tool.parameters.get("properties", {})
    contexts = _contexts(fuzz_settings, image_upload)
    typed = {key: _typed(prop) for key, prop in props.items()}

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data(), chosen=st.lists(st.sampled_from(sorted(props)), unique=True),
           zh=st.booleans())
    def run(data: st.DataObject, chosen: list[str], zh: bool) -> None:
        args = dict(BASE[name])
        for key in chosen:
            wrong = data.draw(st.integers(0, 9), label="wrong type") == 0
            args[key] = data.draw(_json if wrong else typed[key], label=key)
        if data.draw(st.integers(0, 9), label="unknown key") == 0:
            args["unknown"] = data.draw(_json, label="unknown")
        _check(tool, args, contexts[int(zh)])

    run()


@pytest.mark.parametrize("name", WITH_EXTRACTORS)
def test_extractors_never_crash(name: str, registry: ToolRegistry, fuzz_settings: Settings,
                                image_upload: Upload) -> None:
    """The deterministic extractors read the raw message: a dict of arguments or a
    ``ToolError``, whatever the learner typed."""
    tool = registry.get(name)
    assert tool.extractor is not None, f"{name} lost its extractor"
    extractor = tool.extractor
    context = _contexts(fuzz_settings, image_upload)[0]
    messages = [*BAD_STRINGS, "“”", "「」：", "Classify '' into , or", "推荐0门课", "top 99999 things",
                "分类：“a”还是“b”还是", "using model ../x on 'y'", "labels: , , ,"]

    def one(message: str) -> None:
        try:
            args = extractor(message, context)
        except ToolError as exc:
            assert _readable(exc.message)
            return
        assert isinstance(args, dict)

    for message in messages:
        one(message)

    @settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @given(message=st.text(st.characters(exclude_categories=()), max_size=80)
           | st.lists(st.sampled_from(["“", "”", "'", ":", "：", "还是", "或", ",", "、", " or ",
                                       "into", "x", "作业", "3", "门", "model", "?"]))
           .map("".join))
    def run(message: str) -> None:
        one(message)

    run()
