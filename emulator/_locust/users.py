"""Locust users for each served dialect, one class per operation plus the batch authors.

Every HTTP call is recorded under its operation's name (`upload_file`, `create_batch`,
`retrieve_batch`, `list_batches`, `cancel_batch`, `list_files`, `file_content`,
`batch_results`; S3 calls as `put_object` / `get_object`), so Locust's stats, CSV and HTML
read per operation. Requests to the OpenAI-compatible surface of a ScaiGrid server carry
the prefix `compat.`.

Per dialect (`USERS[dialect]`):

- an author [4] that runs the whole flow (submit, poll until terminal, fetch the results)
  and audits it, and a canceller [1] that cancels at once or after one poll, then audits;
- one user per read operation [1 each]: retrieve a recent batch, list batches, list files,
  fetch a recent result file.

Pseudo-requests (never HTTP, kept apart from the HTTP totals):
- `AUDIT lost-nothing (<status>)`: one per finished batch; a failure when a submitted
  custom_id is missing or duplicated across the results, an unknown one appears, or the
  counts disagree with the files. Its `response_length` is the lines it accounted for.
- `FLOW time_to_terminal`: create to terminal status, in ms.
- `SUBMIT lines_submitted`: `response_length` = input lines sent (the request budget).

Importing this module imports locust (gevent's monkey-patching): only a Locust process may
import it (through locustfile.py).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import time
import uuid
from collections import deque
from typing import Any, ClassVar
from urllib.parse import urlsplit

import gevent
from audit import AuditFailure, audit_problems
from locust import FastHttpUser, between, task

__all__ = ["USERS", "object_address"]

API_KEY_ENV = "BATCHCONF_API_KEY"
KEYS_ENV = "BATCHCONF_API_KEYS"
LINES = max(1, int(os.environ.get("BATCHCONF_LINES", "10")))
POLL_TIMEOUT = float(os.environ.get("BATCHCONF_POLL_TIMEOUT", "30"))
#: Input lines this Locust process may submit (0: no limit); a URL target gets one.
MAX_LINES = int(os.environ.get("BATCHCONF_MAX_LINES", "0") or 0)
#: The profile's `output.unfinished_on_cancel` (`error_file`, `dropped`, ...).
CANCEL_DROPS = os.environ.get("BATCHCONF_UNFINISHED_ON_CANCEL", "") == "dropped"
_MAX_POLLS = 1000


def _keys() -> list[str]:
    many = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    return many or [os.environ.get(API_KEY_ENV, "")]


_KEYS = _keys()
_key_turn = itertools.count()
_submitted = 0
#: Recent batch ids and result references, for the read-only users (per process).
#: Each with the auth header of its owner: another key's batch is not found (404).
_recent_batches: deque[tuple[str, str, dict[str, str]]] = deque(maxlen=200)
_recent_results: deque[tuple[str, str, str, dict[str, str]]] = deque(maxlen=200)


def redact(text: str) -> str:
    """`text` without any API key in it, cut to 300 characters."""
    for key in _KEYS:
        if key:
            text = text.replace(key, "***")
    return text[:300]


def reserve(lines: int) -> bool:
    """Count `lines` against this process's budget; False (nothing counted) when they do not fit."""
    global _submitted
    if MAX_LINES and _submitted + lines > MAX_LINES:
        return False
    _submitted += lines
    return True


def _jsonl(data: bytes) -> list[dict[str, Any]] | None:
    out = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        out.append(obj if isinstance(obj, dict) else {})
    return out


class _Api(FastHttpUser):
    """Shared plumbing: one key per user, one recorded request per call."""

    abstract = True
    wait_time = between(0.05, 0.25)
    connection_timeout = 10.0
    network_timeout = 60.0
    #: The API prefix, and the prefix of the names in Locust's stats.
    base: ClassVar[str] = "/v1"
    label: ClassVar[str] = ""
    terminal: ClassVar[frozenset[str]] = frozenset({"completed", "failed", "expired", "cancelled"})
    endpoint: ClassVar[str] = "/v1/chat/completions"

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {_KEYS[next(_key_turn) % len(_KEYS)]}"}
        self.tag = uuid.uuid4().hex[:10]
        self.seq = 0

    # -- plumbing ------------------------------------------------------------------------

    def op(self, name: str) -> str:
        return self.label + name

    def event(self, kind: str, name: str, ms: float, length: int, exc: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type=kind, name=name, response_time=ms, response_length=length, exception=exc, context={}
        )

    def call(self, method: str, path: str, op: str, **kwargs: Any) -> dict[str, Any] | None:
        """A JSON object from `method path`, recorded as `op`; None (a recorded failure) otherwise."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        with self.client.request(method, path, name=self.op(op), headers=headers, catch_response=True, **kwargs) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {redact(r.text or '')}")
                return None
            try:
                body = r.json()
            except ValueError:
                r.failure("response is not JSON")
                return None
            if not isinstance(body, dict):
                r.failure("response is not a JSON object")
                return None
            return body

    def raw(self, path: str, op: str) -> bytes | None:
        with self.client.get(path, name=self.op(op), headers=self.auth, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {redact(r.text or '')}")
                return None
            return r.content or b""

    def new_ids(self) -> list[str]:
        self.seq += 1
        return [f"{self.tag}-{self.seq}-{i}" for i in range(LINES)]

    def input_lines(self, ids: list[str]) -> bytes:
        return b"".join(
            b'{"custom_id":"%s","method":"POST","url":"%s","body":{"model":"gpt-4o-mini",'
            b'"messages":[{"role":"user","content":"load test line %d says hello"}],"max_tokens":32}}\n'
            % (cid.encode(), self.endpoint.encode(), i)
            for i, cid in enumerate(ids)
        )

    # -- what each dialect provides -----------------------------------------------------

    def submit(self, ids: list[str]) -> str | None:
        """Send the input and create the batch; its id."""
        raise NotImplementedError

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def counts(self, batch: dict[str, Any]) -> dict[str, Any]:
        """total / completed / failed of a batch object."""
        raise NotImplementedError

    def results(self, batch: dict[str, Any]) -> list[tuple[str, bool]] | None:
        """(custom_id, succeeded) per result line; None (recorded) when they cannot be read."""
        raise NotImplementedError

    def list_batches(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def fetch_result(self, ref: str, kind: str) -> None:
        """Fetch one recent result file (the read-only user)."""
        raise NotImplementedError

    # -- the flow ------------------------------------------------------------------------

    def poll(self, batch_id: str) -> dict[str, Any] | None:
        """Retrieve until terminal (bounded by POLL_TIMEOUT); backs off when nothing moves."""
        deadline = time.monotonic() + POLL_TIMEOUT
        last = None
        for _ in range(_MAX_POLLS):
            b = self.retrieve(batch_id)
            if b is None:
                return None
            if b.get("status") in self.terminal:
                return b
            if time.monotonic() > deadline:
                break
            if b.get("status") == last:
                gevent.sleep(0.2)
            last = b.get("status")
        self.event("AUDIT", "poll timeout", 0.0, 0, AuditFailure(f"batch {batch_id} not terminal in {POLL_TIMEOUT}s"))
        return None

    def run_flow(self, cancel_after: int | None = None) -> None:
        ids = self.new_ids()
        if not reserve(len(ids)):
            # The budget is spent: submit nothing more, keep the user idle until the run ends.
            gevent.sleep(1.0)
            return
        self.event("SUBMIT", "lines_submitted", 0.0, len(ids))
        started = time.perf_counter()
        batch_id = self.submit(ids)
        if batch_id is None:
            return
        _recent_batches.append((self.label, batch_id, self.auth))
        if cancel_after is not None:
            for _ in range(cancel_after):
                if self.retrieve(batch_id) is None:
                    return
            if self.cancel(batch_id) is None:
                return
        batch = self.poll(batch_id)
        if batch is None:
            return
        self.event("FLOW", self.op("time_to_terminal"), (time.perf_counter() - started) * 1000, len(ids))
        self.audit(ids, batch)

    def audit(self, ids: list[str], batch: dict[str, Any]) -> None:
        t = time.perf_counter()
        status = str(batch.get("status"))
        name = f"lost-nothing ({status})"
        results = self.results(batch)
        if results is None:
            self.event("AUDIT", name, 0.0, 0, AuditFailure(f"batch {batch.get('id')}: results unreadable"))
            return
        problems = audit_problems(ids, status, self.counts(batch), results, cancel_drops=CANCEL_DROPS)
        exc = AuditFailure(redact(f"batch {batch.get('id')}: " + "; ".join(problems))) if problems else None
        self.event("AUDIT", name, (time.perf_counter() - t) * 1000, len(results), exc)


# -- OpenAI-compatible ------------------------------------------------------------------


class _OpenAI(_Api):
    abstract = True

    def upload(self, data: bytes) -> str | None:
        boundary = "batchconf" + uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="load.jsonl"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        out = self.call("POST", f"{self.base}/files", "upload_file", data=body, headers=headers)
        return self.ident(out, "upload_file")

    def ident(self, body: dict[str, Any] | None, op: str) -> str | None:
        if body is None:
            return None
        ident = body.get("id")
        if not isinstance(ident, str) or not ident:
            self.event("AUDIT", self.op(op) + " (no id)", 0.0, 0, AuditFailure("response has no id"))
            return None
        return ident

    def create(self, input_file_id: str) -> str | None:
        payload = {"input_file_id": input_file_id, "endpoint": self.endpoint, "completion_window": "24h"}
        return self.ident(self.call("POST", f"{self.base}/batches", "create_batch", json=payload), "create_batch")

    def submit(self, ids: list[str]) -> str | None:
        file_id = self.upload(self.input_lines(ids))
        return self.create(file_id) if file_id else None

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        return self.call("GET", f"{self.base}/batches/{batch_id}", "retrieve_batch")

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        return self.call("POST", f"{self.base}/batches/{batch_id}/cancel", "cancel_batch")

    def counts(self, batch: dict[str, Any]) -> dict[str, Any]:
        rc = batch.get("request_counts")
        return rc if isinstance(rc, dict) else {}

    def get_file(self, ref: str) -> bytes | None:
        return self.raw(f"{self.base}/files/{ref}/content", "file_content")

    def results(self, batch: dict[str, Any]) -> list[tuple[str, bool]] | None:
        out: list[tuple[str, bool]] = []
        for field, ok in (("output_file_id", True), ("error_file_id", False)):
            ref = batch.get(field)
            if not isinstance(ref, str) or not ref:
                continue
            _recent_results.append((self.label, ref, field, self.auth))
            data = self.get_file(ref)
            lines = _jsonl(data) if data is not None else None
            if lines is None:
                return None
            out += [(str(obj.get("custom_id")), ok) for obj in lines]
        return out

    def list_batches(self) -> list[dict[str, Any]]:
        out = self.call("GET", f"{self.base}/batches?limit=20", "list_batches")
        return list(out.get("data", [])) if out else []

    def list_files(self) -> None:
        self.call("GET", f"{self.base}/files?limit=20", "list_files")

    def fetch_result(self, ref: str, kind: str) -> None:
        self.get_file(ref)


# -- ScaiGrid's native API ----------------------------------------------------------------


class _ScaiGrid(_Api):
    abstract = True
    terminal = frozenset({"completed", "failed", "cancelled"})
    endpoint = "/v1/inference/chat"

    def submit(self, ids: list[str]) -> str | None:
        payload = {"input_file_base64": base64.b64encode(self.input_lines(ids)).decode()}
        body = self.call("POST", f"{self.base}/inference/batch", "create_batch", json=payload)
        ident = body.get("id") if body else None
        return ident if isinstance(ident, str) and ident else None

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        return self.call("GET", f"{self.base}/inference/batch/{batch_id}", "retrieve_batch")

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        return self.call("POST", f"{self.base}/inference/batch/{batch_id}/cancel", "cancel_batch")

    def counts(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {
            "total": batch.get("total_count"),
            "completed": batch.get("completed_count"),
            "failed": batch.get("failed_count"),
        }

    def results(self, batch: dict[str, Any]) -> list[tuple[str, bool]] | None:
        url = batch.get("results_url")
        if not isinstance(url, str) or not url:
            return []
        path = urlsplit(url).path
        _recent_results.append((self.label, path, "results", self.auth))
        data = self.raw(path, "batch_results")
        lines = _jsonl(data) if data is not None else None
        if lines is None:
            return None
        return [(str(obj.get("custom_id")), obj.get("status") == "ok") for obj in lines]

    def list_batches(self) -> list[dict[str, Any]]:
        out = self.call("GET", f"{self.base}/inference/batch?limit=20", "list_batches")
        return list(out.get("data", [])) if out else []

    def fetch_result(self, ref: str, kind: str) -> None:
        self.raw(ref, "batch_results")


# -- Scaleway: the OpenAI calls, input and results in the user's bucket ------------------

_s3_client: Any = None


def _s3() -> Any:
    """One boto3 client per Locust process, on BATCHCONF_S3_ENDPOINT_URL."""
    global _s3_client
    if _s3_client is None:
        import boto3
        from botocore.config import Config

        _s3_client = boto3.client(
            "s3",
            endpoint_url=os.environ.get("BATCHCONF_S3_ENDPOINT_URL") or None,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=50,
            ),
        )
    return _s3_client


def object_address(url: str, bucket: str) -> tuple[str, str] | None:
    """(bucket, key) of an object URL: `s3://b/k`, `https://b.s3.<region>.scw.cloud/k`, or a
    path-style URL of the endpoint (`http://host/b/k`)."""
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if parts.scheme == "s3":
        return (parts.netloc, key) if parts.netloc and key else None
    host = parts.hostname or ""
    if ".s3." in host:
        return host.split(".s3.", 1)[0], key
    first, _, rest = key.partition("/")
    return (first, rest) if first and rest else None


class _Scaleway(_OpenAI):
    abstract = True

    def s3_call(self, op: str, fn: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            out = fn(**kwargs)
        except Exception as exc:  # boto3's errors are many classes; each is a failed request
            self.event("S3", op, (time.perf_counter() - t) * 1000, 0, exc)
            return None
        self.event("S3", op, (time.perf_counter() - t) * 1000, 0)
        return out

    def submit(self, ids: list[str]) -> str | None:
        bucket = os.environ.get("BATCHCONF_S3_BUCKET", "")
        prefix = os.environ.get("BATCHCONF_S3_PREFIX", "")
        key = f"{prefix}batchconf-load/{self.tag}/{self.seq}/input.jsonl"
        if self.s3_call("put_object", _s3().put_object, Bucket=bucket, Key=key, Body=self.input_lines(ids)) is None:
            return None
        return self.create(f"s3://{bucket}/{key}")

    def get_file(self, ref: str) -> bytes | None:
        where = object_address(ref, os.environ.get("BATCHCONF_S3_BUCKET", ""))
        if where is None:
            self.event("S3", "get_object", 0.0, 0, AuditFailure(f"not an object URL: {redact(ref)}"))
            return None
        out = self.s3_call("get_object", _s3().get_object, Bucket=where[0], Key=where[1])
        return out["Body"].read() if out is not None else None

    def list_files(self) -> None:  # no Files API: the read users list batches instead
        self.list_batches()


# -- the user classes ----------------------------------------------------------------------


def _users(flow: type[_Api], prefix: str, *, files_api: bool, label: str = "", base: str = "/v1") -> list[type]:
    """The author, the canceller and one user per read operation of one dialect."""
    attrs: dict[str, Any] = {"abstract": False, "label": label, "base": base}

    class Author(flow):  # type: ignore[valid-type,misc]
        """Submit, poll until terminal, fetch the results, audit."""

        weight = 4

        @task
        def whole_flow(self) -> None:
            self.run_flow()

    class Canceller(flow):  # type: ignore[valid-type,misc]
        """Submit, cancel (at once, or after one poll), poll until terminal, audit."""

        weight = 1

        @task
        def cancel_flow(self) -> None:
            self.run_flow(cancel_after=random.choice((0, 1)))

    class RetrieveBatch(flow):  # type: ignore[valid-type,misc]
        """Retrieve a recent batch (one from the list when none is known yet)."""

        weight = 1

        @task
        def retrieve_batch(self) -> None:
            mine = [(b, auth) for lbl, b, auth in _recent_batches if lbl == self.label]
            if mine:
                batch_id, self.auth = random.choice(mine)
                self.retrieve(batch_id)
                return
            page = self.list_batches()
            ident = page[0].get("id") if page else None
            if isinstance(ident, str):
                self.retrieve(ident)

    class ListBatches(flow):  # type: ignore[valid-type,misc]
        """List the newest batches."""

        weight = 1

        @task
        def list_batches_task(self) -> None:
            self.list_batches()

    class FetchResults(flow):  # type: ignore[valid-type,misc]
        """Fetch a recent result file (idle until an author has produced one)."""

        weight = 1

        @task
        def fetch_results(self) -> None:
            mine = [(ref, kind, auth) for lbl, ref, kind, auth in _recent_results if lbl == self.label]
            if mine:
                ref, kind, self.auth = random.choice(mine)
                self.fetch_result(ref, kind)
            else:
                gevent.sleep(0.2)

    made: list[type] = [Author, Canceller, RetrieveBatch, ListBatches, FetchResults]
    if files_api:

        class ListFiles(flow):  # type: ignore[valid-type,misc]
            """List the newest files."""

            weight = 1

            @task
            def list_files_task(self) -> None:
                self.list_files()

        made.append(ListFiles)
    for cls in made:
        for k, v in attrs.items():
            setattr(cls, k, v)
        cls.__name__ = cls.__qualname__ = prefix + cls.__name__
    return made


USERS: dict[str, list[type]] = {
    "openai": _users(_OpenAI, "OpenAI", files_api=True),
    "scaigrid": _users(_ScaiGrid, "ScaiGrid", files_api=False)
    + _users(_OpenAI, "ScaiGridCompat", files_api=True, label="compat.", base="/oai/v1"),
    "scaleway": _users(_Scaleway, "Scaleway", files_api=False),
}
