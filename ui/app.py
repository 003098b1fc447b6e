"""The Gradio chat app: ``build_ui(runtime)`` for the composition root, ``mount_ui`` to serve it
inside the FastAPI app, ``launch_ui`` to run it alone (``python -m mentorly_app.chat_page``).

Gradio takes ``run_history``, CSS and the upload size limit at launch/mount time, not when
the Blocks are built; ``ui_options`` holds them so both ways of serving agree.

Replicas without sticky sessions: the page keeps no per-learner state on the server. One
message is one queued event whose inputs are everything the turn needs: the message, the chat
so far (the ``Chatbot`` value, held by the browser), the language and the page state (a hidden
component; ``ui.chat.PageState``), and whose outputs give them back. ``gr.ChatInterface`` is
not used because it passes the message and the history between the events of one submit in
``gr.State`` values, which live in the memory of the process that served the event: a
message whose events reached two replicas would be lost. The other events (language, examples,
"clear") are single un-queued requests. What still needs one replica is a single event's own
HTTP requests: Gradio's queue takes the event on one request (``queue/join``) and streams its
result on another (``queue/data``), so a load balancer must send those two to the same replica
(affinity for the seconds of one event, e.g. by Gradio's ``session_hash`` or a short cookie);
the stop button's cancel request goes to whichever replica runs the event too. The images a
learner attaches are uploaded to Gradio's cache folder first (``GRADIO_TEMP_DIR``): with
``shared_dir`` set and ``GRADIO_TEMP_DIR`` unset, ``build_ui`` points it at
``shared_dir/gradio`` so that the replica that runs the turn finds the file another one
received.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI

from assistant.errors import InvalidInput
from ui.chat import PageState, RuntimeLike, make_chat_fn, message_parts, turn_gate
from ui.i18n import (
    LANGUAGE_CHOICES,
    Lang,
    examples,
    lang_from_accept_language,
    normalize_lang,
    t,
)

log = logging.getLogger(__name__)

CSS = """
#mentorly-header h1 { margin: 0.2rem 0 0.1rem 0; }
#mentorly-header p { margin: 0; opacity: 0.8; }
#mentorly-lang { min-width: 180px; }
"""


def _header(lang: str) -> str:
    return f"# {t('title', lang)}\n{t('subtitle', lang)}"


def _relabel(lang_value: str) -> tuple[Any, ...]:
    """Updates for every component whose text depends on the language."""
    lang = normalize_lang(lang_value)
    return (
        gr.update(value=_header(lang)),
        gr.update(label=t("language_label", lang)),
        gr.update(label=t("chatbot_label", lang), placeholder=t("chatbot_placeholder", lang),
                  examples=[{"text": e} for e in examples(lang)]),
        gr.update(placeholder=t("textbox_placeholder", lang)),
    )


def _browser_language(request: gr.Request) -> str:
    headers = getattr(request, "headers", None)
    return lang_from_accept_language(headers.get("accept-language") if headers else None)


def build_ui(runtime: RuntimeLike, *, language: str | None = None,
             tenant: str | None = None) -> gr.Blocks:
    """The chat page. ``language`` fixes the initial language; ``None`` follows the browser."""
    lang: Lang = normalize_lang(language)
    share_gradio_uploads(runtime.settings)
    chat_fn = make_chat_fn(runtime, tenant=tenant)
    limit = _concurrency(runtime)

    def page_turn(message: dict[str, Any] | None, history: list[Any] | None, language_value: str,
                  page_state: str | None, request: gr.Request) -> Iterator[tuple[Any, Any, Any]]:
        """One message from the page: the chat with the message appended at once (and the
        input box emptied), then with the assistant's side as it streams, and the new state."""
        shown = [*_renderable(history or []), *_user_messages(message)]
        yield shown, None, gr.skip()
        for messages, state in chat_fn(message, list(history or []), language_value, page_state,
                                       request):
            yield [*shown, *messages], gr.skip(), state

    def api_turn(message: dict[str, Any] | str | None, language_value: str,
                 page_state: str | None, request: gr.Request) -> Iterator[tuple[Any, str]]:
        """``/chat``: the assistant's messages as they stream, and the page state to send with
        the next message (an API client keeps no history: the state says what to continue)."""
        for messages, state in chat_fn(message, None, language_value, page_state, request):
            yield [_as_dict(m) for m in messages], state

    # Gradio keeps its own copy of every upload; on shared machines drop them after an hour
    # (the upload store holds the validated copy the agent uses).
    with gr.Blocks(title=t("page_title", lang), fill_height=True, analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        with gr.Row(equal_height=True):
            header = gr.Markdown(_header(lang), elem_id="mentorly-header")
            language_radio = gr.Radio(
                choices=LANGUAGE_CHOICES, value=lang, label=t("language_label", lang),
                scale=0, min_width=220, elem_id="mentorly-lang",
            )
        chatbot = gr.Chatbot(
            label=t("chatbot_label", lang), placeholder=t("chatbot_placeholder", lang),
            scale=1, buttons=["copy"], elem_id="mentorly-chatbot",
            examples=[{"text": e} for e in examples(lang)],
        )
        textbox = gr.MultimodalTextbox(
            placeholder=t("textbox_placeholder", lang), file_types=["image"],
            file_count="multiple", sources=["upload"], elem_id="mentorly-input",
            stop_btn=True,
        )
        # the page state travels with the page: in the DOM (so Gradio sends it), never shown
        page_state = gr.Textbox(value="", visible="hidden", interactive=False,
                                elem_id="mentorly-page-state", label="page state")
        api_response = gr.JSON(visible=False, label="response")
        api_button = gr.Button(visible=False)

        turn: dict[str, Any] = {
            "fn": page_turn, "inputs": [textbox, chatbot, language_radio, page_state],
            "outputs": [chatbot, textbox, page_state], "api_visibility": "undocumented",
            "concurrency_limit": limit, "concurrency_id": "mentorly-chat",
            "show_progress": "minimal"}
        submitted = textbox.submit(**turn)
        textbox.stop(None, None, None, cancels=[submitted], api_visibility="private", queue=False)
        example = chatbot.example_select(_example_message, None, textbox, queue=False,
                                         api_visibility="private").then(**turn)
        textbox.stop(None, None, None, cancels=[example], api_visibility="private", queue=False)
        chatbot.clear(_forget_conversation, page_state, page_state, queue=False,
                      api_visibility="private")
        api_button.click(
            api_turn, [textbox, language_radio, page_state], [api_response, page_state],
            api_name="chat", concurrency_limit=limit, concurrency_id="mentorly-chat",
            api_description="Send one message (text and optional image files) with the page "
                            "state the previous answer returned (empty: a new conversation); "
                            "streams the assistant's messages (tool steps, the answer, its "
                            "sources) and the page state for the next message.",
        )
        language_radio.change(_relabel, language_radio,
                              [header, language_radio, chatbot, textbox],
                              api_visibility="private", queue=False)
        if language is None:
            demo.load(_browser_language, None, language_radio, api_visibility="private",
                      queue=False)
    return demo


def share_gradio_uploads(settings: Any) -> Path | None:
    """With ``shared_dir`` set and ``GRADIO_TEMP_DIR`` unset, point Gradio's upload cache at
    ``shared_dir/gradio`` (before any component exists: each reads it when created), so an
    image uploaded to one replica is there for the replica that runs the turn; the folder
    used, or None when it is left as it was."""
    shared = getattr(settings, "shared_dir", None)
    if shared is None or os.environ.get("GRADIO_TEMP_DIR"):
        return None
    folder = Path(shared) / "gradio"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    log.info("Gradio's upload cache is %s (shared by the replicas)", folder)
    return folder


def _user_messages(message: dict[str, Any] | str | None) -> list[dict[str, Any]]:
    """The learner's message as the chat shows it: the attached images, then the text."""
    try:
        text, paths = message_parts(message)
    except InvalidInput:  # the chat function answers it
        return []
    parts: list[Any] = [{"path": p} for p in paths]
    if text:
        parts.append(text)
    return [{"role": "user", "content": parts}] if parts else []


def _renderable(history: list[Any]) -> list[Any]:
    """The chat as the page sent it, less images this replica cannot read (uploaded to another
    replica without a shared ``GRADIO_TEMP_DIR``): the chat still renders, with the text."""
    out: list[Any] = []
    for message in history:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            out.append(message)
            continue
        kept = [part for part in content if _readable(part)]
        if kept:
            out.append({**message, "content": kept})
    return out


def _readable(part: Any) -> bool:
    if not isinstance(part, dict):
        return True
    file = part.get("file") if isinstance(part.get("file"), dict) else part
    path = file.get("path") if isinstance(file, dict) else None
    return not isinstance(path, str) or "://" in path or Path(path).is_file()


def _as_dict(message: gr.ChatMessage) -> dict[str, Any]:
    return {"role": message.role, "content": message.content,
            "metadata": dict(message.metadata or {})}


def _example_message(event: gr.SelectData) -> dict[str, Any]:
    """A clicked example, into the input box (the turn then reads it from there)."""
    value = event.value if isinstance(event.value, dict) else {"text": str(event.value)}
    return {"text": str(value.get("text") or ""), "files": []}


def _forget_conversation(page_state: str | None) -> str:
    """"Clear": the next message starts a new conversation (the visitor stays)."""
    return PageState.decode(page_state).with_conversation(None).encode()


def _concurrency(runtime: RuntimeLike) -> int:
    """How many learners' turns Gradio lets in at once: all the turn gate can hold (running and
    in line), so the gate, not Gradio's own queue, decides who waits and tells them so."""
    gate = turn_gate(runtime)
    return gate.active + gate.queue if gate is not None else 4


def ui_options(runtime: RuntimeLike) -> dict[str, Any]:
    """Keyword arguments shared by ``Blocks.launch`` and ``gr.mount_gradio_app``."""
    uploads = getattr(runtime.settings, "uploads", None)
    return {
        "run_history": False,  # shared classroom machines: keep no runs in the browser
        "footer_links": ["api", "settings"],
        "max_file_size": getattr(uploads, "max_bytes", None),
        "css": CSS,
    }


def mount_ui(app: FastAPI, runtime: RuntimeLike, *, path: str = "/ui",
             blocks: gr.Blocks | None = None, **kwargs: Any) -> FastAPI:
    """Serve the chat page at ``path`` inside ``app``.

    Add the app's own ``CORSMiddleware`` (explicit origins) before calling this: Gradio then
    adds none, instead of reflecting any Origin.
    """
    demo = blocks if blocks is not None else build_ui(runtime)
    return gr.mount_gradio_app(app, demo, path=path, **{**ui_options(runtime), **kwargs})


def launch_ui(runtime: RuntimeLike, *, blocks: gr.Blocks | None = None,
              **kwargs: Any) -> tuple[Any, str, str | None]:
    """Run the chat page on its own server (``kwargs`` go to ``Blocks.launch``)."""
    demo = blocks if blocks is not None else build_ui(runtime)
    return demo.launch(**{**ui_options(runtime), **kwargs})

