"""A throw-away Redis server for the tests: Debian's ``redis-server`` on a free loopback port, in a
temporary folder, with persistence off (``--save ''``, ``--appendonly no``); no system service.

``make test`` installs the package when it is missing; without it ``RedisServer.find_bin``
returns None and the Redis variants of the tests are skipped with that reason.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port


class RedisServer:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mentorly-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find_bin() -> str | None:
        return shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = open(self.root / "server.log", "wb")  # noqa: SIM115  (lives as long as the server)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start: "
                                   + (self.root / "server.log").read_text(errors="replace")[-2000:])
            if self._ping():
                return self
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 20 s")

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
