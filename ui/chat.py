"""The chat function behind the UI: save uploads, run one agent turn, stream the events as
Gradio chat messages (tool calls as collapsible steps, the answer, its sources).

Nothing about a learner's conversation is kept in this process: which conversation the next
message continues travels with the page (``PageState``, in a hidden component sent with each
message and returned with each answer) and is checked against the database, so the next
message may reach any replica (several ``mentorly serve`` on one database).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gradio as gr

from assistant.admission import ServerBusy, Ticket, TurnGate, place_message
from assistant.errors import InvalidInput, MentorlyError, NotFound
from assistant.events import (
    Done,
    ErrorEvent,
    Event,
    SourcesEvent,
    StepFinished,
    StepStarted,
    TextDelta,
)
from assistant.reasons import Reason, render
from assistant.tooling import Upload
from ui.i18n import normalize_lang, t

log = logging.getLogger(__name__)

MAX_ARGUMENT_CHARS = 300
MAX_SOURCE_SNIPPET_CHARS = 240


class AgentLike(Protocol):
    def run(self, message: str, *, files: Sequence[Upload] = (), user: str | None = None,
            tenant: str | None = None, conversation_id: str | None = None) -> Iterator[Event]: ...


class UploadsLike(Protocol):
    def save_path(self, path: Path, tenant: str) -> Upload: ...


class RuntimeLike(Protocol):
    """What the UI needs from ``assistant.runtime.Runtime``."""

    settings: Any
    agent: AgentLike
    uploads: UploadsLike


def turn_gate(runtime: RuntimeLike) -> TurnGate | None:
    """The runtime's turn gate (``assistant.admission``); None for a runtime without one."""
    gate = getattr(runtime, "turn_gate", None)
    return gate if isinstance(gate, TurnGate) else None


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryItem:
    role: str
    text: str = ""
    files: tuple[str, ...] = ()
    is_step: bool = False


def normalize_history(history: Iterable[Any] | None) -> list[HistoryItem]:
    """One shape for both kinds of history Gradio hands the chat function.

    From the browser: ``{"role", "content": [{"type": "text", "text"}, {"type": "file",
    "file": {"path"}}], "metadata"}``. From API clients: ``content`` is a raw string, a
    ``{"path": ...}`` dict, or a list of those. ``gr.ChatMessage`` objects are accepted too.
    """
    items: list[HistoryItem] = []
    for message in history or []:
        if isinstance(message, gr.ChatMessage):
            role, content, metadata = message.role, message.content, message.metadata
        elif isinstance(message, dict):
            role = str(message.get("role", "user"))
            content = message.get("content")
            metadata = message.get("metadata") or {}
        else:
            continue
        texts: list[str] = []
        files: list[str] = []
        parts = content if isinstance(content, list | tuple) else [content]
        for part in parts:
            _collect_part(part, texts, files)
        is_step = bool(isinstance(metadata, dict) and metadata.get("title"))
        items.append(HistoryItem(role=role, text="\n".join(texts), files=tuple(files),
                                 is_step=is_step))
    return items


def _collect_part(part: Any, texts: list[str], files: list[str]) -> None:
    if part is None:
        return
    if isinstance(part, str):
        texts.append(part)
    elif isinstance(part, dict):
        if part.get("type") == "text" or ("text" in part and "path" not in part):
            texts.append(str(part.get("text", "")))
        elif isinstance(part.get("file"), dict):
            if part["file"].get("path"):
                files.append(str(part["file"]["path"]))
        elif part.get("path"):
            files.append(str(part["path"]))
    elif isinstance(part, gr.components.Component):
        return  # a rendered component carries no text for the agent
    else:
        texts.append(str(part))


def is_new_conversation(history: Iterable[Any] | None) -> bool:
    return not any(item.role == "user" for item in normalize_history(history))


def message_parts(message: Any) -> tuple[str, list[str]]:
    """``(text, file paths)`` from a multimodal value, a plain string, or ``None``."""
    if message is None:
        return "", []
    if isinstance(message, str):
        return message, []
    if isinstance(message, dict):
        text = str(message.get("text") or "")
        files: list[str] = []
        for f in message.get("files") or []:
            if isinstance(f, str):
                files.append(f)
            elif isinstance(f, dict) and f.get("path"):
                files.append(str(f["path"]))
            elif hasattr(f, "path"):
                files.append(str(f.path))
        return text, files
    raise InvalidInput(f"unsupported chat message of type {type(message).__name__}")


# --- rendering ------------------------------------------------------------------------------


def format_provenance(provenance: dict[str, Any] | None, lang: str) -> str:
    """``Model: `efficientnet-lite0` · version 1.0 · confidence 93.1% · tool version 0.1.0``,
    leaving out the parts the tool did not report."""
    if not provenance:
        return ""
    parts: list[str] = []
    if provenance.get("model"):
        parts.append(f"{t('provenance_model', lang)} `{provenance['model']}`")
    if provenance.get("model_version"):
        parts.append(f"{t('provenance_version', lang)} {provenance['model_version']}")
    confidence = provenance.get("confidence")
    if isinstance(confidence, int | float) and not isinstance(confidence, bool):
        shown = f"{confidence:.1%}" if 0.0 <= confidence <= 1.0 else f"{confidence:.3g}"
        parts.append(f"{t('provenance_confidence', lang)} {shown}")
    if provenance.get("tool_version"):
        parts.append(t("provenance_tool", lang, version=provenance["tool_version"]))
    return " · ".join(parts)


def _format_arguments(arguments: dict[str, Any]) -> str:
    try:
        text = json.dumps(arguments, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(arguments)
    if len(text) > MAX_ARGUMENT_CHARS:
        text = text[: MAX_ARGUMENT_CHARS - 1] + "…"
    text = text.replace("`", "'")
    return f"`{text}`"


GROUNDED_MODES = ("generated", "quoted", "abstained")  # how a knowledge answer was made


def format_sources(sources: Sequence[dict[str, Any]], lang: str) -> str:
    lines: list[str] = []
    for n, source in enumerate(sources, start=1):
        title = str(source.get("title") or source.get("uri") or f"#{n}")
        uri = source.get("uri")
        head = f"[{title}]({uri})" if isinstance(uri, str) and uri.startswith(
            ("http://", "https://")) else f"**{title}**"
        score = source.get("score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            head += f" — {t('source_score', lang, score=f'{score:.2f}')}"
        lines.append(f"{n}. {head}")
        snippet = " ".join(str(source.get("text") or "").split())
        if snippet:
            if len(snippet) > MAX_SOURCE_SNIPPET_CHARS:
                snippet = snippet[: MAX_SOURCE_SNIPPET_CHARS - 1] + "…"
            lines.append(f"   > {snippet}")
    return "\n".join(lines)


@dataclass
class _Step:
    step_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    finished: StepFinished | None = None

    def message(self, lang: str) -> gr.ChatMessage:
        lines: list[str] = []
        if self.reason or self.reasons:
            lines.append(f"**{t('step_reason', lang)}** {self._reason(lang)}")
        if self.arguments:
            lines.append(f"**{t('step_arguments', lang)}** {_format_arguments(self.arguments)}")
        metadata: dict[str, Any] = {"id": self.step_id}
        done = self.finished
        if done is None:
            metadata.update(title=t("step_running", lang, tool=self.tool), status="pending")
        else:
            key = "step_done" if done.ok else "step_failed"
            metadata.update(title=t(key, lang, tool=self.tool), status="done",
                            duration=round(done.duration_ms / 1000.0, 2))
            if done.ok and done.summary:
                lines.append(f"**{t('step_result', lang)}** {done.summary}")
            if not done.ok:
                lines.append(f"**{t('step_error', lang)}** {done.error or done.summary}")
            provenance = format_provenance(done.provenance, lang)
            if provenance:
                lines.append(provenance)
        return gr.ChatMessage(role="assistant", content="\n\n".join(lines) or self.tool,
                              metadata=metadata)  # type: ignore[arg-type]

    def _reason(self, lang: str) -> str:
        """Rendered from the codes in the page's language; a step without codes (a plugin's
        own wording, an older server) shows its text as written."""
        if not self.reasons:
            return self.reason
        return render([Reason.from_dict(r) for r in self.reasons], lang)


@dataclass
class TurnView:
    """The assistant's side of one turn, rebuilt from events; ``messages()`` is what to yield."""

    lang: str
    steps: dict[str, _Step] = field(default_factory=dict)
    text: str = ""
    notice: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    done: Done | None = None

    def apply(self, event: Event) -> None:
        if isinstance(event, StepStarted):
            self.steps[event.step_id] = _Step(event.step_id, event.tool, dict(event.arguments),
                                              event.reason, list(event.reasons))
        elif isinstance(event, StepFinished):
            step = self.steps.get(event.step_id)
            if step is None:  # finished without a start: show it anyway
                step = self.steps[event.step_id] = _Step(event.step_id, event.tool, {}, "")
            step.finished = event
        elif isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, SourcesEvent):
            self.sources = list(event.sources)
        elif isinstance(event, Done):
            self.done = event
            if event.text:
                self.text = event.text
            if event.sources:
                self.sources = list(event.sources)
        elif isinstance(event, ErrorEvent):
            self.notice = t("error_prefix", self.lang, message=event.message)

    def messages(self) -> list[gr.ChatMessage]:
        out = [step.message(self.lang) for step in self.steps.values()]
        mode = self.done.answer_mode if self.done is not None else ""
        badge = t(f"mode_{mode}", self.lang) if mode in GROUNDED_MODES else ""
        body = "\n\n".join(p for p in (self.text.strip(), badge, self.notice) if p)
        if not body and self.done is not None:
            body = t("no_answer", self.lang)
        if body:
            out.append(gr.ChatMessage(role="assistant", content=body))
        if self.sources:
            out.append(gr.ChatMessage(
                role="assistant", content=format_sources(self.sources, self.lang),
                metadata={"title": t("sources_title", self.lang,
                                            count=len(self.sources)), "status": "done"}))
        return out


# --- the chat function ----------------------------------------------------------------------


_VISITOR = re.compile(r"^[0-9a-f]{32}$")
_CONVERSATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PAGE_USER_PREFIX = "page:"


@dataclass(frozen=True)
class PageState:
    """What the chat page keeps between turns, as an opaque string in a hidden component that
    it sends with each message and gets back with each answer (the ``page_state`` of the
    ``/chat`` API), never in the server's memory: the next message may reach another replica.

    ``visitor`` is a random id made here on a page's first turn. An anonymous learner (no
    Gradio login) is the user ``page:<visitor>``, so a conversation belongs to one page, and an
    id copied from another page (another learner's) is not theirs: the database check
    (``owned_conversation``) starts a new conversation instead of continuing it. With a login
    the user is the login name and the visitor only travels along. ``conversation_id`` is the
    conversation the next message continues."""

    visitor: str
    conversation_id: str | None = None

    @classmethod
    def new(cls) -> PageState:
        return cls(secrets.token_hex(16))

    @classmethod
    def decode(cls, value: Any) -> PageState:
        """The state a page sent; anything malformed is a new visitor without a conversation."""
        text = value.strip() if isinstance(value, str) else ""
        visitor, _, conversation = text.partition(".")
        if not _VISITOR.match(visitor):
            return cls.new()
        return cls(visitor, conversation if _CONVERSATION.match(conversation) else None)

    def encode(self) -> str:
        return f"{self.visitor}.{self.conversation_id or ''}"

    def with_conversation(self, conversation_id: str | None) -> PageState:
        return PageState(self.visitor, conversation_id)


def page_user(state: PageState, request: gr.Request | None) -> str:
    """The learner: the Gradio login when there is one, else the page's visitor."""
    username = getattr(request, "username", None)
    return str(username) if username else PAGE_USER_PREFIX + state.visitor


def owned_conversation(runtime: RuntimeLike, tenant: str, user: str,
                       conversation_id: str | None) -> str | None:
    """``conversation_id`` when it is ``user``'s conversation in ``tenant``, else None (a new
    conversation): an id from another page or learner, another tenant's, a deleted or a made-up
    one is never continued, so no page reads another learner's history. A runtime without a
    database leaves the check to the agent (``Database.open_conversation`` refuses it)."""
    db = getattr(runtime, "db", None)
    if conversation_id is None or db is None:
        return conversation_id
    try:
        conversation = db.get_conversation(tenant, conversation_id)
    except NotFound:
        conversation = None
    if conversation is not None and conversation.user_id == db.ensure_user(tenant, user).id:
        return conversation_id
    log.warning("a chat page sent a conversation id that is not its learner's (tenant %r): "
                "starting a new conversation", tenant)
    return None


PageOutput = tuple[list[gr.ChatMessage], str]
"""What the chat function yields: the assistant's side of the turn so far, and the page state
(``PageState.encode``) to send with the next message."""
ChatFn = Callable[..., Iterator[PageOutput]]


def make_chat_fn(runtime: RuntimeLike, *, tenant: str | None = None) -> ChatFn:
    """The generator behind the page and the ``/chat`` API:
    ``chat(message, history, language, page_state, request)``.

    Each ``yield`` is ``(messages, page_state)``: the whole assistant side of the turn so far
    (the page replaces the previous output) and the state to send with the next message.
    ``history`` is the page's chat so far (an empty one, after "clear", starts a new
    conversation); None (API clients, which keep no history) continues the conversation of
    ``page_state``. Bad uploads and agent errors become messages, never exceptions.
    """
    default_tenant = str(tenant or getattr(runtime.settings, "default_tenant", None) or "default")

    def chat(message: dict[str, Any] | str | None, history: list[Any] | None = None,
             language: str = "en", page_state: str | None = "",
             request: gr.Request | None = None) -> Iterator[PageOutput]:
        lang = normalize_lang(language)
        state = PageState.decode(page_state)
        try:
            text, paths = message_parts(message)
        except InvalidInput as exc:
            yield [gr.ChatMessage(role="assistant", content=t("error_prefix", lang,
                                                               message=exc.message))], \
                state.encode()
            return
        if not text.strip() and not paths:
            yield [gr.ChatMessage(role="assistant", content=t("empty_message", lang))], \
                state.encode()
            return

        uploads: list[Upload] = []
        for raw in paths:
            path = Path(raw)
            try:
                uploads.append(runtime.uploads.save_path(path, default_tenant))
            except InvalidInput as exc:
                yield [gr.ChatMessage(role="assistant", content=t(
                    "upload_rejected", lang, name=path.name, reason=_sentence(exc.message)))], \
                    state.encode()
                return

        user = page_user(state, request)
        continued = None if history is not None and is_new_conversation(history) \
            else state.conversation_id
        state = state.with_conversation(
            owned_conversation(runtime, default_tenant, user, continued))

        gate = turn_gate(runtime)
        ticket: Ticket | None = None
        try:
            if gate is not None:
                ticket = gate.admit()
                for position in ticket.waiting_positions(1.0):
                    yield [gr.ChatMessage(role="assistant", content=place_message(
                        position, ticket.retry_after_s, lang))], state.encode()
        except ServerBusy as exc:
            yield [gr.ChatMessage(role="assistant", content=exc.localized(lang))], state.encode()
            return
        except BaseException:  # the page stopped reading while the turn waited in line
            if ticket is not None:
                ticket.release()
            raise
        try:
            yield from _turn(runtime, text, uploads, user, default_tenant, state, lang)
        finally:
            if ticket is not None:
                ticket.release()

    return chat


def _turn(runtime: RuntimeLike, text: str, uploads: list[Upload], user: str, tenant: str,
          state: PageState, lang: str) -> Iterator[PageOutput]:
    """One admitted turn, streamed as the page's messages (errors become a notice)."""
    view = TurnView(lang)
    try:
        for event in runtime.agent.run(text, files=uploads, user=user, tenant=tenant,
                                       conversation_id=state.conversation_id):
            view.apply(event)
            if isinstance(event, Done) and event.conversation_id:
                state = state.with_conversation(event.conversation_id)
            yield view.messages(), state.encode()
    except MentorlyError as exc:
        view.notice = t("error_prefix", lang, message=exc.message)
        yield view.messages(), state.encode()
        return
    except Exception:  # a bug must not kill the page; it is logged with its trace
        log.exception("chat turn failed")
        view.notice = t("error_generic", lang)
        yield view.messages(), state.encode()
        return
    if view.done is None and not view.text and not view.notice:
        view.notice = t("error_generic", lang)
        yield view.messages(), state.encode()


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", "。", "！", "？")) else text + "."
