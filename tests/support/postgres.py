"""A throw-away PostgreSQL server for the tests: Debian's ``postgresql`` binaries, ``initdb`` in a
temporary folder, a free loopback port, no system service.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user that
Debian's package creates (``runuser``). ``make test`` installs the package when it is missing;
without it ``PostgresServer.find_bin`` returns None and the PostgreSQL variants of the tests are
skipped with that reason (never silently passed).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.ports import free_port


class PostgresServer:
    """One server; ``create_database()`` gives each test its own empty database."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mentorly-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self._user: str | None = "postgres" if os.geteuid() == 0 else None
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def find_bin() -> Path | None:
        """The folder of ``initdb`` and ``postgres`` (PATH first, then Debian's versioned folders)."""
        found = shutil.which("initdb")
        if found and shutil.which("postgres"):
            return Path(os.path.realpath(found)).parent
        for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
            if (Path(folder) / "initdb").exists():
                return Path(folder)
        return None

    def _as_server_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self._user, "--", *argv] if self._user else argv

    def start(self) -> PostgresServer:
        self.socket_dir.mkdir()
        if self._user:
            entry = pwd.getpwnam(self._user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(self._as_server_user(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
            check=True, capture_output=True)
        log = open(self.root / "server.log", "wb")  # noqa: SIM115  (lives as long as the server)
        # fsync off and small buffers: a test server, thrown away at the end
        self.proc = subprocess.Popen(self._as_server_user(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.socket_dir), "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=300", "-c", "shared_buffers=64MB"]),
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("PostgreSQL did not start: "
                                   + (self.root / "server.log").read_text(errors="replace")[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self._ready():
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not accept connections within 30 s")

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (the psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def postmaster_pid(self) -> int | None:
        """The server's own pid (under root ``proc`` is ``runuser``, which does not pass
        signals on)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, *, fast: bool = True) -> None:
        """Stop the server (``fast``: SIGINT, the server's fast shutdown) and wait for it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self.postmaster_pid()
        target = pid if pid is not None else self.proc.pid
        try:
            os.kill(target, signal.SIGINT if fast else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        """Start again on the same data folder and port (after ``stop``)."""
        self.stop()
        log = open(self.root / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self._as_server_user(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.socket_dir), "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "max_connections=300"]),
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._ready():
            time.sleep(0.1)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
