"""Reading a server-sent-event stream's text (the widget's and the chat API's turns) in tests."""

from __future__ import annotations

import json
import re
from typing import Any


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The stream's (event, data) pairs, in order."""
    found = []
    for chunk in text.split("\n\n"):
        kind = re.search(r"^event: (\S+)$", chunk, re.M)
        data = "".join(line[5:].strip() for line in chunk.splitlines() if line.startswith("data:"))
        if kind and data:
            found.append((kind.group(1), json.loads(data)))
    return found


def done_of(text: str) -> dict[str, Any]:
    """The data of the stream's one ``done`` event."""
    [done] = [data for kind, data in events(text) if kind == "done"]
    return done
