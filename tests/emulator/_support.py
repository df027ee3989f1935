"""Shared helpers of the emulator's end-to-end tests: targets, SDK clients, JSONL, checks.

A test sees a `Harness`: one target (the emulator in-process, or `batchconf serve` on
127.0.0.1) and one SDK flavour (sync `openai.OpenAI`, or `openai.AsyncOpenAI` driven from
sync test code through an event loop in a helper thread). Every response any client gets is
checked against the project's JSON Schemas by an httpx response hook; violations are
collected and fail the test at teardown (an exception raised inside a hook would reach the
test only as the SDK's `APIConnectionError`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import re
import ssl
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio.from_thread
import httpx
import openai
from openai.types import Batch, FileObject

from emulator import Emulator, TimingModel
from schemas import get_validator

__all__ = [
    "CHAT",
    "MODEL",
    "TLS",
    "Harness",
    "InProcessTarget",
    "ProfileCopy",
    "ResponseChecker",
    "ServerProcess",
    "ServerTarget",
    "Target",
    "bounded",
    "chat_line",
    "check",
    "free_port",
    "poll",
    "read_lines",
    "results",
    "start_server",
    "submit",
    "to_jsonl",
    "upload",
]

#: One TLS context for every httpx client made here: building one per client loads the CA
#: bundle each time (~75 ms), though these clients only ever speak plain HTTP to loopback.
TLS = ssl.create_default_context()

MODEL = "gpt-4o-mini"
CHAT: Final = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

# ---------------------------------------------------------------------------------------
# JSONL and flows


def chat_line(
    custom_id: str, text: str = "hello batch world", *, model: str | None = MODEL, **body: Any
) -> dict[str, Any]:
    """One valid chat-completions request line (body fields may be added or overridden)."""
    payload: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if model is not None:
        payload["model"] = model
    payload.update(body)
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": payload}


def to_jsonl(lines: Iterable[dict[str, Any] | str]) -> bytes:
    """JSONL bytes; a `str` item is written verbatim (for deliberately broken lines)."""
    return b"".join((item if isinstance(item, str) else json.dumps(item)).encode() + b"\n" for item in lines)


def upload(
    client: openai.OpenAI, lines: Iterable[dict[str, Any] | str] | bytes, filename: str = "input.jsonl"
) -> FileObject:
    """Upload a batch input file with `purpose="batch"`."""
    data = lines if isinstance(lines, bytes) else to_jsonl(lines)
    return client.files.create(file=(filename, data), purpose="batch")


def submit(
    client: openai.OpenAI,
    lines: Iterable[dict[str, Any] | str] | bytes,
    *,
    endpoint: str = CHAT,
    **kwargs: Any,
) -> Batch:
    """Upload `lines` and create a batch over them."""
    f = upload(client, lines)
    return client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h", **kwargs)  # type: ignore[arg-type]


def poll(client: openai.OpenAI, batch_id: str, max_polls: int = 10) -> list[Batch]:
    """Retrieve until the batch is terminal (at most `max_polls` times); every snapshot."""
    seen: list[Batch] = []
    for _ in range(max_polls):
        b = client.batches.retrieve(batch_id)
        seen.append(b)
        if b.status in TERMINAL:
            return seen
    raise AssertionError(f"batch {batch_id} not terminal after {max_polls} polls: {[b.status for b in seen]}")


def read_lines(client: openai.OpenAI, file_id: str) -> list[dict[str, Any]]:
    """The parsed JSONL lines of a file, downloaded through `files.content`."""
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def results(client: openai.OpenAI, batch: Batch) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(output lines, error lines) of a finished batch, each checked against its schema.

    Also checks each generated file: purpose batch_output, `bytes` equal to its content.
    """
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            meta = client.files.retrieve(file_id)
            assert meta.purpose == "batch_output", meta
            assert meta.bytes == len(client.files.content(file_id).content), meta
    out = read_lines(client, batch.output_file_id) if batch.output_file_id else []
    err = read_lines(client, batch.error_file_id) if batch.error_file_id else []
    for line in out:
        check("openai/output_line", line)
    for line in err:
        check("openai/error_line", line)
    ids = [line["id"] for line in out + err]
    assert len(ids) == len(set(ids)), f"line ids repeat: {ids}"
    return out, err


def bounded(items: Iterable[Any], limit: int = 200) -> list[Any]:
    """Drain an (auto-paginating) iterable, failing instead of looping past `limit` items."""
    out: list[Any] = []
    for item in items:
        out.append(item)
        if len(out) > limit:
            raise AssertionError(f"pagination did not stop after {limit} items")
    return out


def check(schema: str, instance: object) -> None:
    """Fail with every violation if `instance` breaks the named JSON Schema."""
    errors = get_validator(schema).errors(instance)
    assert not errors, f"{schema}: " + "; ".join(map(str, errors)) + f" in {instance!r:.400}"


# ---------------------------------------------------------------------------------------
# Every response, checked against the schemas

_API_ROUTES: list[tuple[str, re.Pattern[str], str | None]] = [
    ("POST", re.compile(r"/v1/files"), "openai/file"),
    ("GET", re.compile(r"/v1/files"), "openai/file_list"),
    ("GET", re.compile(r"/v1/files/[^/]+"), "openai/file"),
    ("DELETE", re.compile(r"/v1/files/[^/]+"), "openai/file_deleted"),
    ("GET", re.compile(r"/v1/files/[^/]+/content"), None),
    ("POST", re.compile(r"/v1/batches"), "openai/batch"),
    ("GET", re.compile(r"/v1/batches"), "openai/batch_list"),
    ("GET", re.compile(r"/v1/batches/[^/]+"), "openai/batch"),
    ("POST", re.compile(r"/v1/batches/[^/]+/cancel"), "openai/batch"),
    ("POST", re.compile(r"/_emulator/batches/[^/]+/step"), "openai/batch"),
]


@dataclass
class ResponseChecker:
    """An httpx response hook: schema-checks every body, flags any 5xx and a missing
    x-request-id, and records what it saw."""

    violations: list[str] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    suspended: bool = False
    request_ids: set[str] = field(default_factory=set)

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        """Within the block, schema violations are not recorded (a mutation is on, on purpose)."""
        self.suspended = True
        try:
            yield
        finally:
            self.suspended = False

    def hooks(self, sync: bool) -> dict[str, list[Callable[..., Any]]]:
        """`event_hooks` for an httpx client (sync or async)."""
        if sync:
            return {"response": [self._sync_hook]}

        async def async_hook(response: httpx.Response) -> None:
            await response.aread()
            self.inspect(response)

        return {"response": [async_hook]}

    def _sync_hook(self, response: httpx.Response) -> None:
        response.read()
        self.inspect(response)

    def inspect(self, response: httpx.Response) -> None:
        """Check one response (its body already read)."""
        request = response.request
        path = request.url.path
        where = f"{request.method} {path} -> {response.status_code}"
        self.seen.append((request.method, path, response.status_code))
        rid = response.headers.get("x-request-id")
        if not rid:
            self.violations.append(f"{where}: no x-request-id header")
        elif rid in self.request_ids:
            self.violations.append(f"{where}: x-request-id {rid} seen before")
        else:
            self.request_ids.add(rid)
        if response.status_code >= 500:
            self.violations.append(f"{where}: the emulator failed: {response.content[:300]!r}")
        if response.status_code >= 400:
            self._validate(where, "openai/error", response)
            return
        local = path[path.find("/v1/") :] if "/v1/" in path else path
        for method, pattern, schema in _API_ROUTES:
            if method == request.method and pattern.fullmatch(local):
                if schema is None:
                    self._validate_jsonl(where, response)
                else:
                    self._validate(where, schema, response)
                return
        if not local.startswith("/_emulator/"):
            self.violations.append(f"{where}: a 2xx answer on a path no operation has")

    def _validate(self, where: str, schema: str, response: httpx.Response) -> None:
        if self.suspended:
            return
        try:
            body = response.json()
        except ValueError:
            self.violations.append(f"{where}: body is not JSON: {response.content[:200]!r}")
            return
        for v in get_validator(schema).errors(body):
            self.violations.append(f"{where}: {schema}: {v}")

    def _validate_jsonl(self, where: str, response: httpx.Response) -> None:
        if self.suspended:
            return
        for n, raw in enumerate(response.content.splitlines(), 1):
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # an input file the test itself uploaded broken
            if not isinstance(line, dict) or not ({"response", "error"} & line.keys()):
                continue  # an input line, the test's own data
            resp = line.get("response")
            ok = isinstance(resp, dict) and isinstance(resp.get("status_code"), int) and resp["status_code"] < 300
            schema = "openai/output_line" if ok and line.get("error") is None else "openai/error_line"
            for v in get_validator(schema).errors(line):
                self.violations.append(f"{where} line {n}: {schema}: {v}")

    def calls(self, method: str, suffix: str) -> int:
        """How many responses were seen for `method` on a path ending with `suffix`."""
        return sum(1 for m, p, _ in self.seen if m == method and p.endswith(suffix))


# ---------------------------------------------------------------------------------------
# Targets: the emulator in-process, or a `batchconf serve` subprocess


class Target(Protocol):
    """What a test may do to the emulator besides calling the API."""

    kind: str
    api_keys: tuple[str, ...]
    root_url: str
    base_url: str

    def sdk_http_client(self, sync: bool, checker: ResponseChecker) -> httpx.Client | httpx.AsyncClient:
        """A fresh httpx client for the SDK (no auth header: the SDK sets it)."""
        ...

    def raw_client(self, api_key: str | None, checker: ResponseChecker) -> httpx.Client:
        """A sync httpx client rooted at the origin (auth header set unless api_key == "")."""
        ...

    def step(self, batch_id: str, lines: int | None = None) -> dict[str, Any]:
        """Move a batch one status (or `lines` more lines)."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward."""
        ...

    def add_fault(self, **rule: Any) -> None:
        """Add a fault rule (JSON form: custom_id, status_code, body, error)."""
        ...

    def set_timing(self, **changes: Any) -> None:
        """Change the timing model (e.g. progression="manual")."""
        ...

    def set_mutations(self, *names: str) -> None:
        """Make exactly these mutations active."""
        ...


class InProcessTarget:
    """An `Emulator` in this process, controlled through its Python API."""

    kind = "inproc"

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.api_keys = emu.api_keys
        self.root_url = emu.root_url
        self.base_url = emu.base_url

    def sdk_http_client(self, sync: bool, checker: ResponseChecker) -> httpx.Client | httpx.AsyncClient:
        if sync:
            return self.emu.http_client(api_key="", event_hooks=checker.hooks(True))
        return self.emu.async_http_client(api_key="", event_hooks=checker.hooks(False))

    def raw_client(self, api_key: str | None, checker: ResponseChecker) -> httpx.Client:
        return self.emu.http_client(api_key=api_key, event_hooks=checker.hooks(True))

    def step(self, batch_id: str, lines: int | None = None) -> dict[str, Any]:
        return self.emu.step(batch_id, lines)

    def advance(self, seconds: float) -> None:
        self.emu.clock.advance(seconds)

    def add_fault(self, **rule: Any) -> None:
        self.emu.faults.add_json(rule)

    def set_timing(self, **changes: Any) -> None:
        self.emu.timing = self.emu.timing.updated(changes)

    def set_mutations(self, *names: str) -> None:
        self.emu.mutations.set(list(names))


class ServerTarget:
    """A running `batchconf serve`, controlled through its admin routes."""

    kind = "server"

    def __init__(self, root_url: str, api_keys: tuple[str, ...]) -> None:
        self.root_url = root_url
        self.base_url = root_url + "/v1"
        self.api_keys = api_keys
        self._admin = httpx.Client(base_url=root_url, timeout=30, verify=TLS)

    def close(self) -> None:
        """Close the admin connection."""
        self._admin.close()

    def _admin_call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._admin.request(method, "/_emulator" + path, json=body)
        assert resp.status_code == 200, f"admin {method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def reset(self) -> None:
        """Forget everything and go back to per-poll progression."""
        self._admin_call("POST", "/reset")
        self._admin_call("PUT", "/timing", TimingModel().to_json())

    def sdk_http_client(self, sync: bool, checker: ResponseChecker) -> httpx.Client | httpx.AsyncClient:
        if sync:
            return httpx.Client(timeout=30, verify=TLS, event_hooks=checker.hooks(True))
        return httpx.AsyncClient(timeout=30, verify=TLS, event_hooks=checker.hooks(False))

    def raw_client(self, api_key: str | None, checker: ResponseChecker) -> httpx.Client:
        key = self.api_keys[0] if api_key is None else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.root_url, headers=headers, timeout=30, verify=TLS, event_hooks=checker.hooks(True)
        )

    def step(self, batch_id: str, lines: int | None = None) -> dict[str, Any]:
        body = {} if lines is None else {"lines": lines}
        result: dict[str, Any] = self._admin_call("POST", f"/batches/{batch_id}/step", body)
        return result

    def advance(self, seconds: float) -> None:
        self._admin_call("POST", "/clock/advance", {"seconds": seconds})

    def add_fault(self, **rule: Any) -> None:
        self._admin_call("POST", "/faults", rule)

    def set_timing(self, **changes: Any) -> None:
        self._admin_call("PUT", "/timing", changes)

    def set_mutations(self, *names: str) -> None:
        self._admin_call("PUT", "/mutations", {"enabled": list(names)})


# ---------------------------------------------------------------------------------------
# The async SDK, driven from sync test code


async def _await(aw: Any) -> Any:
    return await aw


async def _next(agen: Any) -> tuple[bool, Any]:
    try:
        return True, await agen.__anext__()
    except StopAsyncIteration:
        return False, None


class AsyncDriven:
    """Wraps an `openai.AsyncOpenAI` (or one of its resources) so sync code can call it.

    Every coroutine runs on `portal`'s event loop; an `AsyncPaginator` becomes a sync
    iterable that pages through `async for`, and its attributes are the first page's. The
    test body is written once, against the sync interface, and runs for both SDK flavours.
    """

    def __init__(self, inner: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        self._inner = inner
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if callable(value):
            return functools.partial(self._call, value)
        if type(value).__module__.startswith("openai.resources"):
            return AsyncDriven(value, self._portal)
        return value

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._resolve(fn(*args, **kwargs))

    def _resolve(self, result: Any) -> Any:
        if inspect.isawaitable(result):
            # An AsyncPaginator is awaitable too: like the sync SDK's list(), fetch the
            # first page now (so errors raise here), then page on through iteration.
            return self._resolve(self._portal.call(_await, result))
        if hasattr(result, "__aiter__"):
            return _DrivenPage(result, self._portal)
        return result


class _DrivenPage(AsyncDriven):
    """A sync view of an async page: its attributes, and iteration over every page's items."""

    def __iter__(self) -> Iterator[Any]:
        agen = self._inner.__aiter__()
        try:
            while True:
                more, item = self._portal.call(_next, agen)
                if not more:
                    return
                yield item
        finally:
            if hasattr(agen, "aclose"):
                self._portal.call(agen.aclose)


# ---------------------------------------------------------------------------------------
# What a test holds


class Harness:
    """One target and one SDK flavour; makes clients and closes them afterwards."""

    def __init__(self, target: Target, mode: str, portal: anyio.from_thread.BlockingPortal | None) -> None:
        self.target = target
        self.mode = mode
        self.checker = ResponseChecker()
        self._portal = portal
        self._sync_clients: list[openai.OpenAI | httpx.Client] = []
        self._async_clients: list[openai.AsyncOpenAI] = []

    @property
    def id(self) -> str:
        """e.g. `inproc-async`."""
        return f"{self.target.kind}-{self.mode}"

    @property
    def key(self) -> str:
        """The first accepted API key."""
        return self.target.api_keys[0]

    @property
    def other_key(self) -> str:
        """A second accepted API key (another owner)."""
        return self.target.api_keys[1]

    def client(self, api_key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        """An SDK client of this flavour (sync, or async driven through the portal).

        `max_retries` defaults to 0; `project=` sends the OpenAI-Project header.
        """
        kwargs.setdefault("max_retries", 0)
        key = self.key if api_key is None else api_key
        if self.mode == "sync":
            sync_client = openai.OpenAI(
                api_key=key,
                base_url=self.target.base_url,
                http_client=self.target.sdk_http_client(True, self.checker),  # type: ignore[arg-type]
                **kwargs,
            )
            self._sync_clients.append(sync_client)
            return sync_client
        assert self._portal is not None
        async_client = openai.AsyncOpenAI(
            api_key=key,
            base_url=self.target.base_url,
            http_client=self.target.sdk_http_client(False, self.checker),  # type: ignore[arg-type]
            **kwargs,
        )
        self._async_clients.append(async_client)
        return AsyncDriven(async_client, self._portal)  # type: ignore[return-value]

    def raw(self, api_key: str | None = None) -> httpx.Client:
        """A sync httpx client rooted at the origin (paths start with /v1 or /_emulator)."""
        client = self.target.raw_client(api_key, self.checker)
        self._sync_clients.append(client)
        return client

    def close(self) -> None:
        """Close every client made."""
        for c in self._sync_clients:
            c.close()
        if self._portal is not None:
            for ac in self._async_clients:
                self._portal.call(ac.close)
        self._sync_clients.clear()
        self._async_clients.clear()


# ---------------------------------------------------------------------------------------
# `batchconf serve` as a subprocess


@dataclass
class ServerProcess:
    """A `python -m emulator.cli serve ...` child; stdout and stderr go to files."""

    proc: Any
    root_url: str
    stdout_path: Any
    stderr_path: Any

    def stdout(self) -> str:
        """What the server printed so far."""
        return str(self.stdout_path.read_text())

    def stderr(self) -> str:
        """What the server logged so far."""
        return str(self.stderr_path.read_text())

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll GET /_emulator/info until it answers 200 (bounded; sleeps between attempts)."""
        import time

        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2, verify=TLS) as probe:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}: {self.stderr()[-2000:]}")
                try:
                    if probe.get(self.root_url + "/_emulator/info").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)  # waiting for a process to bind its port, not emulating time
        raise AssertionError(f"server not ready within {timeout} s: {self.stderr()[-2000:]}")

    def stop(self) -> int:
        """SIGTERM, then wait (kill after 10 s); the exit code."""
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return int(self.proc.returncode)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: list[str], workdir: Any, env: dict[str, str] | None = None) -> ServerProcess:
    """Start `batchconf serve` on a free 127.0.0.1 port (not yet waited for)."""
    import os
    import subprocess
    import sys

    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if k != "BATCHCONF_API_KEYS"}
    full_env.update(env or {})
    out, err = workdir / f"serve-{port}.out", workdir / f"serve-{port}.err"
    with out.open("w") as out_f, err.open("w") as err_f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulator.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=out_f,
            stderr=err_f,
            stdin=subprocess.DEVNULL,
            env=full_env,
        )
    return ServerProcess(proc, f"http://127.0.0.1:{port}", out, err)


class ProfileCopy:
    """`make("openai-small", {"209715200": "1000"})`: the path of an edited openai.toml copy."""

    def __init__(self, folder: Any) -> None:
        self.folder = folder

    def make(self, name: str, replacements: dict[str, str]) -> Any:
        """Write the copy as `<name>.toml` with [profile] name renamed to match; its path."""
        from importlib.resources import files

        text = (files("schemas") / "profiles" / "openai.toml").read_text()
        text = text.replace('name = "openai"', f'name = "{name}"', 1)
        for old, new in replacements.items():
            assert old in text, f"{old!r} not in openai.toml"
            text = text.replace(old, new)
        path = self.folder / f"{name}.toml"
        path.write_text(text)
        return path
