"""`batchconf serve` on 127.0.0.1 in a child process, for the benchmark scripts that load it.

The key travels in the environment (`BATCHCONF_API_KEYS`), never on a command line, so it
shows in no process list; the server then prints only "API keys: 1 configured".
Load runs themselves go through `batchconf load` (Locust).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["free_port", "start_emulator", "stop", "wait_ready"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, key: str, proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """Until `GET {url}/v1/batches?limit=1` answers 200 (bounded)."""
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(f"{url}/v1/batches?limit=1", headers={"Authorization": f"Bearer {key}"})
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"served: the emulator exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code in (401, 403):
                raise SystemExit(f"served: the target answered {exc.code}: check the key") from None
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise SystemExit(f"served: {url} not ready after {timeout:.0f} s ({last})")


def start_emulator(port: int, key: str, profile: str, log: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("batchconf", path=str(Path(sys.executable).parent)) or shutil.which("batchconf")
    cmd = [exe] if exe else [sys.executable, "-m", "emulator.cli"]
    cmd += ["serve", "--host", "127.0.0.1", "--port", str(port), "--profile", profile, "--progression", "per_poll"]
    # The key travels in the environment (BATCHCONF_API_KEYS), not on the command line, so it
    # never shows in `ps`; serve then prints only "API keys: 1 configured".
    env = {**os.environ, "BATCHCONF_API_KEYS": key}
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
