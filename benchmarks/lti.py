"""LTI launch overhead (#17): login initiation + launch, the two requests a learner's browser
makes to the tool when they open it in a course, against ``GET /healthz`` on the same server in
the same run (the baseline: what any request costs there).

The server is the real app (``mentorly_app.web.create_app``) under uvicorn in a child process,
over a throw-away home, with a registered platform: ``tests.support.lti_platform``'s simulated
platform, whose key set (JWKS) is served in this process and fetched once by the server (then
cached, as in production). Per launch the client posts the login form to ``/lti/login``, reads
``state`` and ``nonce`` from the redirect, has the platform sign an id_token (the platform's
work: not timed), and posts ``id_token`` + ``state`` to ``/lti/launch``, which verifies it and
answers the launched page. A launch's time is the sum of its two requests. A class of learners
(40 users over 4 courses) launches in turn, so after the warm-up the users and courses exist,
as for a course in use; every launch still opens a session and writes its audit and usage rows.

Figures: p50/p99 of the launch (and of each request), requests/s, the server's CPU time per
launch (from /proc: on a shared machine the steadier figure), at 1 and 4 concurrent clients,
with ``GET /healthz`` measured the same way; ratio = launch p50 / healthz p50. Target: launch
p50 ≤ 30 ms at one client. The client is the minimal keep-alive HTTP/1.1 client of
``benchmarks/api.py``, so the figures measure the server rather than a client library.

    python benchmarks/lti.py [--quick] [--json] [--launches N] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tqdm import tqdm  # noqa: E402

from benchmarks.api import Connection, cpu_seconds, start_postgres, summary  # noqa: E402

CONCURRENCY = (1, 4)
TARGET_P50_MS = 30.0
TENANT = "bench"
LEARNERS = 40
COURSES = 4


# -- the server (child process) ------------------------------------------------------------


def serve(home: str, port: int, platform: dict[str, str], database_url: str | None) -> None:
    import uvicorn

    from assistant.config import load_settings
    from assistant.llm.fake import FakeBackend
    from assistant.lti.platforms import Platforms
    from assistant.runtime import build_runtime
    from mentorly_app.web import create_app

    settings = load_settings(home=Path(home), database_url=database_url, plugins=[], llm={"backend": "fake"},
                             # the flood guard on, with a limit no run reaches: its cost is measured
                             lti={"public_url": f"http://127.0.0.1:{port}", "requests_per_minute_per_ip": 10**9})
    runtime = build_runtime(settings, backend=FakeBackend())
    app = create_app(runtime, with_ui=False)
    Platforms(runtime.db).add(tenant=TENANT, issuer=platform["issuer"], client_id=platform["client_id"],
                              auth_login_url=platform["auth_url"], key_set_url=platform["jwks_url"],
                              deployment_ids=[platform["deployment_id"]])
    print("ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Server:
    def __init__(self, home: str, platform: Any, database_url: str | None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        spec = {"issuer": platform.issuer, "client_id": platform.client_id, "auth_url": platform.auth_url,
                "jwks_url": platform.jwks_url, "deployment_id": platform.deployment_id}
        argv = [sys.executable, __file__, "--serve", home, str(self.port), json.dumps(spec)]
        if database_url:
            argv.append(database_url)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"the benchmark server failed to start (exit {self.proc.poll()})")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the benchmark server did not answer within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


# -- one launch ------------------------------------------------------------------------------


def form_request(path: str, fields: dict[str, str]) -> bytes:
    body = urlencode(fields).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def request_with_headers(conn: Connection, raw: bytes) -> tuple[int, bytes, bytes]:
    """``Connection.request`` that also returns the head (the login's ``Location``)."""
    conn.writer.write(raw)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, head, await conn.reader.readexactly(length)


def _location(head: bytes) -> dict[str, str]:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"location:"):
            url = line.split(b":", 1)[1].strip().decode()
            return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    raise RuntimeError("the login answered no Location")


async def one_launch(conn: Connection, platform: Any, port: int, n: int) -> tuple[float, float]:
    """(login seconds, launch seconds) of launch number ``n``; signing between them is untimed."""
    sub = f"learner-{n % LEARNERS}"
    started = time.perf_counter()
    status, head, body = await request_with_headers(conn, form_request("/lti/login", {
        "iss": platform.issuer, "login_hint": sub, "target_link_uri": f"http://127.0.0.1:{port}/lti/launch",
        "client_id": platform.client_id, "lti_deployment_id": platform.deployment_id,
        "lti_message_hint": f"m{n}"}))
    login_s = time.perf_counter() - started
    if status != 302:
        raise RuntimeError(f"login failed: {status} {body[:300]!r}")
    query = _location(head)
    course = n % COURSES
    token = platform.id_token(query["nonce"], sub=sub, context=(f"course-{course}", f"Course {course}"),
                              target_link_uri=query["redirect_uri"])
    started = time.perf_counter()
    status, body = await conn.request(form_request("/lti/launch", {"id_token": token, "state": query["state"]}))
    launch_s = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"launch failed: {status} {body[:300]!r}")
    return login_s, launch_s


async def launches(port: int, platform: Any, clients: int, total: int, pid: int, progress: tqdm,
                   offset: int) -> dict[str, Any]:
    connections = [await Connection.open(port) for _ in range(clients)]
    logins: list[float] = []
    launched: list[float] = []
    totals: list[float] = []
    remaining = total
    counter = offset

    async def worker(conn: Connection) -> None:
        nonlocal remaining, counter
        while remaining > 0:
            remaining -= 1
            counter += 1
            login_s, launch_s = await one_launch(conn, platform, port, counter)
            logins.append(login_s)
            launched.append(launch_s)
            totals.append(login_s + launch_s)
            progress.update(1)

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    for conn in connections:
        conn.close()
    # rps: launches per second of wall time, the untimed signing included
    return {**summary(totals, elapsed), "login": summary(logins, elapsed), "launch": summary(launched, elapsed),
            "server_cpu_ms_per_launch": round(cpu * 1000 / total, 3)}


async def healthz(port: int, clients: int, total: int, pid: int, progress: tqdm) -> dict[str, Any]:
    raw = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
    connections = [await Connection.open(port) for _ in range(clients)]
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
                raise RuntimeError(f"healthz failed: {status} {body[:200]!r}")
            progress.update(1)

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    for conn in connections:
        conn.close()
    return {**summary(latencies, elapsed), "server_cpu_ms_per_request": round(cpu * 1000 / total, 3)}


def measure(server: Server, platform: Any, total: int, warm_up: int) -> dict[str, Any]:
    results: dict[str, Any] = {"launches_per_measurement": total}
    steps = warm_up + total * len(CONCURRENCY) * 2
    with tqdm(total=steps, desc="requests (launches and healthz)", unit="req", file=sys.stderr) as progress:
        # every learner and course once, and the platform's key set fetched and cached
        asyncio.run(launches(server.port, platform, 1, warm_up, server.proc.pid, progress, 0))
        offset = warm_up
        for clients in CONCURRENCY:  # interleaved, so both see the same background load
            results[f"healthz_c{clients}"] = asyncio.run(healthz(server.port, clients, total,
                                                                 server.proc.pid, progress))
            results[f"launch_c{clients}"] = asyncio.run(launches(server.port, platform, clients, total,
                                                                 server.proc.pid, progress, offset))
            offset += total
    for clients in CONCURRENCY:
        launch, base = results[f"launch_c{clients}"], results[f"healthz_c{clients}"]
        launch["ratio_p50_to_healthz"] = round(launch["p50_ms"] / base["p50_ms"], 1)
    results["launch_p50_ms"] = results["launch_c1"]["p50_ms"]
    results["target_p50_ms"] = TARGET_P50_MS
    results["meets_target"] = results["launch_p50_ms"] <= TARGET_P50_MS
    results["jwks_fetches"] = platform.jwks_fetches
    results["cpu_count"] = os.cpu_count()
    results["load_average"] = round(os.getloadavg()[0], 2)
    return results


def report(r: dict[str, Any], database: str, as_json: bool) -> None:
    print(f"database: {database}; {r['launches_per_measurement']} launches per measurement; "
          f"platform key set fetched {r['jwks_fetches']}×")
    print(f"{'operation':<36}{'clients':>8}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms':>9}{'ratio':>8}")
    for clients in CONCURRENCY:
        base, launch = r[f"healthz_c{clients}"], r[f"launch_c{clients}"]
        print(f"{'GET /healthz (baseline)':<36}{clients:>8}{base['rps']:>9,.0f}{base['p50_ms']:>9.2f}"
              f"{base['p99_ms']:>9.2f}{base['server_cpu_ms_per_request']:>9.3f}{'1×':>8}")
        for name, label in (("login", "  POST /lti/login"), ("launch", "  POST /lti/launch")):
            m = launch[name]
            print(f"{label:<36}{clients:>8}{'':>9}{m['p50_ms']:>9.2f}{m['p99_ms']:>9.2f}")
        print(f"{'launch = login + launch':<36}{clients:>8}{launch['rps']:>9,.0f}{launch['p50_ms']:>9.2f}"
              f"{launch['p99_ms']:>9.2f}{launch['server_cpu_ms_per_launch']:>9.3f}"
              f"{launch['ratio_p50_to_healthz']:>7.1f}×")
    verdict = "meets" if r["meets_target"] else "MISSES"
    print(f"Launch overhead p50 at 1 client: {r['launch_p50_ms']:.2f} ms ({verdict} the ≤ {TARGET_P50_MS:g} ms "
          f"target) on {r['cpu_count']} CPUs, load average {r['load_average']}")
    if as_json:
        print(json.dumps({"database": database, **r}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer launches (about a minute)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    parser.add_argument("--launches", type=int, default=None, help="launches per measurement")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the server's database: sqlite (default) or postgresql (a throw-away server)")
    parser.add_argument("--serve", nargs="+", metavar="ARG", help=argparse.SUPPRESS)  # HOME PORT SPEC [URL]
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), json.loads(args.serve[2]),
              args.serve[3] if len(args.serve) > 3 else None)
        return
    total = args.launches or (600 if args.quick else 3000)
    if total < 100:
        parser.error("--launches must be at least 100 (p99 needs them)")

    from tests.support.lti_platform import SimulatedPlatform

    platform = SimulatedPlatform()
    postgres = start_postgres() if args.database == "postgresql" else None
    server: Server | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="mentorly-bench-lti-") as home:
            url = str(postgres.create_database("bench")) if postgres is not None else None
            server = Server(home, platform, url)
            figures = measure(server, platform, total, warm_up=LEARNERS * 2)
            server.stop()
    finally:
        if server is not None:
            server.stop()
        platform.stop()
        if postgres is not None:
            postgres.close()
    report(figures, args.database, args.json)


if __name__ == "__main__":
    main()
