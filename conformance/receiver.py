"""A local webhook receiver: an HTTP server on loopback that records every POST it gets.

Tests and the conformance suite point a batch's webhook URL at it and then wait, bounded,
for the deliveries to arrive::

    with WebhookReceiver(fail_first=2) as hooks:
        create_batch(webhook_url=hooks.url)
        ...
        got = hooks.wait_for(3, timeout=5.0)   # two 500s, then the delivery that succeeds

Every POST is recorded, including those answered with an error (`ReceivedHook.status`
says what the receiver answered), so a test sees retries as well as the delivery that
succeeded. A hook is recorded *before* it is answered: once the sender has its answer, the
hook is in `received`.

The server is the standard library's `ThreadingHTTPServer` on a daemon thread; it imports
nothing from the emulator, so it serves equally for a real provider's target.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Final

__all__ = ["MAX_BODY_BYTES", "ReceivedHook", "WebhookReceiver"]

log = logging.getLogger("batchconf.receiver")

MAX_BODY_BYTES: Final = 10 * 1024 * 1024
"""The largest body the receiver accepts; a larger one is answered 413 and not recorded."""

# serve_forever checks for shutdown this often: close() waits at most about this long.
_POLL_INTERVAL: Final = 0.05
# A sender that stops mid-request must not pin a handler thread for ever.
_SOCKET_TIMEOUT: Final = 10.0


@dataclass(frozen=True)
class ReceivedHook:
    """One POST the receiver got.

    `headers` has lower-case names (repeated headers joined with ", "); `json` is the body
    parsed as JSON, or None if it is not JSON; `at` is `time.monotonic()` on arrival;
    `status` is the status code the receiver answered (500 for the first `fail_first`).
    """

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None
    at: float
    status: int


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Server(ThreadingHTTPServer):
    # Handler threads are daemons: close() never waits for a sender that hangs.
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: WebhookReceiver, family: socket.AddressFamily) -> None:
        self.address_family = family
        self.receiver = receiver
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a reverse DNS lookup that can take
        # seconds); nothing here needs the name.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that hangs up mid-request is its own business: no traceback on stderr.
        log.debug("webhook receiver: error while handling a request from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so no handler thread idles on a keep-alive socket.
    protocol_version = "HTTP/1.0"
    timeout = _SOCKET_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the receiver's record is `received`, not stderr."""

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except _BodyError as exc:
            self._answer(exc.status, str(exc).encode())
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        status = self.server.receiver._record(self.path, headers, body)
        self._answer(status)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise _BodyError(411, "Content-Length required")
        try:
            length = int(raw)
        except ValueError:
            raise _BodyError(400, f"bad Content-Length {raw!r}") from None
        if length < 0:
            raise _BodyError(400, f"bad Content-Length {raw!r}")
        if length > MAX_BODY_BYTES:
            raise _BodyError(413, f"body of {length} bytes exceeds {MAX_BODY_BYTES}")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "bad chunk size") from None
            if size == 0:
                # Trailers, if any, end with an empty line.
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BodyError(413, f"body exceeds {MAX_BODY_BYTES} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _not_allowed(self) -> None:
        self._answer(405, b"only POST", allow="POST")

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_allowed

    def do_HEAD(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, status: int, body: bytes = b"", allow: str | None = None) -> None:
        self.send_response(status)
        if allow:
            self.send_header("Allow", allow)
        if body:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class WebhookReceiver(AbstractContextManager["WebhookReceiver"]):
    """Records the webhooks POSTed to it; answers `status` (500 to the first `fail_first`).

    Bound to `host` (loopback by default) on a free port once started (`start()` or `with`).
    Only POST is handled (other methods get 405); a body over `MAX_BODY_BYTES` gets 413.
    Thread-safe: handler threads record, test code reads and waits.
    """

    def __init__(self, host: str = "127.0.0.1", *, fail_first: int = 0, status: int = 204) -> None:
        if fail_first < 0:
            raise ValueError(f"fail_first must be >= 0, got {fail_first}")
        if not 200 <= status <= 599:
            raise ValueError(f"status must be an HTTP status from 200 to 599, got {status}")
        self.host = host
        self.fail_first = fail_first
        self.status = status
        self._hooks: list[ReceivedHook] = []
        self._posts = 0
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url_base: str | None = None
        self._closed = False

    def start(self) -> WebhookReceiver:
        """Bind and serve on a daemon thread; returns self. Starting twice is a no-op."""
        if self._closed:
            raise RuntimeError("this WebhookReceiver is closed; make a new one")
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = _Server((self.host, 0), self, family)
        port = server.server_address[1]
        netloc = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self._url_base = f"http://{netloc}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"webhook-receiver-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The URL to give a sender: `http://HOST:PORT/hook`."""
        return self.url_for("/hook")

    def url_for(self, path: str) -> str:
        """A URL on this receiver with the given path (several hooks can be told apart by path)."""
        if self._url_base is None:
            raise RuntimeError("the WebhookReceiver is not started: use start() or a with block")
        return f"{self._url_base}/{path.lstrip('/')}"

    @property
    def received(self) -> list[ReceivedHook]:
        """Every POST so far, in arrival order (a copy)."""
        with self._cond:
            return list(self._hooks)

    def wait_for(self, count: int, timeout: float) -> list[ReceivedHook]:
        """Block until at least `count` POSTs arrived or `timeout` seconds passed.

        Returns what arrived (a copy), which is shorter than `count` after a timeout: the
        caller asserts on it, so its failure message can show what did arrive.
        """
        with self._cond:
            self._cond.wait_for(lambda: len(self._hooks) >= count, timeout=timeout)
            return list(self._hooks)

    def by_event_id(self) -> dict[str, list[ReceivedHook]]:
        """The hooks grouped by the JSON body's `"id"` (hooks without one are left out)."""
        groups: dict[str, list[ReceivedHook]] = {}
        for hook in self.received:
            if isinstance(hook.json, dict):
                event_id = hook.json.get("id")
                if isinstance(event_id, str):
                    groups.setdefault(event_id, []).append(hook)
        return groups

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        self._closed = True
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        try:
            parsed: Any | None = json.loads(body)
        except ValueError:
            parsed = None
        with self._cond:
            self._posts += 1
            status = 500 if self._posts <= self.fail_first else self.status
            self._hooks.append(ReceivedHook(path, headers, body, parsed, time.monotonic(), status))
            self._cond.notify_all()
        return status
