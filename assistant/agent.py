"""The agent loop: identity → route → arguments → validated tool call → grounded, streamed answer.

``Agent.run`` is a generator of typed events. A turn is stored in one transaction after the
answer is complete: a consumer that stops early (a client gone mid-stream) leaves nothing
half-written.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from assistant import followups, intents, prompts
from assistant.answering import grounded_answer
from assistant.arguments import grounded_arguments, missing_required
from assistant.caller import Caller
from assistant.config import Settings
from assistant.errors import InvalidInput, MentorlyError, PayloadTooLarge, ToolError, ToolTimeout
from assistant.events import (
    Done,
    ErrorEvent,
    Event,
    SourcesEvent,
    StepFinished,
    StepStarted,
    TextDelta,
)
from assistant.grounding.focus import asks_institution
from assistant.identity import asks_identity_switch, claims_identity
from assistant.language import detect_language
from assistant.lead_in import LeadIn
from assistant.llm.base import ChatBackend, Message, ToolCall, Usage
from assistant.messages import say
from assistant.reasons import Reason, render, route_fields, with_reasons
from assistant.registry import ToolRegistry
from assistant.storage import Database
from assistant.tool_calls import ToolCaller
from assistant.tooling import Source, Tool, ToolContext, ToolResult, Upload

log = logging.getLogger(__name__)
KNOWLEDGE = "knowledge"  # the capability searched when no tool is chosen
LEAD_IN_TOKENS = 60  # the answer before a tool's ``display`` block is one sentence
RECOMMEND = "recommend"
FOLLOW_UP_OVERRIDE = 0.8  # a follow-up keeps its tool unless the router is this sure of another
_R = TypeVar("_R")  # what a step generator returns (see ``_collect``)


@dataclass
class Plan:
    """What the turn will do: a tool (with arguments, maybe still to fill) or a direct answer."""

    tool: Tool | None
    arguments: dict[str, Any] | None
    route: dict[str, Any]
    fallback: bool = False  # a knowledge search tried because no tool was chosen
    query: str | None = None  # the question a knowledge answer is grounded on (rewritten
    # with the previous question on a follow-up)


@dataclass
class StepOutcome:
    result: ToolResult | None
    answer_override: str | None = None  # a polite sentence instead of an LLM answer
    usage: Usage = field(default_factory=Usage)
    tool_ms: float = 0.0


@dataclass
class TurnRecord:
    """What one completed turn used: the basis of metering (observers receive it)."""

    tenant: str
    user: str
    conversation_id: str
    tools: list[str]
    tool_ms: float
    prompt_tokens: int
    completion_tokens: int
    compute_ms: float
    image_pixels: int
    message_chars: int


class Agent:
    def __init__(
        self,
        *,
        settings: Settings,
        registry: ToolRegistry,
        db: Database,
        backend: Callable[[], ChatBackend],
        router: Callable[[], Any],
        executor: ThreadPoolExecutor | None = None,
        observers: list[Callable[[TurnRecord], None]] | None = None,
        embedder: Callable[[], Any] | None = None,
        tool_calls: ToolCaller | None = None,
    ) -> None:
        self.observers: list[Callable[[TurnRecord], None]] = list(observers or [])
        self.settings = settings
        self.registry = registry
        self.db = db
        self._backend = backend
        self._router = router
        self._embedder = embedder or (lambda: self._router().embedder)
        # the one tool-call path (the runtime's, reporting to its usage hooks), or a private one
        self.tool_calls = tool_calls or ToolCaller(registry, settings, executor=executor)

    # -- public -------------------------------------------------------------------------

    def run(
        self,
        message: str,
        *,
        files: Sequence[Upload] = (),
        user: str | None = None,
        tenant: str | None = None,
        conversation_id: str | None = None,
        collection: str | None = None,
        fallback_collections: Sequence[str] | None = None,
        course: str = "",
        history: Sequence[Message] | None = None,
        instructions: str = "",
    ) -> Generator[Event, None, None]:
        """One turn. ``history`` (earlier user/assistant messages, oldest first) replaces the
        stored conversation's history: OpenAI-style clients send the whole conversation.
        ``instructions`` (an OpenAI client's ``system`` messages) shape the tone and focus of
        generated text; they never change what is quoted, cited or refused.
        ``fallback_collections`` makes knowledge search course-first (``collection``, then
        these; see ``ToolContext.fallback_collections``). ``course`` (an LTI course's collection)
        tags a new conversation; one of another course is not continued."""
        message = self._check_message(message, files)
        turn_started = time.perf_counter()
        tenant = tenant or self.settings.default_tenant
        db_user = self.db.ensure_user(tenant, user)
        conv = self.db.open_conversation(tenant, db_user, conversation_id, title=message[:80], course=course)
        language = detect_language(message)
        history = self._history(conv.id) if history is None else self._given(history)
        context = ToolContext(tenant=tenant, user=db_user.external_id, files=list(files),
                              settings=self.settings, message=message, language=language,
                              collection=collection,
                              fallback_collections=None if fallback_collections is None
                              else tuple(fallback_collections))
        usage = Usage()
        try:
            plan = self._plan(message, context, history, usage)
            if plan.route.get("follow_up"):
                context.previous_answer = _last_assistant(history)
        except MentorlyError as exc:
            yield ErrorEvent(message=say("llm_failed", language, reason=exc.message),
                             error_type=exc.error_type)
            return
        outcome = StepOutcome(result=None)
        if plan.fallback:
            # Search quietly: show the step only when it found something to ground the answer on.
            step_events: list[Event] = []
            outcome = _collect(self._run_step(plan, message, context, history), step_events)
            if outcome.result is not None and outcome.result.sources:
                yield from step_events
            else:
                plan = Plan(None, None, with_reasons(plan.route, Reason.of("nothing_relevant")))
                outcome = StepOutcome(result=None, usage=outcome.usage)
            _add_into(usage, outcome.usage)
        elif plan.tool is not None:
            outcome = yield from self._run_step(plan, message, context, history)
            _add_into(usage, outcome.usage)
            if (plan.tool.capability == KNOWLEDGE and outcome.result is not None
                    and not outcome.result.sources):
                outcome.answer_override = say("no_passages", language)
        switch = asks_identity_switch(message)
        identity_note = say("identity_fixed", language, user=context.user) if switch else ""
        if identity_note and plan.tool is None and outcome.answer_override is None:
            outcome.answer_override = identity_note  # who the learner is: the system says it
            identity_note = ""
        elif identity_note:
            yield TextDelta(identity_note + "\n\n")
        if plan.tool is None and outcome.answer_override is None and asks_institution(message):
            # a course fact with no document behind it: never from the model's own knowledge
            outcome.answer_override = say("no_passages", language)
        sources = outcome.result.sources if outcome.result else []
        model = ""
        answer_mode = "tool" if plan.tool is not None else "chat"
        grounding: dict[str, Any] | None = None
        grounded = (plan.tool is not None and plan.tool.capability == KNOWLEDGE
                    and outcome.result is not None and bool(sources)
                    and self.settings.agent.answer_mode == "grounded")
        if outcome.answer_override is not None:
            text = outcome.answer_override
            if ((plan.tool is not None and plan.tool.capability == KNOWLEDGE)
                    or (plan.tool is None and not switch)):  # a refused switch is no abstention
                answer_mode = "abstained"
            yield TextDelta(text)
        elif grounded:
            answer = yield from grounded_answer(
                plan.query or message, language, sources, embedder=self._embedder(),
                backend=self._backend(), usage=usage, summary=self.settings.agent.summary)
            text, model, answer_mode = answer.text, answer.model, answer.mode
            grounding = answer.grounding()
        else:
            messages = prompts.answer_messages(language, history, message, plan.tool,
                                               outcome.result, sources, instructions)
            display = outcome.result.display if outcome.result else None
            try:
                if display and identity_note:
                    text = ""  # the system's identity note is the lead-in
                else:
                    text, model = yield from self._generate(messages, usage,
                                                            lead_in=bool(display))
                if display:
                    block = ("\n\n" if text.strip() else "") + display
                    text += block
                    yield TextDelta(block)
            except MentorlyError as exc:
                log.warning("answer generation failed: %s", exc)
                yield ErrorEvent(message=say("llm_failed", language, reason=exc.message),
                                 error_type=exc.error_type)
                return
        if identity_note:
            text = identity_note + "\n\n" + text
        source_dicts = [s.to_dict() for s in sources]
        if source_dicts:
            yield SourcesEvent(source_dicts)
        tools_used = [plan.tool.name] if plan.tool is not None else []
        self._store(conv.id, message, files, plan, outcome, text, source_dicts, usage, answer_mode)
        self._notify(TurnRecord(
            tenant=tenant, user=db_user.external_id, conversation_id=conv.id, tools=tools_used,
            tool_ms=outcome.tool_ms, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            compute_ms=round((time.perf_counter() - turn_started) * 1000, 1),
            image_pixels=sum((f.width or 0) * (f.height or 0) for f in files),
            message_chars=len(message)))
        yield Done(text=text, tools=tools_used, sources=source_dicts, conversation_id=conv.id,
                   route=plan.route, model=model,
                   usage={"prompt_tokens": usage.prompt_tokens,
                          "completion_tokens": usage.completion_tokens},
                   answer_mode=answer_mode, grounding=grounding)

    def _notify(self, record: TurnRecord) -> None:
        for observer in self.observers:
            try:
                observer(record)
            except Exception:  # metering must never break a finished turn
                log.exception("turn observer %r failed", observer)

    def _generate(self, messages: list[Message], usage: Usage,
                  lead_in: bool = False) -> Generator[Event, None, tuple[str, str]]:
        """Stream the answer as ``TextDelta`` events; returns (text, model name). With
        ``lead_in`` the answer is the short sentence before a display block (``LeadIn``)."""
        backend = self._backend()
        text = ""
        lead = LeadIn() if lead_in else None
        cut_short = False
        max_tokens = LEAD_IN_TOKENS if lead_in else self.settings.llm.max_tokens
        for chunk in backend.stream(messages, max_tokens=max_tokens,
                                    temperature=self.settings.llm.temperature):
            # a lead-in keeps reading after it is done, so the usage (metering) stays whole
            piece = lead.feed(chunk.text) if lead is not None and chunk.text else chunk.text
            if lead is not None and piece and claims_identity(piece):
                log.info("lead-in dropped: it claimed an identity (%r)", piece[:80])
                piece = ""  # who the learner is comes from the system, never the model
            if piece:
                text += piece
                yield TextDelta(piece)
            if chunk.final is not None:
                _add_into(usage, chunk.final.usage)
                cut_short = chunk.final.finish_reason == "length"
        if lead is not None and (tail := lead.finish(cut_short)) and not claims_identity(tail):
            text += tail
            yield TextDelta(tail)
        return text, str(getattr(backend, "model", ""))

    # -- steps --------------------------------------------------------------------------

    def _check_message(self, message: str, files: Sequence[Upload]) -> str:
        if not isinstance(message, str):
            raise InvalidInput("the message must be text")
        message = message.strip()
        if not message and not files:
            raise InvalidInput("the message is empty: type a question or attach an image")
        limit = self.settings.agent.max_message_chars
        if len(message) > limit:
            raise PayloadTooLarge(
                f"the message has {len(message):,} characters; the limit is {limit:,}")
        return message

    def _history(self, conversation_id: str) -> list[Message]:
        turns = self.settings.agent.history_turns
        if turns == 0:
            return []
        rows = self.db.history(conversation_id, limit=turns * 3)
        return [{"role": m.role, "content": m.content} for m in rows if m.role in ("user", "assistant")]

    def _given(self, history: Sequence[Message]) -> list[Message]:
        keep = self.settings.agent.history_turns * 2
        turns = [{"role": m["role"], "content": m["content"]} for m in history
                 if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)]
        return turns[-keep:] if keep else []

    def _plan(self, message: str, context: ToolContext, history: list[Message], usage: Usage) -> Plan:
        has_image = context.image is not None
        if len(self.registry) == 0:
            return Plan(None, None, {"tool": None, "confidence": 1.0,
                                     **route_fields([Reason.of("no_tools")])})
        if self.settings.llm.tool_calling == "native":
            native = self._native_plan(message, context, history, usage)
            if native is not None:
                return native
        decision = self._router().route(message, has_image=has_image)
        if not has_image and history:
            follow = self._follow_up(message, context, history, decision)
            if follow is not None:
                return follow
        return self._routed(message, decision)

    def _routed(self, message: str, decision: Any) -> Plan:
        """The router's decision with the two cues it cannot be trusted with alone
        (``assistant.intents``), and the quiet knowledge search when it chose no tool."""
        route = decision.to_dict()
        knowledge = self.registry.by_capability(KNOWLEDGE)
        general = intents.is_general_request(message)
        if decision.tool:
            tool = self.registry.get(decision.tool)
            if general and decision.confidence < self.settings.agent.general_override:
                route = with_reasons(route, Reason.of("router_choice", tool=tool.name,
                                                      confidence=decision.confidence),
                                     Reason.of("general_no_tool"), tool=None)
                return Plan(None, None, route)
            if (tool.capability == RECOMMEND and knowledge is not None
                    and intents.names_course_item(message)):
                route = with_reasons(route, Reason.of("router_tool", tool=tool.name),
                                     Reason.of("course_item"), tool=knowledge.name)
                return Plan(knowledge, None, route)
            return Plan(tool, None, route)
        if general:
            route = with_reasons(route, Reason.of("general_direct"))
            return Plan(None, None, route)
        if knowledge is not None and message:
            route = with_reasons(route, Reason.of("fallback", tool=knowledge.name))
            return Plan(knowledge, None, route, fallback=True)
        return Plan(None, None, route)

    def _follow_up(self, message: str, context: ToolContext, history: list[Message],
                   decision: Any) -> Plan | None:
        """An elliptical message keeps the previous turn's tool (``assistant.followups``)."""
        follow = followups.detect(message, history)
        if follow is None:
            return None
        # the previous turn's tool, as it was chosen then (a general request had none to keep)
        tool = self._routed(follow.previous, self._router().route(follow.previous)).tool
        if tool is None or (decision.tool and decision.tool != tool.name
                            and decision.confidence >= FOLLOW_UP_OVERRIDE):
            return None
        route = {**decision.to_dict(), "tool": tool.name, "follow_up": True,
                 **route_fields([Reason.of("follow_up", tool=tool.name)])}
        if tool.capability == KNOWLEDGE:
            query = followups.rewrite(follow.previous, message)
            return Plan(tool, {"query": query}, route, query=query)
        args: dict[str, Any] = {}
        if tool.extractor is not None:
            texts = (follow.previous, followups.with_new_payload(follow.previous, message), message)
            for text in texts:  # later values win: the new text, then what the message adds
                try:
                    args.update(tool.extractor(text, context) or {})
                except MentorlyError:
                    continue
        return Plan(tool, args or None, route)

    def _native_plan(self, message: str, context: ToolContext, history: list[Message],
                     usage: Usage) -> Plan | None:
        """The LLM picks a tool; the router guards. ``None`` means: fall back to the router."""
        schemas = [t.openai_schema() for t in self.registry]
        text = message + ("\n[an image is attached]" if context.image else "")
        result = self._backend().chat(prompts.native_messages(context.language, history, text),
                                      tools=schemas, max_tokens=self.settings.llm.max_tokens)
        _add_into(usage, result.usage)
        if not result.tool_calls:
            return None
        call: ToolCall = result.tool_calls[0]
        ok, why = self._router().vet(call, message, has_image=context.image is not None)
        if not ok:
            log.info("native tool call rejected: %s", render(why))
            return None
        return Plan(self.registry.get(call.name), dict(call.arguments),
                    {"tool": call.name, "confidence": None,
                     **route_fields([Reason.of("native", why=why)])})

    def _fill_arguments(self, tool: Tool, message: str, context: ToolContext,
                        usage: Usage, history: Sequence[Message] = ()) -> dict[str, Any]:
        if tool.extractor is not None:
            args = tool.extractor(message, context)
            if args:
                return args
        required = tool.parameters.get("required", [])
        if not required:
            return {}
        result = self._backend().chat(prompts.extraction_messages(tool, message),
                                      json_schema=tool.parameters, max_tokens=256, temperature=0.0)
        _add_into(usage, result.usage)
        try:
            args = json.loads(result.content)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"the model's arguments were not JSON: {exc}") from None
        if not isinstance(args, dict):
            raise InvalidInput("the model's arguments were not an object")
        # the model copies schema descriptions and examples into empty slots: keep only what
        # the learner actually wrote
        texts = [message, *(m["content"] for m in history if m.get("role") == "user")]
        args, dropped = grounded_arguments(tool, args, texts)
        if dropped:
            log.info("dropped ungrounded arguments for %s: %s", tool.name, ", ".join(dropped))
        missing = missing_required(tool, args)
        if missing:
            raise InvalidInput(f"the message does not say what to use for {', '.join(missing)}",
                               zh=f"消息里没有说明 {', '.join(missing)} 该用什么")
        return args

    def _run_step(self, plan: Plan, message: str, context: ToolContext,
                  history: list[Message]) -> Generator[Event, None, StepOutcome]:
        """Fill, validate and run the tool. Returns a ``StepOutcome`` (via ``yield from``)."""
        assert plan.tool is not None
        tool, lang = plan.tool, context.language
        step_id = uuid.uuid4().hex[:12]
        usage = Usage()
        started = time.perf_counter()
        try:
            args = plan.arguments if plan.arguments is not None else self._fill_arguments(
                tool, message, context, usage, history)
            if (tool.capability == KNOWLEDGE and self.settings.agent.answer_mode == "grounded"
                    and "k" in tool.parameters.get("properties", {})):
                # sentences are selected from the passages: more of them, more recall
                args = {**args, "k": args.get("k") or self.settings.agent.evidence_passages}
            args = tool.validate(args)
        except ToolError as exc:
            yield StepStarted(step_id, tool.name, {}, reason=plan.route.get("reason", ""),
                              reasons=plan.route.get("reasons", []))
            sentence = say("tool_failed", lang, tool=tool.name, reason=exc.localized(lang))
            yield self._finished(step_id, tool, started, error=exc.message, summary=sentence)
            return StepOutcome(None, sentence, usage)
        except MentorlyError as exc:
            yield StepStarted(step_id, tool.name, {}, reason=plan.route.get("reason", ""),
                              reasons=plan.route.get("reasons", []))
            sentence = say("bad_arguments", lang, tool=tool.name, reason=exc.localized(lang))
            yield self._finished(step_id, tool, started, error=exc.message, summary=sentence)
            return StepOutcome(None, sentence, usage)
        yield StepStarted(step_id, tool.name, _jsonable(args), reason=plan.route.get("reason", ""),
                          reasons=plan.route.get("reasons", []))
        timeout = self.settings.tools.timeout_s
        caller = Caller(tenant=context.tenant, user=context.user, surface="agent")
        try:
            result = self.tool_calls.call(tool, args, caller, context=context, timeout=timeout)
        except ToolTimeout:
            sentence = say("tool_timeout", lang, tool=tool.name, seconds=timeout)
            yield self._finished(step_id, tool, started, error="timeout", summary=sentence)
            return StepOutcome(None, sentence, usage)
        except ToolError as exc:
            sentence = say("tool_failed", lang, tool=tool.name, reason=exc.localized(lang))
            yield self._finished(step_id, tool, started, error=exc.message, summary=sentence)
            return StepOutcome(None, sentence, usage)
        except Exception:
            log.exception("tool %s raised", tool.name)
            sentence = say("tool_crashed", lang, tool=tool.name)
            yield self._finished(step_id, tool, started, error="internal error", summary=sentence)
            return StepOutcome(None, sentence, usage)
        finished = self._finished(step_id, tool, started, result=result)
        yield finished
        return StepOutcome(result, None, usage, tool_ms=finished.duration_ms)

    def _finished(self, step_id: str, tool: Tool, started: float, *, result: ToolResult | None = None,
                  error: str | None = None, summary: str = "") -> StepFinished:
        provenance = {"tool": tool.name, "tool_version": tool.version, "plugin": tool.plugin}
        if result is not None:
            provenance.update(result.provenance())
            summary = prompts.render_result(result)
        return StepFinished(
            step_id=step_id, tool=tool.name, ok=result is not None, summary=summary,
            result=_jsonable(result.data) if result is not None else None,
            provenance=provenance, duration_ms=round((time.perf_counter() - started) * 1000, 1),
            error=error)

    def _store(self, conversation_id: str, message: str, files: Sequence[Upload], plan: Plan,
               outcome: StepOutcome, text: str, sources: list[dict[str, Any]], usage: Usage,
               answer_mode: str) -> None:
        items: list[tuple[str, str, dict[str, Any]]] = [
            ("user", message, {"files": [f.id for f in files]})]
        if plan.tool is not None:
            result = outcome.result
            content = prompts.render_result(result) if result else (outcome.answer_override or "")
            items.append(("tool", content, {"tool": plan.tool.name, "ok": result is not None,
                                            "provenance": result.provenance() if result else {}}))
        items.append(("assistant", text, {
            "route": plan.route, "sources": sources, "answer_mode": answer_mode,
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}}))
        self.db.add_messages(conversation_id, items)


def _last_assistant(history: Sequence[Message]) -> str:
    return next((m["content"] for m in reversed(history) if m.get("role") == "assistant"
                 and isinstance(m.get("content"), str)), "")


def _collect(steps: Generator[Event, None, _R], into: list[Event]) -> _R:
    """Drive a step generator, keeping its events; returns the generator's return value."""
    while True:
        try:
            into.append(next(steps))
        except StopIteration as stop:
            return stop.value


def _add_into(a: Usage, b: Usage) -> None:
    a.prompt_tokens += b.prompt_tokens
    a.completion_tokens += b.completion_tokens


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


__all__ = ["Agent", "Plan", "Source"]
