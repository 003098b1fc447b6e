"""Checks on JSON request bodies that no JSON parser makes safely: nesting depth and unpaired
UTF-16 surrogates.

Python's ``json`` recurses once per level: 100,000 levels of ``[`` raise ``RecursionError``
(a 500, or FastAPI's vague "error parsing the body"). A lone surrogate (``"\\ud800"``, or its
UTF-8 bytes, which ``json.loads`` lets through) parses into a ``str`` that cannot be encoded
later, in the database or the response: a 500 far from the cause. Both are found here on the
raw bytes, before any parser runs, with C-speed scans in the common case; only a body that may
hold a surrogate is parsed, to name where it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from assistant.errors import InvalidInput

MAX_JSON_DEPTH = 64

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}\n')
# an escaped surrogate (\uD800-\uDFFF) or one encoded in UTF-8 (ED A0-BF xx)
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (or JSON lines), strings ignored.

    Linear time, vectorized: escaped backslashes, then escaped quotes are cut out (runs of
    backslashes pair up from the left, as a parser reads them), so every remaining quote opens
    or closes a string; only quotes, brackets and newlines are kept, and a bracket counts when an even
    number of quotes precede it on its line (JSON strings hold no raw newline, so an unclosed
    quote cannot hide the next lines). The depth never drops below zero, so stray closing
    brackets cannot hide deep nesting after them either."""
    import numpy as np

    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = np.frombuffer(unescaped.translate(None, _NOT_STRUCTURE), dtype=np.uint8)
    if structure.size == 0:
        return 0
    quotes = np.cumsum(structure == ord('"'), dtype=np.int32)  # bodies are far below 2 GiB
    line_start = np.maximum.accumulate(np.where(structure == ord("\n"), quotes, 0))
    outside = (quotes - line_start) & 1 == 0
    opening = ((structure == ord("[")) | (structure == ord("{"))) & outside
    closing = ((structure == ord("]")) | (structure == ord("}"))) & outside
    depth = np.cumsum(opening.astype(np.int8) - closing.astype(np.int8), dtype=np.int32)
    floor = np.minimum.accumulate(np.minimum(depth, 0))  # as if each dip below zero restarted
    return max(int((depth - floor).max()), 0)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _NAME.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def surrogate_path(value: Any, path: str = "") -> str | None:
    """Where the first string (or key) with an unpaired surrogate is, e.g. ``messages[0].content``;
    ``""`` for the value itself, ``None`` when there is none."""
    if isinstance(value, str):
        return path if _has_surrogate(value) else None
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        here = _join(path, key)
        if isinstance(key, str) and _has_surrogate(key):
            return here
        found = surrogate_path(item, here)
        if found is not None:
            return found
    return None


def _surrogate_location(data: bytes, lines: bool) -> str | None:
    """Where an unpaired surrogate is, parsing the body (or each line); ``None`` when there is
    none or the text is not JSON (the endpoint's own parser then says what is wrong)."""
    documents = enumerate(data.split(b"\n"), 1) if lines else [(0, data)]
    for number, document in documents:
        if lines and not document.strip():
            continue
        try:
            value = json.loads(document)
        except ValueError:
            continue
        path = surrogate_path(value)
        if path is not None:
            where = path or "the top level"
            return f"line {number}, {where}" if lines else where
    return None


def check_json(data: bytes, *, lines: bool = False, what: str = "the request body") -> None:
    """Refuse (422) JSON text nested deeper than ``MAX_JSON_DEPTH`` or holding an unpaired
    UTF-16 surrogate. ``lines``: JSON lines, one document per line."""
    openings = data.count(b"[") + data.count(b"{")  # fewer than the limit: cannot be too deep
    if openings > MAX_JSON_DEPTH and json_depth(data) > MAX_JSON_DEPTH:
        raise InvalidInput(f"{what} is JSON nested deeper than {MAX_JSON_DEPTH} levels (arrays and "
                           f"objects); flatten it")
    if _SURROGATE_HINT.search(data):
        where = _surrogate_location(data, lines)
        if where is not None:
            raise InvalidInput(f"text contains an unpaired UTF-16 surrogate at {where} (surrogates "
                               f"are valid only as high-low pairs); send valid Unicode")
