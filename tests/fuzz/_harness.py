"""What every dialect's fuzz test shares: the served emulator, live objects to aim at, the
checks, and the bounds that keep a run short enough for CI.

The emulator runs behind a real socket (uvicorn in a thread, the socket bound before the
thread starts), so schemathesis talks HTTP to it exactly as a client of `batchconf serve`
would. Every response passes:
- `not_a_server_error`: no 5xx;
- `status_code_conformance`, `content_type_conformance`, `response_schema_conformance`: the
  status, the media type and the body are what our document says for that operation;
- `no_traceback_in_body` (ours): nothing of a Python traceback reaches a client;
- `jsonl_lines_conform` (ours): each line of a JSONL body whose media type names a line schema
  (`x-batchconf-jsonl-line`) validates against it;
- no error logged by the server while the request ran (an exception after the response has
  started cannot become a 5xx);
and every request has a timeout, so a hang fails the test instead of stalling CI.
"""

from __future__ import annotations

import base64
import collections
import itertools
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import orjson
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emulator import Emulator

from ._openapi import resolve_pointer

__all__ = [
    "API_KEY",
    "EXAMPLES",
    "REQUEST_TIMEOUT",
    "Live",
    "Served",
    "fuzz_settings",
    "load_schema",
    "run_case",
    "settle_on",
]

#: The key the served emulator accepts (a fake one).
API_KEY = "sk-batchconf-fuzz-0123456789abcdef"
#: Examples per operation and generation mode in the fuzzing phase; more with the variable.
EXAMPLES = int(os.environ.get("BATCHCONF_FUZZ_EXAMPLES", "25"))
#: Seconds a request may take before it counts as a hang.
REQUEST_TIMEOUT = float(os.environ.get("BATCHCONF_FUZZ_TIMEOUT", "10"))

#: What a Python traceback leaves in a body: its header, a frame line, an installed path.
_TRACEBACK = re.compile(r'Traceback \(most recent call last\)|File "[^"\n]+", line \d+|site-packages/')

#: Responses, per surface, operation and status (the size the run's summary reports).
CALLS: dict[str, dict[str, collections.Counter[int]]] = collections.defaultdict(
    lambda: collections.defaultdict(collections.Counter)
)


def fuzz_settings() -> settings:
    """Bounded and derandomized: the same examples on every run, `EXAMPLES` of them."""
    return settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


def load_schema(document: dict[str, Any], keep: Callable[[str, str], bool] | None = None) -> Any:
    """A schemathesis schema of `document`, with only the operations `keep(METHOD, path)`
    accepts (all by default), configured with no project file of the developer's."""
    doc = dict(document)
    if keep is not None:
        paths = {}
        for path, item in doc["paths"].items():
            kept = {
                m: op
                for m, op in item.items()
                if not isinstance(op, dict) or "responses" not in op or keep(m.upper(), path)
            }
            if any(isinstance(op, dict) and "responses" in op for op in kept.values()):
                paths[path] = kept
        doc["paths"] = paths
    return schemathesis.openapi.from_dict(doc, config=schemathesis.Config())


@schemathesis.check
def no_traceback_in_body(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """A body MUST NOT carry a Python traceback, a frame line or an installed path."""
    text = response.content.decode("utf-8", "replace")
    match = _TRACEBACK.search(text)
    if match:
        raise Failure(
            operation=case.operation.label,
            title="Traceback in the response body",
            message=f"The body shows {match.group(0)!r} (HTTP {response.status_code}): {text[:300]!r}",
        )
    return None


@schemathesis.check
def jsonl_lines_conform(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    """Each line of a JSONL body MUST validate against the line schema its media type names."""
    media = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    responses = case.operation.definition.raw.get("responses", {})
    entry = responses.get(str(response.status_code), {})
    document = case.operation.schema.raw_schema
    if "$ref" in entry:
        entry = resolve_pointer(document, entry["$ref"])
    line_schema = entry.get("content", {}).get(media, {}).get("x-batchconf-jsonl-line")
    if line_schema is None:
        return None
    validator = jsonschema.Draft202012Validator({**line_schema, "components": document["components"]})
    for number, line in enumerate(response.content.splitlines(), 1):
        if not line.strip():
            continue
        errors = sorted(validator.iter_errors(orjson.loads(line)), key=str)
        if errors:
            raise Failure(
                operation=case.operation.label,
                title="JSONL line violates its schema",
                message=f"line {number}: {errors[0].message} in {line[:300]!r}",
            )
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    no_traceback_in_body,
    jsonl_lines_conform,
]


class _ErrorLog(logging.Handler):
    """Keeps the ERROR records the server logs (uvicorn's and the emulator's loggers)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        with self._lock_records:
            taken, self.records = self.records, []
        return taken


_LOGGERS = ("uvicorn", "batchconf")


class Served:
    """An ASGI app behind a real socket on 127.0.0.1 (`Served.emulator(profile)` for the
    emulator of a profile, polled per request)."""

    def __init__(self, app: Any, emulator: Emulator | None = None) -> None:
        import uvicorn

        self._emulator = emulator
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.root_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.errors = _ErrorLog()

    @classmethod
    def emulating(cls, profile: str) -> Served:
        """The emulator of `profile`, accepting `API_KEY`, with per-poll progression."""
        emu = Emulator(profile=profile, api_keys=(API_KEY,), progression="per_poll", seed=0)
        return cls(emu.app, emu)

    @property
    def emulator(self) -> Emulator:
        """The emulator served (only for `Served.emulating`)."""
        assert self._emulator is not None, "not an emulator"
        return self._emulator

    def __enter__(self) -> Served:
        for name in _LOGGERS:
            logging.getLogger(name).addHandler(self.errors)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        if self._emulator is not None:
            self._emulator.close()
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(self.errors)

    def client(self, base_path: str) -> httpx.Client:
        """An httpx client with the key, for setting up live objects."""
        return httpx.Client(
            base_url=self.root_url + base_path,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=REQUEST_TIMEOUT,
        )


@dataclass
class Live:
    """Objects that exist on the server, to aim a share of the generated requests at: for
    each path parameter a pool of ids (in different states; `only` gives one operation a
    pool of its own, such as files that may be deleted), and per operation a function that
    makes a generated body refer to them (a create that can succeed). A batch a create
    started is run to its end at once (`settle`), so no quota of unfinished batches fills
    up and turns later creates into 429s."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    only: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    bodies: dict[str, Callable[[dict[str, Any], int], None]] = field(default_factory=dict)
    settle: Callable[[str], None] | None = None
    _turns: collections.Counter[str] = field(default_factory=collections.Counter)

    def aim(self, case: schemathesis.Case) -> None:
        """Every other case of an operation is aimed at live objects, in turn (deterministic:
        the n-th case of an operation always gets the same one)."""
        label = case.operation.label
        turn = self._turns[label]
        self._turns[label] += 1
        if turn % 2:
            return
        pick = turn // 2
        pools = {**self.ids, **self.only.get(label, {})}
        for name in case.path_parameters or {}:
            pool = pools.get(name)
            if pool:
                case.path_parameters[name] = pool[pick % len(pool)]
        shape = self.bodies.get(label)
        if shape is not None and isinstance(case.body, dict):
            shape(case.body, pick)

    def after(self, case: schemathesis.Case, status: int, body: bytes) -> None:
        """Run a batch the request created to its end."""
        if self.settle is None or status != 200 or case.operation.label not in self.bodies:
            return
        created = orjson.loads(body)
        if isinstance(created, dict) and isinstance(created.get("id"), str):
            self.settle(created["id"])


def settle_on(served: Served, terminal: tuple[str, ...]) -> Callable[[str], None]:
    """Step a batch of `served` (in-process, between requests) until its status is terminal."""

    def settle(batch_id: str) -> None:
        for _ in range(20):
            if served.emulator.step(batch_id)["status"] in terminal:
                return
        raise AssertionError(f"batch {batch_id} not terminal after 20 steps")

    return settle


def run_case(
    case: schemathesis.Case, run: str, base_url: str, served: Served, live: Live, timeout: float = REQUEST_TIMEOUT
) -> None:
    """Aim, send (a request slower than `timeout` fails as a hang), and hold the response to
    every check; counted under `run` in the summary (not when empty)."""
    live.aim(case)
    # An error the server logged after an earlier response was sent fails this one.
    _no_errors_logged(served, "after an earlier request")
    response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=timeout)
    if run:
        CALLS[run][case.operation.label][response.status_code] += 1
    _no_errors_logged(served, f"on {case.operation.label}")
    case.validate_response(response, checks=CHECKS)
    live.after(case, response.status_code, response.content)


def _no_errors_logged(served: Served, when: str) -> None:
    logged = served.errors.take()
    assert not logged, f"the server logged {when}: {[r.getMessage() for r in logged]}"


def jsonl(lines: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> bytes:
    """JSON lines, newline-terminated."""
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def b64(data: bytes) -> str:
    """Base64 text of `data`."""
    return base64.b64encode(data).decode()


def poll_until(
    get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], limit: int = 20
) -> dict[str, Any]:
    """Retrieve until `done` (the emulator moves a batch one status per retrieve); bounded."""
    for _ in itertools.repeat(None, limit):
        body = get()
        if done(body):
            return body
    raise AssertionError(f"not done after {limit} retrieves: {body}")
