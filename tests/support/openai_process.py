"""Run ``tests/support/openai_server.py`` as a subprocess for the length of a ``with`` block."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def openai_server(*args: str) -> Iterator[str]:
    """Start the test server with ``args`` (e.g. ``--script FILE``); yields its base URL once
    it accepts connections, and stops it afterwards."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.openai_server", *args],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            proc.kill()
            raise RuntimeError(f"test server did not start: {line} {proc.communicate()[1][-2000:]}")
        base = f"http://127.0.0.1:{line}"
        for _ in range(100):  # wait until uvicorn accepts connections
            try:
                httpx.get(f"{base}/requests", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
