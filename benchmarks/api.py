"""API overhead: ``POST /api/tools/{name}`` on a cheap tool and ``GET /healthz`` over loopback,
at 1, 8 and 32 concurrent clients, against the same tool called in-process in the same run.

The server is the real app (``mentorly_app.web.create_app``, key check, metrics, CORS) under
uvicorn in a child process, as ``mentorly serve`` runs it; the clients are keep-alive HTTP/1.1
connections on asyncio with a minimal hand-written client, so the figures measure the server
rather than a client library. Overhead = API p50 − in-process p50 of the same tool. The server
process's CPU time per request (from /proc) is printed too: on a shared, loaded machine it is
the steadier figure, since latency at 8 or 32 clients is mostly queueing for the CPU.

Every tool call reads the key's revocation state and writes a usage row, so the database is on
the hot path. ``--database`` picks it: ``sqlite`` (the default file under the server's home),
``postgresql`` (a throw-away server from Debian's binaries, as the tests start it:
``tests/support/postgres.py``), or ``both``: a server process on each, measured in turns so
that both see the same background load, with the tool-call overhead at 8 clients side by side.
That PostgreSQL is the tests' (loopback TCP, fsync and synchronous_commit off): like SQLite in
WAL mode with synchronous=NORMAL, a commit does not wait for the disk, so the figures compare
the round trips and the server's work rather than two disks.

    python benchmarks/api.py [--quick] [--json] [--requests N] [--database sqlite|postgresql|both]
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


def serve(home: str, port: int, database_url: str | None) -> None:
    import uvicorn

    from assistant.config import load_settings
    from assistant.llm.fake import FakeBackend
    from assistant.runtime import build_runtime
    from mentorly_app.web import create_app

    settings = load_settings(home=Path(home), database_url=database_url, plugins=[], llm={"backend": "fake"})
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


def _cpu_with_reaped_children(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone: its parent counts it once it has reaped it
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and its descendants (Linux), those that exited included (a
    PostgreSQL server's processes: a backend ends when the pool closes its connection)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree, grew = {root}, True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return sum(map(_cpu_with_reaped_children, tree))


async def load(port: int, raw: bytes, clients: int, total: int, progress: tqdm,
               pid: int, db_pid: int | None = None) -> dict[str, float]:
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

    db_before = tree_cpu_seconds(db_pid) if db_pid else 0.0
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    db_cpu = tree_cpu_seconds(db_pid) - db_before if db_pid else 0.0
    for conn in connections:
        conn.close()
    # SQLite's work is in the server process; PostgreSQL's in its own processes
    return {**summary(latencies, elapsed), "server_cpu_ms_per_request": round(cpu * 1000 / total, 3),
            "database_cpu_ms_per_request": round(db_cpu * 1000 / total, 3)}


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


DATABASES = ("sqlite", "postgresql")


class Server:
    """The benchmark server in a child process, on ``database`` ("sqlite": the default file
    under its home; "postgresql": a new database on ``postgres``)."""

    def __init__(self, database: str, home: str, postgres: Any = None) -> None:
        self.database = database
        self.db_pid: int | None = postgres.proc.pid if postgres is not None else None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        argv = [sys.executable, __file__, "--serve", home, str(self.port)]
        if postgres is not None:
            argv.append(str(postgres.create_database("bench")))
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        try:
            self.key = _wait_ready(self.proc, self.port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def start_postgres() -> Any:
    """A throw-away PostgreSQL server, as the tests start one (stop it with ``close()``)."""
    from tests.support.postgres import PostgresServer

    bindir = PostgresServer.find_bin()
    if bindir is None:
        raise SystemExit("--database postgresql needs PostgreSQL's server binaries (initdb, postgres): "
                         "`make services`, or apt-get install postgresql")
    return PostgresServer(bindir).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (about a minute)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--requests", type=int, default=None, help="requests per measurement")
    parser.add_argument("--database", choices=(*DATABASES, "both"), default="sqlite",
                        help="the server's database: sqlite (default), postgresql (a throw-away "
                             "server), or both, side by side")
    parser.add_argument("--serve", nargs="+", metavar="ARG", help=argparse.SUPPRESS)  # HOME PORT [URL]
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2] if len(args.serve) > 2 else None)
        return
    databases = DATABASES if args.database == "both" else (args.database,)
    total = args.requests or (600 if args.quick else 3000)
    if total < 100:
        parser.error("--requests must be at least 100 (p99 needs them)")

    postgres = start_postgres() if "postgresql" in databases else None
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="mentorly-bench-api-") as root:
            for name in databases:
                home = Path(root) / name
                home.mkdir()
                servers.append(Server(name, str(home), postgres if name == "postgresql" else None))
            figures = _measure(servers, total)
    finally:
        for server in servers:
            server.stop()
        if postgres is not None:
            postgres.close()
    if len(databases) == 1:
        _report(figures[databases[0]], args.json)
    else:
        _report_both(figures, args.json)


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


def _measure(servers: list[Server], total: int) -> dict[str, dict[str, Any]]:
    """The figures of each server, by database name; measurements go round the servers in turn
    (and the operations, per concurrency) so all see the same background load."""
    baseline = in_process(max(total, 5000))
    plans = {s.database: {"tool": build_request("POST", "/api/tools/word_count", s.key, {"arguments": ARGS}),
                          "healthz": build_request("GET", "/healthz", None, None)} for s in servers}
    results: dict[str, dict[str, Any]] = {
        s.database: {"database": s.database, "in_process": baseline, "requests_per_measurement": total}
        for s in servers}
    with tqdm(total=total * len(CONCURRENCY) * 2 * len(servers), desc="requests", unit="req",
              file=sys.stderr) as progress:
        for clients in CONCURRENCY:
            for name in ("tool", "healthz"):
                for s in servers:
                    raw = plans[s.database][name]
                    results[s.database][f"{name}_c{clients}"] = asyncio.run(
                        load(s.port, raw, clients, total, progress, s.proc.pid, s.db_pid))
    for r in results.values():
        for clients in CONCURRENCY:
            api = r[f"tool_c{clients}"]
            api["overhead_p50_ms"] = round(api["p50_ms"] - baseline["p50_ms"], 3)
            api["ratio_p50"] = round(api["p50_ms"] / baseline["p50_ms"], 1)
        r["overhead_p50_ms_at_8"] = r["tool_c8"]["overhead_p50_ms"]
        r["target_overhead_ms"] = TARGET_OVERHEAD_MS
        r["meets_target"] = r["overhead_p50_ms_at_8"] <= TARGET_OVERHEAD_MS
        r["cpu_count"] = os.cpu_count()
        r["load_average"] = round(os.getloadavg()[0], 2)
    return results


def _report(r: dict[str, Any], as_json: bool) -> None:
    _print_table(r)
    if as_json:
        print(json.dumps(r))


def _print_table(r: dict[str, Any]) -> None:
    print(f"database: {r['database']}")
    b = r["in_process"]
    print(f"baseline: tool in-process  p50 {b['p50_ms'] * 1000:.1f} µs  p99 {b['p99_ms'] * 1000:.1f} µs  "
          f"{b['rps']:,.0f} calls/s")
    separate = r["database"] == "postgresql"  # its CPU time is in its own processes
    print(f"{'operation':<28}{'clients':>8}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>11}"
          + (f"{'db cpu':>8}" if separate else "") + f"{'overhead':>11}{'ratio':>8}")
    for name, label in (("tool", "POST /api/tools/word_count"), ("healthz", "GET /healthz")):
        for clients in CONCURRENCY:
            m = r[f"{name}_c{clients}"]
            db = f"{m['database_cpu_ms_per_request']:>8.3f}" if separate else ""
            extra = (f"{m['overhead_p50_ms']:>9.2f}ms{m['ratio_p50']:>7.0f}×" if name == "tool" else "")
            print(f"{label:<28}{clients:>8}{m['rps']:>9,.0f}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}"
                  f"{m['server_cpu_ms_per_request']:>11.3f}{db}{extra}")
    verdict = "meets" if r["meets_target"] else "MISSES"
    print(f"API overhead at 8 clients: {r['overhead_p50_ms_at_8']:.2f} ms p50 ({verdict} the "
          f"≤ {r['target_overhead_ms']:g} ms target) on {r['cpu_count']} CPUs, load average "
          f"{r['load_average']}")


def _report_both(figures: dict[str, dict[str, Any]], as_json: bool) -> None:
    for name in DATABASES:
        _print_table(figures[name])
        print()
    lite, pg = figures["sqlite"], figures["postgresql"]
    print("Tool-call overhead p50 at 8 clients (API p50 - in-process p50):")
    print(f"{'':<22}{'SQLite':>10}{'PostgreSQL':>12}{'ratio':>8}")
    for r in (lite, pg):
        m = r["tool_c8"]
        m["total_cpu_ms_per_request"] = round(m["server_cpu_ms_per_request"] + m["database_cpu_ms_per_request"], 3)
    rows = [("overhead p50 ms", "overhead_p50_ms"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
            ("server+db cpu ms/req", "total_cpu_ms_per_request"), ("requests/s", "rps")]
    comparison: dict[str, Any] = {}
    for label, field in rows:
        a, b = lite["tool_c8"][field], pg["tool_c8"][field]
        ratio = round(b / a, 2) if a > 0 else None
        comparison[field] = {"sqlite": a, "postgresql": b, "ratio_postgresql_to_sqlite": ratio}
        shown = f"{ratio:>7.2f}×" if ratio is not None else f"{'-':>8}"
        print(f"{label:<22}{a:>10.2f}{b:>12.2f}{shown}")
    for name in DATABASES:
        verdict = "meets" if figures[name]["meets_target"] else "MISSES"
        print(f"{name}: {verdict} the ≤ {TARGET_OVERHEAD_MS:g} ms target")
    if as_json:
        print(json.dumps({"database": "both", "sqlite": lite, "postgresql": pg, "tool_c8": comparison,
                          "overhead_p50_ms_at_8": {n: figures[n]["overhead_p50_ms_at_8"] for n in DATABASES},
                          "ratio_overhead_p50_at_8": comparison["overhead_p50_ms"]["ratio_postgresql_to_sqlite"],
                          "target_overhead_ms": TARGET_OVERHEAD_MS}))


if __name__ == "__main__":
    main()
