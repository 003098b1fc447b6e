"""API overhead: ``POST /api/tools/{name}`` on a cheap tool and ``GET /healthz`` over loopback,
at 1, 8 and 32 concurrent clients, against the same tool called in-process in the same run.

The server is the real app (``mentorly_app.web.create_app``, key check, metrics, CORS) under
uvicorn in a child process, as ``mentorly serve`` runs it; the clients are keep-alive HTTP/1.1
connections on asyncio with a minimal hand-written client, so the figures measure the server
rather than a client library. Overhead = API p50 − in-process p50 of the same tool. The server
process's CPU time per request (from /proc) is printed too: on a shared, loaded machine it is
the steadier figure, since latency at 8 or 32 clients is mostly queueing for the CPU.

    python benchmarks/api.py [--quick] [--json] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tqdm import tqdm  # noqa: E402

from assistant import ToolContext, tool  # noqa: E402

CONCURRENCY = (1, 8, 32)
TARGET_OVERHEAD_MS = 5.0
ARGS = {"text": "The quick brown fox jumps over the lazy dog"}


@tool(examples=["count the words"])
def word_count(text: str) -> dict[str, int]:
    """Count words and characters (a tool whose own cost is microseconds)."""
    return {"words": len(text.split()), "chars": len(text)}


# -- the server (child process) ------------------------------------------------------------


def serve(home: str, port: int) -> None:
    import uvicorn

    from assistant.config import load_settings
    from assistant.llm.fake import FakeBackend
    from assistant.runtime import build_runtime
    from mentorly_app.web import create_app

    settings = load_settings(home=Path(home), plugins=[], llm={"backend": "fake"})
    runtime = build_runtime(settings, backend=FakeBackend(), configure=lambda reg: reg.add(word_count))
    app = create_app(runtime, with_ui=False)
    key, _ = app.state.keys.create("bench", "tools")
    print(key, flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length)
        return status, body

    def close(self) -> None:
        self.writer.close()


def build_request(method: str, path: str, key: str | None, body: dict[str, Any] | None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: keep-alive"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux); NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(port: int, raw: bytes, clients: int, total: int, progress: tqdm,
               pid: int) -> dict[str, float]:
    connections = [await Connection.open(port) for _ in range(clients)]
    for conn in connections:  # warm every connection
        status, body = await conn.request(raw)
        if status != 200:
            raise RuntimeError(f"warm-up request failed: {status} {body[:200]!r}")
    latencies: list[float] = []
    remaining = total

    async def worker(conn: Connection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status, body = await conn.request(raw)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"request failed: {status} {body[:200]!r}")
            progress.update(1)

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    for conn in connections:
        conn.close()
    return {**summary(latencies, elapsed), "server_cpu_ms_per_request": round(cpu * 1000 / total, 3)}


def summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"rps": round(len(ordered) / elapsed, 1), "p50_ms": round(q[49] * 1000, 3),
            "p99_ms": round(q[98] * 1000, 3), "n": len(ordered)}


def in_process(n: int) -> dict[str, float]:
    context = ToolContext(tenant="bench", user="bench")
    for _ in range(100):
        word_count.invoke(ARGS, context)
    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        word_count.invoke(ARGS, context)
        latencies.append(time.perf_counter() - t0)
    return summary(latencies, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (about a minute)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--requests", type=int, default=None, help="requests per measurement")
    parser.add_argument("--serve", nargs=2, metavar=("HOME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    total = args.requests or (600 if args.quick else 3000)
    if total < 100:
        parser.error("--requests must be at least 100 (p99 needs them)")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with tempfile.TemporaryDirectory(prefix="mentorly-bench-api-") as home:
        proc = subprocess.Popen([sys.executable, __file__, "--serve", home, str(port)],
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        try:
            key = _wait_ready(proc, port)
            figures = _measure(port, key, total, proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    _report(figures, args.json)


def _wait_ready(proc: subprocess.Popen[str], port: int) -> str:
    assert proc.stdout is not None
    key = proc.stdout.readline().strip()
    if not key.startswith("mk_"):
        raise SystemExit(f"the benchmark server failed to start (exit {proc.poll()})")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            asyncio.run(_probe(port))
            return key
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the benchmark server did not answer within 60 s")


async def _probe(port: int) -> None:
    conn = await Connection.open(port)
    try:
        await conn.request(build_request("GET", "/healthz", None, None))
    finally:
        conn.close()


def _measure(port: int, key: str, total: int, pid: int) -> dict[str, Any]:
    baseline = in_process(max(total, 5000))
    requests = {"tool": build_request("POST", "/api/tools/word_count", key, {"arguments": ARGS}),
                "healthz": build_request("GET", "/healthz", None, None)}
    results: dict[str, Any] = {"in_process": baseline, "requests_per_measurement": total}
    with tqdm(total=total * len(CONCURRENCY) * len(requests), desc="requests", unit="req",
              file=sys.stderr) as progress:
        for clients in CONCURRENCY:  # interleaved, so both see the same background load
            for name, raw in requests.items():
                results[f"{name}_c{clients}"] = asyncio.run(load(port, raw, clients, total, progress, pid))
    for clients in CONCURRENCY:
        api = results[f"tool_c{clients}"]
        api["overhead_p50_ms"] = round(api["p50_ms"] - baseline["p50_ms"], 3)
        api["ratio_p50"] = round(api["p50_ms"] / baseline["p50_ms"], 1)
    results["overhead_p50_ms_at_8"] = results["tool_c8"]["overhead_p50_ms"]
    results["target_overhead_ms"] = TARGET_OVERHEAD_MS
    results["meets_target"] = results["overhead_p50_ms_at_8"] <= TARGET_OVERHEAD_MS
    results["cpu_count"] = os.cpu_count()
    results["load_average"] = round(os.getloadavg()[0], 2)
    return results


def _report(r: dict[str, Any], as_json: bool) -> None:
    b = r["in_process"]
    print(f"baseline: tool in-process  p50 {b['p50_ms'] * 1000:.1f} µs  p99 {b['p99_ms'] * 1000:.1f} µs  "
          f"{b['rps']:,.0f} calls/s")
    print(f"{'operation':<28}{'clients':>8}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>11}"
          f"{'overhead':>11}{'ratio':>8}")
    for name, label in (("tool", "POST /api/tools/word_count"), ("healthz", "GET /healthz")):
        for clients in CONCURRENCY:
            m = r[f"{name}_c{clients}"]
            extra = (f"{m['overhead_p50_ms']:>9.2f}ms{m['ratio_p50']:>7.0f}×" if name == "tool" else "")
            print(f"{label:<28}{clients:>8}{m['rps']:>9,.0f}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}"
                  f"{m['server_cpu_ms_per_request']:>11.3f}{extra}")
    verdict = "meets" if r["meets_target"] else "MISSES"
    print(f"API overhead at 8 clients: {r['overhead_p50_ms_at_8']:.2f} ms p50 ({verdict} the "
          f"≤ {r['target_overhead_ms']:g} ms target) on {r['cpu_count']} CPUs, load average "
          f"{r['load_average']}")
    if as_json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
