"""Start the reference portal (examples/portal) as a subprocess on 127.0.0.1 with a free port.

The portal runs exactly as its README command runs it (``python -m examples.portal``), so
the browser tests exercise the launcher, uvicorn and the store it opens too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def portal(state_dir: Path, *args: str, timeout: float = 30.0) -> Iterator[str]:
    """Run the portal with ``args`` until the block ends; yields its base URL."""
    port = free_port()
    log = open(state_dir / "server.log", "wb")  # closed below, after the process ends
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.portal", "--port", str(port), "--state-dir", str(state_dir), *args],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the portal exited with {process.returncode}: "
                                   + (state_dir / "server.log").read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(base + "/login", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the portal did not answer within the timeout")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
