"""Shared pieces of the UI tests: a real runtime (scripted LLM), a real image tool, real images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL
from PIL import Image
from skimage import data as skdata

from assistant import ToolContext, ToolError, ToolResult, tool
from assistant.config import load_settings
from assistant.llm.fake import FakeBackend
from assistant.registry import ToolRegistry
from assistant.runtime import Runtime, build_runtime


@tool(capability="image", version="0.3.0", examples=[
    "What is in this picture?", "Describe this photo", "这张图片里有什么？", "描述一下这张照片"])
def image_colours(context: ToolContext) -> ToolResult:
    """Measure an attached image: its size and its average colour."""
    upload = context.image
    if upload is None:
        raise ToolError("no image is attached")
    with Image.open(upload.path) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.float64)
    mean = pixels.reshape(-1, 3).mean(axis=0)
    channel = ("red", "green", "blue")[int(mean.argmax())]
    spread = float(mean.max() - mean.min()) / 255.0
    return ToolResult(
        data={"width": upload.width, "height": upload.height, "mean_rgb": mean.round(1).tolist()},
        summary=f"{upload.width}×{upload.height} pixels, mostly {channel}",
        model="pillow-mean-colour", model_version=PIL.__version__, confidence=round(spread, 3),
    )


def make_runtime(home: Path, *, script: list[Any] | None = None,
                 with_image_tool: bool = False) -> tuple[Runtime, FakeBackend]:
    """The real runtime (agent, storage, upload store) with the scripted LLM; no plugins load."""
    settings = load_settings(home=home, plugins=[], llm={"backend": "fake"})
    backend = FakeBackend(script=script or [])

    def configure(registry: ToolRegistry) -> None:
        if with_image_tool:
            registry.add(image_colours)

    return build_runtime(settings, backend=backend, configure=configure), backend


def cat_png(directory: Path) -> Path:
    """skimage's ``chelsea`` photograph (a tabby cat, 451×300) as a PNG file."""
    path = directory / "chelsea.png"
    Image.fromarray(skdata.chelsea()).save(path)
    return path


def broken_png(directory: Path) -> Path:
    """A PNG signature followed by garbage: passes the extension check, fails decoding."""
    path = directory / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    return path


def as_dicts(messages: Any) -> list[dict[str, Any]]:
    """``gr.ChatMessage`` objects or API dicts, as plain ``{"role", "content", "metadata"}``;
    an output of the chat function or of the ``/chat`` API, ``(messages, page_state)``, gives
    its messages."""
    if isinstance(messages, tuple):
        messages, _page_state = messages
    out = []
    for m in messages:
        if isinstance(m, gr.ChatMessage):
            out.append({"role": m.role, "content": m.content, "metadata": dict(m.metadata)})
        else:
            out.append({"role": m["role"], "content": m["content"],
                        "metadata": dict(m.get("metadata") or {})})
    return out


def answer_text(messages: Any) -> str:
    """The answer: the assistant messages that are not collapsible steps."""
    return "\n".join(str(m["content"]) for m in as_dicts(messages) if not m["metadata"])


def steps(messages: Any) -> list[dict[str, Any]]:
    return [m for m in as_dicts(messages) if m["metadata"].get("title")]
