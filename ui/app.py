"""The Gradio chat app: ``build_ui(runtime)`` for the composition root, ``mount_ui`` to serve it
inside the FastAPI app, ``launch_ui`` to run it alone (``python -m mentorly_app.chat_page``).

Gradio takes ``run_history``, CSS and the upload size limit at launch/mount time, not when
the Blocks are built; ``ui_options`` holds them so both ways of serving agree.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from fastapi import FastAPI

from ui.chat import ConversationIds, RuntimeLike, make_chat_fn, turn_gate
from ui.i18n import (
    LANGUAGE_CHOICES,
    Lang,
    examples,
    lang_from_accept_language,
    normalize_lang,
    t,
)

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
    chat_fn = make_chat_fn(runtime, tenant=tenant, conversations=ConversationIds())
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
        )
        textbox = gr.MultimodalTextbox(
            placeholder=t("textbox_placeholder", lang), file_types=["image"],
            file_count="multiple", sources=["upload"], elem_id="mentorly-input",
        )
        gr.ChatInterface(
            chat_fn,
            multimodal=True,
            chatbot=chatbot,
            textbox=textbox,
            additional_inputs=[language_radio],
            examples=[[e] for e in examples(lang)],
            api_name="chat",
            api_description="Send one message (text and optional image files); streams the "
                            "assistant's messages: tool steps, the answer, its sources.",
            analytics_enabled=False,
            save_history=False,
            fill_height=True,
            concurrency_limit=_concurrency(runtime),
        )
        language_radio.change(_relabel, language_radio,
                              [header, language_radio, chatbot, textbox],
                              api_visibility="private", queue=False)
        if language is None:
            demo.load(_browser_language, None, language_radio, api_visibility="private",
                      queue=False)
    return demo


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

