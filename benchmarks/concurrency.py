"""A class at once (#15): N learners asking at the same moment, llama.cpp slots vs one at a time.

What a teacher sees when a whole class opens the assistant together: how long each learner waits
for the first word of an answer, and how many answer tokens the one 2-core machine writes per
second for all of them together. Measured on the real service, end to end, twice in the same run:

- ``slots``: ``[llm] parallel = 4`` (``--parallel``): llama.cpp slots with continuous batching,
  the turn gate letting that many turns run and the rest wait in line;
- ``lock`` (the baseline): ``[llm] parallel = 1``, exactly the old one-answer-at-a-time path.

Each configuration is its own ``mentorly serve`` process on loopback with the packaged local
model, the real embedders, router and tools, over a throw-away ``MENTORLY_HOME`` holding the
demo data (``mentorly models prepare``: the CS101 handbook, the catalog and its learners), and
an API key made with ``mentorly keys create``. The assembled model, the sentiment preset and
the router's cache are reused from the prepared default home, so nothing is downloaded
(``HF_HUB_OFFLINE=1``). Answers are bounded to ``--max-tokens`` (``MENTORLY_LLM__MAX_TOKENS``)
and greedy (temperature 0), so both servers write the same answers to the same questions.

At each level (1, 4, 8, 16 learners) every learner, all started together, streams its turns
through ``POST /v1/chat/completions`` with the official ``openai`` client (``user`` = a demo
learner, ``conversation_id`` continuing its own conversation for up to four turns): knowledge
questions about the handbook, text classification, recommendations and free chat, in English
and Chinese, taking turns (``benchmarks/concurrency_questions.py``). The single learner asks one
turn of each kind (at least), so its figures, over the same mix, are the baseline of the others.
Each level asks questions no earlier level asked (a replayed prompt would come from llama.cpp's
prompt cache); both servers get the same questions in the same order, after the same warm-up
turns. Per level:

- TTFT: request sent → first content token (waiting in line included), p50 and p95;
- aggregate output tokens/s: the completion tokens the API reports (``include_usage``) summed
  over the level's wall time;
- turns completed (and per minute), HTTP 429s (a learner retries once after ``Retry-After``),
  turns refused in the stream after waiting in line, errors and 5xx answers;
- the most turns the server ran and held in line at once (its ``/metrics`` gauges, polled) and
  how many answers streamed at the same time on average (client side): 1.0 means serialised.

Ratios: TTFT p95 at 4 learners ÷ a single learner's p95 (and p50), aggregate tokens/s at 4, 8,
16 ÷ a single learner's, and slots ÷ lock at every level. ``--soak`` then keeps 8 learners
asking against the slots server and samples its RSS (``/proc/PID/status``) about every 10 s:
start, end, max, drift. On a 2-core machine shared with other work the figures are noisy;
compare the ratios, which are measured against a baseline from the same run.

    python benchmarks/concurrency.py [--quick] [--json] [--levels 1,4,8,16] [--turns N]
        [--parallel 4] [--threads 1] [--max-tokens 64] [--soak SECONDS] [--turn-queue N]
        [--configs lock,slots] [--kinds knowledge,classify,recommend,chat]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
import openai  # noqa: E402

from benchmarks.concurrency_questions import KINDS, WARM_UP, language_of, question  # noqa: E402

DEMO_LEARNERS = 160  # the demo catalog's simulated learners: learner-001 … learner-160
RETRY_CAP_S = 30.0  # a learner waits at most this long before its one retry after a 429
RETRY_DEFAULT_S = 5.0  # ... when the refusal named no Retry-After (refused inside the stream)
REQUEST_TIMEOUT_S = 600.0
SOAK_LEARNERS = 8


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (``q`` in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


# -- the service: a prepared home, one server process per configuration ---------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(home: Path, model_path: Path) -> dict[str, str]:
    """The parent's environment without any MENTORLY_* setting, plus the benchmark's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTORLY_")}
    env.update({
        "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False", "MENTORLY_HOME": str(home),
        "MENTORLY_LLM__BACKEND": "local", "MENTORLY_LLM__MODEL_PATH": str(model_path),
        "MENTORLY_LOG_LEVEL": "WARNING",
    })
    return env


def mentorly(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run the ``mentorly`` command (``python -m mentorly_app``); its stdout."""
    done = subprocess.run([sys.executable, "-m", "mentorly_app", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"mentorly {' '.join(args)} failed (exit {done.returncode}):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def prepare_home(home: Path) -> tuple[Path, str]:
    """Demo data in ``home`` and a chat key; the packaged model reused from the default home."""
    from assistant.config import load_settings
    from assistant.llm.model_files import prepare_model

    prepared = load_settings()
    model_path = prepare_model(prepared, progress=False)  # assembled once, verified, offline
    # Reuse what `mentorly models prepare` already built in the default home (the sentiment
    # preset, the router's embedding cache): it is reused when its recipe matches, else rebuilt.
    for part in (Path("models") / "text" / "sentiment", Path("cache") / "router"):
        source = prepared.home / part
        if source.is_dir() and not (home / part).exists():
            shutil.copytree(source, home / part)
    env = base_env(home, model_path)
    for line in mentorly(env, "models", "prepare", "--quiet").splitlines():
        log(f"  {line}")
    key = json.loads(mentorly(env, "keys", "create", "--tenant", "default", "--scopes", "chat",
                              "--name", "bench-concurrency", "--json").strip().splitlines()[-1])["key"]
    return model_path, str(key)


class Server:
    """``mentorly serve`` in its own process group, stopped (the whole group) on exit."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mentorly_app", "serve", "--host", "127.0.0.1",
             "--port", str(self.port)],
            env=env, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the {self.name} server exited ({self.proc.returncode}):\n"
                                   f"{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the {self.name} server did not answer within {timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process (VmRSS, Linux) in MiB; None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


# -- learners --------------------------------------------------------------------------------


@dataclass
class Turn:
    kind: str
    language: str
    status: str = "error"  # ok | refused (429 twice / busy) | error | 5xx
    ttft: float | None = None  # from the first attempt, so waiting and retrying count
    total: float | None = None
    first_at: float | None = None  # monotonic times of the first and last content token
    last_at: float | None = None
    completion_tokens: int = 0
    prompt_tokens: int = 0
    http_429: int = 0
    busy_in_stream: int = 0
    retried: bool = False
    error: str = ""
    tools: list[str] = field(default_factory=list)


class Refused(Exception):
    def __init__(self, retry_after: float, http: bool) -> None:
        super().__init__(f"refused (retry after {retry_after:g} s)")
        self.retry_after = retry_after
        self.http = http


async def stream_turn(client: openai.AsyncOpenAI, user: str, text: str, conversation: str | None,
                      turn: Turn, started: float) -> str | None:
    """One attempt; fills ``turn`` and returns the conversation id. Raises Refused on a 429
    or a refusal inside the stream (waited in line too long)."""
    extra = {"conversation_id": conversation} if conversation else None
    try:
        stream = await client.chat.completions.create(
            model="mentorly", messages=[{"role": "user", "content": text}], stream=True,
            stream_options={"include_usage": True}, user=user, extra_body=extra)
    except openai.RateLimitError as exc:
        header = exc.response.headers.get("retry-after")
        raise Refused(float(header) if header else RETRY_DEFAULT_S, http=True) from exc
    conversation_id = conversation
    try:
        async with stream:
            async for chunk in stream:
                now = time.monotonic()
                if chunk.choices and chunk.choices[0].delta.content:
                    if turn.first_at is None:
                        turn.first_at = now
                        turn.ttft = now - started
                    turn.last_at = now
                if chunk.usage is not None:
                    turn.completion_tokens = chunk.usage.completion_tokens
                    turn.prompt_tokens = chunk.usage.prompt_tokens
                extension = (chunk.model_extra or {}).get("mentorly")
                if isinstance(extension, dict):
                    conversation_id = extension.get("conversation_id") or conversation_id
                    turn.tools = [str(s.get("tool")) for s in extension.get("steps") or []]
    except openai.APIStatusError:
        raise
    except openai.APIError as exc:  # an error event inside the stream
        body = exc.body if isinstance(exc.body, dict) else {}
        if body.get("type") == "server_busy":
            raise Refused(RETRY_DEFAULT_S, http=False) from exc
        raise
    turn.total = time.monotonic() - started
    turn.status = "ok"
    return conversation_id


@dataclass(frozen=True)
class Mix:
    """What learners ask: the kinds, in turn, and how many turns one conversation lasts."""

    kinds: tuple[str, ...] = KINDS
    conversation_turns: int = len(KINDS)


async def ask(client: openai.AsyncOpenAI, user: str, g: int, conversation: str | None,
              mix: Mix) -> tuple[Turn, str | None]:
    """Turn ``g``: one attempt, and one retry after a refusal; never raises."""
    kind, language, text = question(g, mix.kinds)
    turn = Turn(kind, language)
    started = time.monotonic()
    for attempt in range(2):
        try:
            return turn, await stream_turn(client, user, text, conversation, turn, started)
        except Refused as exc:
            if exc.http:
                turn.http_429 += 1
            else:
                turn.busy_in_stream += 1
            turn.status, turn.error = "refused", str(exc)
            if attempt == 0:
                turn.retried = True
                turn.first_at = turn.ttft = None
                await asyncio.sleep(min(exc.retry_after, RETRY_CAP_S))
        except openai.APIStatusError as exc:
            turn.status = "5xx" if exc.status_code >= 500 else "error"
            turn.error = f"{exc.status_code}: {str(exc)[:200]}"
            break
        except Exception as exc:  # a learner records its failure and carries on
            turn.status, turn.error = "error", f"{type(exc).__name__}: {str(exc)[:200]}"
            break
    return turn, conversation


def learner_id(index: int) -> str:
    return f"learner-{index % DEMO_LEARNERS + 1:03d}"


async def learner(client: openai.AsyncOpenAI, index: int, first_g: int, turns: int, mix: Mix,
                  done: list[Turn], deadline: float | None = None) -> None:
    """Turns ``first_g`` … ``first_g + turns - 1``, appended to ``done`` as they end, a new
    conversation every ``mix.conversation_turns``. Learner ``index`` starts ``index`` turns into
    its block (and wraps), so learners started together ask different kinds at any moment
    instead of all the same kind in lockstep. With ``deadline``: ``first_g``, ``first_g + 1`` …
    until it passes."""
    conversation: str | None = None
    n = 0
    while (n < turns) if deadline is None else (time.monotonic() < deadline):
        if n % mix.conversation_turns == 0:
            conversation = None
        g = first_g + (n + index) % turns if deadline is None else first_g + n
        turn, conversation = await ask(client, learner_id(index), g, conversation, mix)
        done.append(turn)
        n += 1


def make_client(url: str, key: str) -> openai.AsyncOpenAI:
    # max_retries=0: a 429 is counted here and retried by the learner itself, once
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0,
                              timeout=REQUEST_TIMEOUT_S)


_GAUGE = re.compile(r"^(mentorly_chat_turns_running|mentorly_chat_turns_waiting)\s+([0-9.eE+-]+)$", re.M)


async def watch_gate(url: str, stop: asyncio.Event, seen: dict[str, float]) -> None:
    """Poll ``/metrics`` (loopback) for the most turns running and waiting at once."""
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            try:
                text = (await http.get(f"{url}/metrics")).text
                for name, value in _GAUGE.findall(text):
                    key = "max_running" if name.endswith("running") else "max_waiting"
                    seen[key] = max(seen.get(key, 0.0), float(value))
            except httpx.HTTPError:
                pass
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


def overlap(turns: list[Turn]) -> float | None:
    """Average number of answers streaming at once while any streams (1.0 = one at a time)."""
    spans = sorted((t.first_at, t.last_at) for t in turns
                   if t.first_at is not None and t.last_at is not None and t.last_at > t.first_at)
    if not spans:
        return None
    busy = sum(end - start for start, end in spans)
    union, cur_start, cur_end = 0.0, spans[0][0], spans[0][1]
    for start, end in spans[1:]:
        if start > cur_end:
            union += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    union += cur_end - cur_start
    return round(busy / union, 2) if union > 0 else None


def summarise(turns: list[Turn], wall: float) -> dict[str, Any]:
    ok = [t for t in turns if t.status == "ok"]
    ttft = [t.ttft for t in ok if t.ttft is not None]
    total = [t.total for t in ok if t.total is not None]
    tokens = sum(t.completion_tokens for t in ok)
    tools: dict[str, int] = {}
    for t in ok:
        for name in t.tools or ["(none)"]:
            tools[name] = tools.get(name, 0) + 1
    errors = [t.error for t in turns if t.status in ("error", "5xx")]
    return {
        "turns": len(turns), "completed": len(ok), "wall_s": round(wall, 2),
        "ttft_p50_s": rounded(percentile(ttft, 0.5)), "ttft_p95_s": rounded(percentile(ttft, 0.95)),
        "turn_p50_s": rounded(percentile(total, 0.5)), "turn_p95_s": rounded(percentile(total, 0.95)),
        "completion_tokens": tokens, "prompt_tokens": sum(t.prompt_tokens for t in ok),
        "tokens_per_s": round(tokens / wall, 2) if wall > 0 else None,
        "prompt_tokens_per_s": round(sum(t.prompt_tokens for t in ok) / wall, 1) if wall > 0 else None,
        "turns_per_min": round(len(ok) * 60 / wall, 1) if wall > 0 else None,
        "http_429": sum(t.http_429 for t in turns), "busy_in_stream": sum(t.busy_in_stream for t in turns),
        "retried": sum(t.retried for t in turns), "refused": sum(t.status == "refused" for t in turns),
        "errors": len(errors), "errors_5xx": sum(t.status == "5xx" for t in turns),
        "no_text": sum(t.ttft is None for t in ok), "streams_at_once": overlap(ok),
        "ttft_p50_s_by_kind": {k: rounded(percentile([t.ttft for t in ok if t.kind == k and t.ttft is not None], 0.5))
                               for k in KINDS if any(t.kind == k for t in ok)},
        "zh_turns": sum(t.language == "zh" for t in turns), "tools": tools,
        "error_samples": errors[:3],
    }


async def run_level(url: str, key: str, learners: int, turns: int, mix: Mix, first_g: int) -> dict[str, Any]:
    """``learners`` learners started together, ``turns`` turns each (learner i asks turns
    ``first_g + i * turns`` …); the level's figures."""
    client = make_client(url, key)
    stop, seen = asyncio.Event(), {"max_running": 0.0, "max_waiting": 0.0}
    watcher = asyncio.create_task(watch_gate(url, stop, seen))
    done: list[Turn] = []
    try:
        started = time.monotonic()
        await asyncio.gather(*(learner(client, i, first_g + i * turns, turns, mix, done)
                               for i in range(learners)))
        wall = time.monotonic() - started
    finally:
        stop.set()
        await watcher
        await client.close()
    out = summarise(done, wall)
    out.update(learners=learners, max_running=int(seen["max_running"]), max_waiting=int(seen["max_waiting"]))
    return out


async def warm_up(url: str, key: str) -> None:
    """A few turns of every kind, not measured and not among the measured questions: they load
    the embedders, the indexes and the models that the first turns would otherwise pay for."""
    client = make_client(url, key)
    try:
        for kind, text in WARM_UP:
            turn = Turn(kind, language_of(text))
            try:
                await stream_turn(client, "bench-warm-up", text, None, turn, time.monotonic())
            except Exception as exc:
                log(f"  warm-up turn {kind} failed: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        await client.close()


async def soak(server: Server, key: str, seconds: float, interval: float, mix: Mix) -> dict[str, Any]:
    """SOAK_LEARNERS learners asking without pause for ``seconds`` (turns still running then are
    cut off and not counted); the server's RSS sampled every ``interval`` seconds."""
    client = make_client(server.url, key)
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        t0 = time.monotonic()
        while True:
            value = rss_mib(server.pid)
            if value is not None:
                samples.append((round(time.monotonic() - t0, 1), value))
            try:
                await asyncio.wait_for(stop.wait(), interval)
                break
            except TimeoutError:
                continue
        value = rss_mib(server.pid)
        if value is not None:
            samples.append((round(time.monotonic() - t0, 1), value))

    sampler = asyncio.create_task(sample())
    done: list[Turn] = []
    try:
        started = time.monotonic()
        deadline = started + seconds
        # learner i starts at kind i: the kinds are spread over the learners at every moment
        tasks = [asyncio.create_task(learner(client, i, 100_000 * (i + 1) + i, 0, mix, done, deadline))
                 for i in range(SOAK_LEARNERS)]
        _, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.monotonic() - started
    finally:
        stop.set()
        await sampler
        await client.close()
    out = summarise(done, wall)
    values = [v for _, v in samples]
    warm_at = min(60.0, seconds / 5)
    after_warm = next((v for t, v in samples if t >= warm_at), values[0] if values else None)
    out.update(learners=SOAK_LEARNERS, seconds=seconds, cut_at_end=len(pending), rss_samples_mib=samples,
               rss_start_mib=values[0] if values else None, rss_end_mib=values[-1] if values else None,
               rss_max_mib=max(values) if values else None,
               rss_drift_mib=round(values[-1] - values[0], 1) if values else None,
               rss_warm_at_s=warm_at, rss_drift_after_warm_up_mib=(
                   round(values[-1] - after_warm, 1) if values and after_warm is not None else None))
    return out


# -- orchestration ---------------------------------------------------------------------------


def run_config(name: str, parallel: int, args: argparse.Namespace, home: Path, model_path: Path,
               key: str, servers: list[Server]) -> dict[str, Any]:
    env = base_env(home, model_path)
    env.update({"MENTORLY_LLM__PARALLEL": str(parallel), "MENTORLY_LLM__THREADS": str(args.threads),
                "MENTORLY_LLM__MAX_TOKENS": str(args.max_tokens), "MENTORLY_LLM__TEMPERATURE": "0",
                "MENTORLY_SERVER__MAX_ACTIVE_TURNS": "0", "MENTORLY_API__METRICS": "loopback",
                "MENTORLY_API__RATE_LIMIT_PER_MINUTE": "0"})
    if args.turn_queue is not None:
        env["MENTORLY_SERVER__TURN_QUEUE"] = str(args.turn_queue)
    t0 = time.monotonic()
    server = Server(name, env, home / f"server-{name}.log")
    servers.append(server)
    server.wait_ready()
    asyncio.run(warm_up(server.url, key))
    result: dict[str, Any] = {"parallel": parallel, "threads": args.threads,
                              "start_and_warm_up_s": round(time.monotonic() - t0, 1),
                              "rss_after_warm_up_mib": rss_mib(server.pid), "levels": {}}
    log(f"[{name}] parallel={parallel} threads={args.threads}: ready and warm in "
        f"{result['start_and_warm_up_s']} s, RSS {result['rss_after_warm_up_mib']} MiB")
    # a learner's conversation lasts as many turns at every level, the padded single learner's too
    mix = Mix(args.kinds, conversation_turns=min(args.turns, len(KINDS)))
    next_g = 0  # each level asks questions no earlier level asked (no replayed prompts)
    for level in args.levels:
        turns = max(args.turns, len(mix.kinds)) if level == 1 else args.turns
        r = asyncio.run(run_level(server.url, key, level, turns, mix, next_g))
        next_g += level * turns
        result["levels"][str(level)] = r
        log(f"[{name}] {level:>2} learner(s) × {turns} turn(s): {r['completed']}/{r['turns']} done in "
            f"{r['wall_s']} s, TTFT p50 {r['ttft_p50_s']} p95 {r['ttft_p95_s']} s, "
            f"{r['tokens_per_s']} tok/s, 429 {r['http_429']}, errors {r['errors']}, "
            f"at once: running ≤{r['max_running']} waiting ≤{r['max_waiting']}")
        if r["error_samples"]:
            log(f"[{name}]    e.g. {r['error_samples'][0]}")
        time.sleep(1.0)
    if name == "slots" and args.soak > 0:
        interval = min(10.0, max(2.0, args.soak / 6))
        log(f"[{name}] soak: {SOAK_LEARNERS} learners for {args.soak:g} s, RSS every {interval:g} s")
        result["soak"] = s = asyncio.run(soak(server, key, args.soak, interval, Mix(args.kinds)))
        log(f"[{name}] soak: {s['completed']} turns, {s['tokens_per_s']} tok/s, RSS start "
            f"{s['rss_start_mib']} end {s['rss_end_mib']} max {s['rss_max_mib']} MiB "
            f"(drift {s['rss_drift_mib']}), errors {s['errors']}")
    result["rss_end_mib"] = rss_mib(server.pid)
    server.stop()
    servers.remove(server)
    return result


def ratios(results: dict[str, Any], levels: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, config in results.items():
        lv = config["levels"]
        one = lv.get("1")
        if one is None:
            continue
        for level in levels:
            if level == 1 or str(level) not in lv:
                continue
            r = lv[str(level)]
            out[f"{name}_ttft_p95_{level}_over_1_p95"] = ratio(r["ttft_p95_s"], one["ttft_p95_s"])
            out[f"{name}_ttft_p95_{level}_over_1_p50"] = ratio(r["ttft_p95_s"], one["ttft_p50_s"])
            out[f"{name}_tokens_per_s_{level}_over_1"] = ratio(r["tokens_per_s"], one["tokens_per_s"])
    if "slots" in results and "lock" in results:
        for level in levels:
            s, b = results["slots"]["levels"].get(str(level)), results["lock"]["levels"].get(str(level))
            if s and b:
                out[f"slots_over_lock_tokens_per_s_{level}"] = ratio(s["tokens_per_s"], b["tokens_per_s"])
                out[f"slots_over_lock_ttft_p95_{level}"] = ratio(s["ttft_p95_s"], b["ttft_p95_s"])
                out[f"slots_over_lock_wall_{level}"] = ratio(s["wall_s"], b["wall_s"])
    return out


def report(r: dict[str, Any]) -> None:
    print(f"A class at once: {r['cpu_count']} CPUs, load average {r['load_average_start']} → "
          f"{r['load_average_end']}, max {r['max_tokens']} answer tokens, llama.cpp threads "
          f"{r['threads']}, {r['seconds']:.0f} s in all")
    print(f"{'config':<7}{'learners':>9}{'done':>7}{'wall s':>8}{'TTFT p50':>9}{'p95':>7}"
          f"{'turn p50':>9}{'tok/s':>7}{'turns/min':>10}{'429':>5}{'busy':>5}{'err':>5}{'5xx':>5}{'run≤':>5}"
          f"{'wait≤':>6}{'streams':>8}")
    for name, config in r["configs"].items():
        for level, m in config["levels"].items():
            def f(v: Any, spec: str = ".2f") -> str:
                return "-" if v is None else format(v, spec)
            print(f"{name:<7}{level:>9}{m['completed']:>4}/{m['turns']:<2}{m['wall_s']:>8.1f}"
                  f"{f(m['ttft_p50_s']):>9}{f(m['ttft_p95_s']):>7}{f(m['turn_p50_s']):>9}"
                  f"{f(m['tokens_per_s'], '.1f'):>7}{f(m['turns_per_min'], '.1f'):>10}{m['http_429']:>5}{m['busy_in_stream']:>5}"
                  f"{m['errors']:>5}{m['errors_5xx']:>5}{m['max_running']:>5}{m['max_waiting']:>6}"
                  f"{f(m['streams_at_once']):>8}")
    q = r["ratios"]
    for name in r["configs"]:
        parts = [f"TTFT p95 at {lv} ÷ single p95 {q.get(f'{name}_ttft_p95_{lv}_over_1_p95')} "
                 f"(÷ p50 {q.get(f'{name}_ttft_p95_{lv}_over_1_p50')})" for lv in (4,) if
                 f"{name}_ttft_p95_{lv}_over_1_p95" in q]
        parts += [f"tok/s {lv}÷1 {q[f'{name}_tokens_per_s_{lv}_over_1']}" for lv in r["levels"]
                  if f"{name}_tokens_per_s_{lv}_over_1" in q]
        if parts:
            print(f"{name}: " + "; ".join(parts))
    vs = [f"{lv}: tok/s ×{q[f'slots_over_lock_tokens_per_s_{lv}']}, TTFT p95 "
          f"×{q[f'slots_over_lock_ttft_p95_{lv}']}" for lv in r["levels"]
          if f"slots_over_lock_tokens_per_s_{lv}" in q]
    if vs:
        print("slots ÷ lock (same run) at " + "; ".join(vs))
    soak_r = r["configs"].get("slots", {}).get("soak")
    if soak_r:
        samples = " ".join(f"{t:g}s:{v:g}" for t, v in soak_r["rss_samples_mib"])
        print(f"soak {soak_r['seconds']:g} s, {soak_r['learners']} learners: {soak_r['completed']} turns, "
              f"{soak_r['tokens_per_s']} tok/s, TTFT p95 {soak_r['ttft_p95_s']} s, 429 "
              f"{soak_r['http_429']}, errors {soak_r['errors']} (5xx {soak_r['errors_5xx']}); server RSS "
              f"MiB start {soak_r['rss_start_mib']} end {soak_r['rss_end_mib']} max "
              f"{soak_r['rss_max_mib']} drift {soak_r['rss_drift_mib']} (after {soak_r['rss_warm_at_s']:g} s "
              f"warm-up: {soak_r['rss_drift_after_warm_up_mib']}); samples {samples}")


def parse_levels(text: str) -> list[int]:
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"levels must be comma-separated integers: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("levels must be positive integers")
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="levels 1 and 4, one turn per learner, a 30 s soak (about 3 minutes)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object with every figure")
    parser.add_argument("--levels", type=parse_levels, default=None,
                        help="learners at once, comma-separated (default 1,4,8,16; --quick 1,4)")
    parser.add_argument("--turns", type=int, default=None,
                        help="turns per learner (default 4, --quick 1; a single learner asks at least 4)")
    parser.add_argument("--parallel", type=int, default=4, help="llama.cpp slots of the 'slots' server")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (MENTORLY_LLM__THREADS)")
    parser.add_argument("--max-tokens", type=int, default=64,
                        help="answer length bound (MENTORLY_LLM__MAX_TOKENS), both servers")
    parser.add_argument("--soak", type=float, default=None,
                        help="seconds of 8 learners against the slots server, RSS sampled "
                             "(default 600, --quick 30; 0 = none)")
    parser.add_argument("--turn-queue", type=int, default=None,
                        help="MENTORLY_SERVER__TURN_QUEUE for both servers (default: the server's, 32)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"what learners ask, in turn (default {','.join(KINDS)}; e.g. chat alone "
                             "to look at the model's batching without tools)")
    parser.add_argument("--configs", default="lock,slots",
                        help="which servers, in order: lock (parallel 1), slots (--parallel)")
    args = parser.parse_args()
    args.levels = args.levels or ([1, 4] if args.quick else [1, 4, 8, 16])
    args.turns = args.turns or (1 if args.quick else 4)
    args.soak = (30.0 if args.quick else 600.0) if args.soak is None else args.soak
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if not configs or set(configs) - {"lock", "slots"}:
        parser.error("--configs takes lock and/or slots")
    args.kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not args.kinds or set(args.kinds) - set(KINDS):
        parser.error(f"--kinds takes some of {', '.join(KINDS)}")
    if args.turns < 1 or args.parallel < 1 or args.threads < 1 or args.max_tokens < 1:
        parser.error("--turns, --parallel, --threads and --max-tokens must be at least 1")

    servers: list[Server] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally below

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    load_start = round(os.getloadavg()[0], 2)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mentorly-bench-concurrency-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        try:
            t0 = time.monotonic()
            log(f"preparing a throw-away home {home} (demo data, API key)…")
            model_path, key = prepare_home(home)
            setup_s = round(time.monotonic() - t0, 1)
            log(f"home ready in {setup_s} s")
            for name in configs:
                results[name] = run_config(name, args.parallel if name == "slots" else 1, args, home,
                                           model_path, key, servers)
        except Exception:  # not on Ctrl-C or SIGTERM: the servers are stopped all the same
            for server in servers:
                tail = server.log_tail()
                if tail.strip():
                    log(f"--- {server.name} server log (tail) ---\n{tail}")
            raise
        finally:
            for server in servers:
                server.stop()
    figures = {
        "configs": results, "ratios": ratios(results, args.levels), "levels": args.levels,
        "turns_per_learner": args.turns, "threads": args.threads, "parallel": args.parallel,
        "max_tokens": args.max_tokens, "temperature": 0, "kinds": list(args.kinds), "soak_s": args.soak, "turn_queue": args.turn_queue,
        "setup_s": setup_s, "seconds": round(time.monotonic() - started, 1),
        "cpu_count": os.cpu_count(), "load_average_start": load_start,
        "load_average_end": round(os.getloadavg()[0], 2), "surface": "/v1/chat/completions (openai client)",
    }
    report(figures)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
