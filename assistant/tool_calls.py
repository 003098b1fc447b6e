"""One tool-call path for every surface: the agent, the HTTP API, MCP, the CLI and LangChain.

``ToolCaller.call`` (sync, a worker thread with a timeout) and ``ToolCaller.acall`` (async)
do the same steps in the same order:

1. resolve the tool (``NotFound``) and validate the arguments (``InvalidInput``), before any
   upload lookup or thread hop;
2. build the ``ToolContext`` from the typed ``Caller`` and the runtime's ``Settings``;
3. ask the usage hooks to admit the call (quotas: a ``MentorlyError`` refuses it);
4. run the tool under ``settings.tools.timeout_s`` (``ToolTimeout`` past it), in the caller's
   context variables (the request id reaches the tool's log lines);
5. report the call to the usage hooks (metering), whether it succeeded or not.

A tool's own ``MentorlyError`` passes through unchanged; anything else a tool raises also
propagates as is, for each surface to report in its own way (a sentence in a turn, a 500 with
the HTTP error shape, an MCP error result).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from assistant.caller import Caller, Surface
from assistant.config import Settings
from assistant.errors import ToolTimeout
from assistant.language import detect_language
from assistant.registry import ToolRegistry
from assistant.tooling import Tool, ToolContext, ToolResult, Upload
from assistant.usage_hooks import ToolCallRecord, UsageHooks

log = logging.getLogger(__name__)

Files = Sequence[Upload] | Callable[[], Sequence[Upload]]
"""The call's files, or a function that looks them up: called only once the arguments are
valid, so a bad call is refused before any upload lookup."""

__all__ = ["Caller", "Files", "PreparedCall", "Surface", "ThreadRunner", "ToolCaller"]


@dataclass(frozen=True)
class PreparedCall:
    """A call that passed steps 1 and 2: the tool, its validated arguments, its context."""

    caller: Caller
    tool: Tool
    arguments: dict[str, Any]
    context: ToolContext


class AsyncRunner(Protocol):
    async def run(self, tool: Tool, arguments: dict[str, Any], context: ToolContext,
                  timeout: float) -> ToolResult: ...


class ThreadRunner:
    """Every call in a worker thread, abandoned (not killed) when the timeout passes."""

    async def run(self, tool: Tool, arguments: dict[str, Any], context: ToolContext,
                  timeout: float) -> ToolResult:
        with anyio.fail_after(timeout):
            return await anyio.to_thread.run_sync(tool.invoke, arguments, context,
                                                  abandon_on_cancel=True)


THREADS = ThreadRunner()


def _message_of(arguments: dict[str, Any]) -> str:
    """The text a direct call carries (its string arguments): what the tool's language is
    detected from, as a turn's message would be."""
    return " ".join(v for v in arguments.values() if isinstance(v, str))


class ToolCaller:
    def __init__(self, registry: ToolRegistry, settings: Settings, hooks: UsageHooks | None = None,
                 executor: ThreadPoolExecutor | None = None) -> None:
        self.registry = registry
        self.settings = settings
        self.hooks = hooks if hooks is not None else UsageHooks()
        self._executor = executor

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The worker threads of sync calls (every chat turn's tools): one per turn that may run
        at once (``Settings.active_turns``, at least 4) plus 4 for calls abandoned after their
        timeout, so that a fixed pool never makes concurrent turns' tools wait for each other."""
        if self._executor is None:
            turns = int(getattr(self.settings, "active_turns", 4) or 4)
            self._executor = ThreadPoolExecutor(max_workers=max(turns, 4) + 4,
                                                thread_name_prefix="tool")
        return self._executor

    # -- the steps --------------------------------------------------------------------

    def prepare(self, tool: Tool | str, arguments: dict[str, Any], caller: Caller, *,
                files: Files = (), context: ToolContext | None = None,
                collection: str | None = None) -> PreparedCall:
        """Steps 1 and 2. ``context`` is the one a turn planned with (the agent passes it, so
        the tool sees what the extractor saw); otherwise one is built for ``caller``."""
        found = tool if isinstance(tool, Tool) else self.registry.get(tool)
        args = found.validate(arguments)
        if context is None:
            text = _message_of(args)
            context = ToolContext(tenant=caller.tenant, user=caller.user,
                                  files=list(files() if callable(files) else files),
                                  settings=self.settings, message=text,
                                  language=detect_language(text), collection=collection)
        return PreparedCall(caller, found, args, context)

    def _record(self, call: PreparedCall, ok: bool, started: float) -> ToolCallRecord:
        pixels = sum((f.width or 0) * (f.height or 0) for f in call.context.files)
        return ToolCallRecord(caller=call.caller, tool=call.tool.name, ok=ok,
                              elapsed_ms=(time.perf_counter() - started) * 1000, image_pixels=pixels)

    def _timed_out(self, tool: Tool, timeout: float) -> ToolTimeout:
        log.error("tool %s timed out after %.1f s", tool.name, timeout)
        return ToolTimeout(f"{tool.name} did not finish within {timeout:g} s")

    # -- sync -------------------------------------------------------------------------

    def call(self, tool: Tool | str, arguments: dict[str, Any], caller: Caller, *,
             files: Files = (), context: ToolContext | None = None, collection: str | None = None,
             timeout: float | None = None) -> ToolResult:
        """Run one tool for ``caller`` in a worker thread; ``ToolTimeout`` after ``timeout``
        (default ``settings.tools.timeout_s``)."""
        return self.run(self.prepare(tool, arguments, caller, files=files, context=context,
                                     collection=collection), timeout=timeout)

    def run(self, call: PreparedCall, *, timeout: float | None = None) -> ToolResult:
        """Steps 3 to 5 of a prepared call."""
        self.hooks.admit(call.caller, call.tool)
        timeout = self.settings.tools.timeout_s if timeout is None else timeout
        started, ok = time.perf_counter(), False
        try:
            # In the caller's context (a copy): the request id of ``assistant.logs`` and any other
            # context variable reach the tool's log lines, as ``anyio.to_thread`` does for ``arun``.
            variables = contextvars.copy_context()
            future = self.executor.submit(variables.run, call.tool.invoke, call.arguments, call.context)
            try:
                result = future.result(timeout=timeout)
            except FutureTimeout:
                future.cancel()
                raise self._timed_out(call.tool, timeout) from None
            ok = True
            return result
        finally:
            if self.hooks:
                self.hooks.tool_called(self._record(call, ok, started))

    # -- async ------------------------------------------------------------------------

    async def acall(self, tool: Tool | str, arguments: dict[str, Any], caller: Caller, *,
                    files: Files = (), collection: str | None = None,
                    runner: AsyncRunner | None = None, timeout: float | None = None) -> ToolResult:
        """``call`` for async surfaces."""
        return await self.arun(self.prepare(tool, arguments, caller, files=files,
                                            collection=collection), runner=runner, timeout=timeout)

    async def arun(self, call: PreparedCall, *, runner: AsyncRunner | None = None,
                   timeout: float | None = None) -> ToolResult:
        """Steps 3 to 5 of a prepared call, async. ``runner`` decides where the tool runs (the
        HTTP API's runs trivial tools inline); by default, a worker thread."""
        if self.hooks:
            if self.hooks.blocking_admit:
                await anyio.to_thread.run_sync(self.hooks.admit, call.caller, call.tool)
            else:
                self.hooks.admit(call.caller, call.tool)
        timeout = self.settings.tools.timeout_s if timeout is None else timeout
        started, ok = time.perf_counter(), False
        try:
            result = await (runner or THREADS).run(call.tool, call.arguments, call.context, timeout)
            ok = True
            return result
        except TimeoutError:
            raise self._timed_out(call.tool, timeout) from None
        finally:
            if self.hooks:
                record = self._record(call, ok, started)
                with anyio.CancelScope(shield=True):  # a call that ran is metered even if cancelled
                    await anyio.to_thread.run_sync(self.hooks.tool_called, record)
