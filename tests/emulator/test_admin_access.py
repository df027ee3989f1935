"""Who may use the admin routes: off with `--no-admin`, behind a token of their own when asked
(and always when the server listens beyond loopback), never behind the provider's key."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from conformance.control import Control, ControlError
from emulator import Emulator
from tests.emulator._support import start_server


def test_no_admin_leaves_the_routes_out() -> None:
    """Without admin routes, `/_emulator/...` is the provider's 404; the API works."""
    with Emulator(admin=False) as emu, emu.http_client() as http:
        assert http.get("/_emulator/info").status_code == 404
        assert http.post("/_emulator/clock/advance", json={"seconds": 60}).status_code == 404
        assert http.get("/v1/batches").status_code == 200


def test_admin_token_guards_every_route() -> None:
    """With a token, an admin call without it (or with the provider's key) is refused 401;
    with it, served; the suite's Control sends it from BATCHCONF_ADMIN_TOKEN."""
    with Emulator(admin_token="tok-123") as emu, emu.http_client() as http:
        for method, path in (("GET", "/_emulator/info"), ("POST", "/_emulator/reset"), ("PUT", "/_emulator/timing")):
            assert http.request(method, path).status_code == 401, path
        assert http.get("/_emulator/info", headers={"X-Batchconf-Admin-Token": "wrong"}).status_code == 401
        assert http.get("/_emulator/info", headers={"X-Batchconf-Admin-Token": "tok-123"}).status_code == 200
        assert Control(http, token="tok-123").info()["profile"] == "openai"
        with pytest.raises(ControlError, match="401"):
            Control(http, token="").info()


def test_served_beyond_loopback_generates_a_token(tmp_path: Path) -> None:
    """`--host 0.0.0.0` with no token variable: a token is generated and printed once, and the
    admin routes need it (traffic here still goes only to 127.0.0.1)."""
    server = start_server(["--host", "0.0.0.0", "--api-key", "k"], tmp_path)  # the last --host wins
    try:
        with httpx.Client(base_url=server.root_url, timeout=5) as http:
            deadline = time.monotonic() + 30
            while "X-Batchconf-Admin-Token: " not in server.stdout():
                assert time.monotonic() < deadline and server.proc.poll() is None, server.stderr()[-2000:]
                time.sleep(0.05)  # waiting for a process to start, not emulating time
            token = server.stdout().split("X-Batchconf-Admin-Token: ", 1)[1].split()[0]
            while True:
                try:
                    http.get("/v1/batches")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "server did not bind"
                    time.sleep(0.05)  # waiting for the port to be bound
            assert http.get("/_emulator/info").status_code == 401
            assert http.get("/_emulator/info", headers={"X-Batchconf-Admin-Token": token}).status_code == 200
            assert http.get("/v1/batches", headers={"Authorization": "Bearer k"}).status_code == 200
    finally:
        server.stop()
