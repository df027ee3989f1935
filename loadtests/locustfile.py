"""Locust users for a batch inference API (the emulator by default; run through run_load.py).

Users (FastHttpUser, weights in brackets):

- `LifecycleUser` [4]: upload a small JSONL (multipart `POST /files`), create a batch, poll
  `GET /batches/{id}` until the batch is terminal, download its output and error files;
- `CancelUser` [1]: upload, create, cancel (at once, or after one poll), poll until terminal,
  download;
- `BrowseUser` [1]: list batches, retrieve one of them, list files.

The "lost-nothing" audit: every lifecycle and cancel user remembers the custom_ids it
submitted, and checks that the downloaded output + error files hold each of them exactly
once and nothing else, and that the line counts match `request_counts` (a batch cancelled
before it read its input, `request_counts.total` 0, owes no lines). A miss is reported
as a Locust failure of request type `AUDIT`, so it shows in the stats, the CSV and the exit
code like any failed request.

Environment:
- `BATCHCONF_API_KEY` (required): the key sent as `Authorization: Bearer ...`; never printed
  (anything echoed back by a server is redacted before it reaches a failure message);
- `BATCHCONF_BASE_PATH` (default `/v1`): the API prefix;
- `BATCHCONF_LINES` (default 10): request lines per uploaded file;
- `BATCHCONF_SHAPE` (`steady`, `ramp`, `spike`; default none): the load shape (shapes.py);
- `BATCHCONF_POLL_TIMEOUT` (default 30 s): the most a user polls one batch.

Run it through `python loadtests/run_load.py` (which starts the emulator on 127.0.0.1), or:
`BATCHCONF_API_KEY=... locust -f loadtests/locustfile.py --headless -u 10 -r 10 -t 20s
--host http://127.0.0.1:8000`. Importing locust monkey-patches the process with gevent:
never import this file from anything pytest collects; run Locust as a subprocess.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, between, events, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import SHAPES

API_KEY_ENV = "BATCHCONF_API_KEY"
BASE = os.environ.get("BATCHCONF_BASE_PATH", "/v1").rstrip("/")
LINES = max(1, int(os.environ.get("BATCHCONF_LINES", "10")))
POLL_TIMEOUT = float(os.environ.get("BATCHCONF_POLL_TIMEOUT", "30"))
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_MAX_POLLS = 1000

_shape_name = os.environ.get("BATCHCONF_SHAPE", "").strip().lower()
if _shape_name and _shape_name != "none":
    if _shape_name not in SHAPES:
        raise SystemExit(f"BATCHCONF_SHAPE must be one of {sorted(SHAPES)} or none, got {_shape_name!r}")
    # Locust uses the shape classes it finds in this module: expose exactly the chosen one.
    globals()[SHAPES[_shape_name].__name__] = SHAPES[_shape_name]


def _api_key() -> str:
    return os.environ.get(API_KEY_ENV, "")


def _redact(text: str) -> str:
    key = _api_key()
    if key:
        text = text.replace(key, "***")
    return text[:300]


@events.test_start.add_listener
def _require_key(environment: Environment, **_: Any) -> None:
    if not _api_key():
        print(f"locustfile: set {API_KEY_ENV} to the target's API key", file=sys.stderr)
        if environment.runner is not None:
            environment.runner.quit()


@events.quitting.add_listener
def _write_summary(environment: Environment, **_: Any) -> None:
    """Per-name rows and HTTP-only totals (audits apart), to $BATCHCONF_SUMMARY as JSON.

    Written when Locust quits, so it includes the requests of the stop timeout (the CSV is
    rewritten once a second and may miss the last ones). Locust's "Aggregated" row mixes the
    AUDIT pseudo-requests into the HTTP latencies; the "http" totals merge the histograms of
    real requests only.
    """
    from locust.runners import WorkerRunner
    from locust.stats import StatsEntry

    path = os.environ.get("BATCHCONF_SUMMARY")
    if not path or isinstance(environment.runner, WorkerRunner) or environment.stats is None:
        return
    http = StatsEntry(environment.stats, "HTTP", "")
    audit = StatsEntry(environment.stats, "AUDIT", "")
    for entry in environment.stats.entries.values():
        (audit if entry.method == "AUDIT" else http).extend(entry)

    def figures(e: StatsEntry) -> dict[str, Any]:
        return {
            "requests": e.num_requests,
            "failures": e.num_failures,
            "rps": round(e.total_rps, 1),
            "p50_ms": e.get_response_time_percentile(0.5) if e.num_requests else None,
            "p95_ms": e.get_response_time_percentile(0.95) if e.num_requests else None,
        }

    rows = [
        {"type": e.method, "name": e.name, **figures(e)}
        for e in sorted(environment.stats.entries.values(), key=lambda e: (e.method == "AUDIT", e.name))
    ]
    with open(path, "w") as fh:
        json.dump({"http": figures(http), "audit": figures(audit), "rows": rows}, fh)


class AuditFailure(AssertionError):
    """A result file lost, duplicated or invented a request."""


class _BatchApiUser(FastHttpUser):
    """Shared helpers; each call records one Locust request under a templated name."""

    abstract = True
    wait_time = between(0.05, 0.25)
    connection_timeout = 10.0
    network_timeout = 60.0

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {_api_key()}"}
        self.tag = uuid.uuid4().hex[:10]
        self.seq = 0

    # -- operations ----------------------------------------------------------------------

    def upload(self, custom_ids: list[str]) -> str | None:
        """Upload a JSONL file with one chat request per custom_id; returns the file id."""
        data = b"".join(
            b'{"custom_id":"%s","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",'
            b'"messages":[{"role":"user","content":"load test line %d says hello"}],"max_tokens":32}}\n'
            % (cid.encode(), i)
            for i, cid in enumerate(custom_ids)
        )
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
        headers = {**self.auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self._json_id("POST", f"{BASE}/files", f"POST {BASE}/files", data=body, headers=headers)

    def create(self, file_id: str) -> str | None:
        payload = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        return self._json_id("POST", f"{BASE}/batches", f"POST {BASE}/batches", json=payload, headers=self.auth)

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        return self._json("GET", f"{BASE}/batches/{batch_id}", f"GET {BASE}/batches/{{id}}", headers=self.auth)

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        return self._json(
            "POST", f"{BASE}/batches/{batch_id}/cancel", f"POST {BASE}/batches/{{id}}/cancel", headers=self.auth
        )

    def poll(self, batch_id: str) -> dict[str, Any] | None:
        """Retrieve until terminal (bounded by POLL_TIMEOUT); backs off when nothing moves."""
        deadline = time.monotonic() + POLL_TIMEOUT
        last = None
        for _ in range(_MAX_POLLS):
            b = self.retrieve(batch_id)
            if b is None:
                return None
            if b.get("status") in TERMINAL:
                return b
            if time.monotonic() > deadline:
                break
            if b.get("status") == last:
                gevent.sleep(0.2)
            last = b.get("status")
        self.audit_event("poll timeout", 0.0, 0, AuditFailure(f"batch {batch_id} not terminal after {POLL_TIMEOUT}s"))
        return None

    def download(self, file_id: str) -> bytes | None:
        name = f"GET {BASE}/files/{{id}}/content"
        with self.client.get(f"{BASE}/files/{file_id}/content", name=name, headers=self.auth, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {_redact(r.text or '')}")
                return None
            return r.content or b""

    def list_batches(self) -> list[dict[str, Any]]:
        out = self._json("GET", f"{BASE}/batches?limit=20", f"GET {BASE}/batches", headers=self.auth)
        return list(out.get("data", [])) if out else []

    def list_files(self) -> None:
        self._json("GET", f"{BASE}/files?limit=20", f"GET {BASE}/files", headers=self.auth)

    # -- the lost-nothing audit -----------------------------------------------------------

    def audit_event(self, name: str, ms: float, length: int, exc: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="AUDIT",
            name=name,
            response_time=ms,
            response_length=length,
            exception=exc,
            context={},
        )

    def audit(self, submitted: list[str], batch: dict[str, Any]) -> None:
        """Every submitted custom_id exactly once across output + error, nothing else."""
        t = time.perf_counter()
        status = batch.get("status")
        name = f"lost-nothing ({status})"
        seen: Counter[str] = Counter()
        output_lines = error_lines = 0
        for field in ("output_file_id", "error_file_id"):
            fid = batch.get(field)
            if not fid:
                continue
            data = self.download(fid)
            if data is None:
                self.audit_event(name, 0.0, 0, AuditFailure(f"could not download {field} {fid}"))
                return
            for line in data.splitlines():
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    cid = obj.get("custom_id") if isinstance(obj, dict) else None
                except ValueError:
                    self.audit_event(name, 0.0, 0, AuditFailure(f"{field} holds a line that is not JSON"))
                    return
                seen[str(cid)] += 1
                if field == "output_file_id":
                    output_lines += 1
                else:
                    error_lines += 1
        wanted = set(submitted)
        problems = []
        rc = batch.get("request_counts") or {}
        # A batch cancelled before it read its input (request_counts.total 0) owes no lines;
        # otherwise every submitted line must come back once, as a result or an error line.
        owed = submitted if not (status == "cancelled" and not rc.get("total")) else []
        missing = [c for c in owed if seen[c] == 0]
        dups = [c for c, n in seen.items() if n > 1 and c in wanted]
        strangers = [c for c in seen if c not in wanted]
        if status == "failed":
            problems.append("batch failed: its valid requests were never run")
        if owed and rc.get("total") != len(submitted):
            problems.append(f"request_counts.total={rc.get('total')} for {len(submitted)} submitted lines")
        if missing:
            problems.append(f"{len(missing)} custom_ids missing (e.g. {missing[0]})")
        if dups:
            problems.append(f"{len(dups)} custom_ids more than once (e.g. {dups[0]})")
        if strangers:
            problems.append(f"{len(strangers)} custom_ids never submitted (e.g. {_redact(strangers[0])})")
        if rc.get("completed") != output_lines or rc.get("failed") != error_lines:
            problems.append(
                f"request_counts completed={rc.get('completed')} failed={rc.get('failed')} but the files hold "
                f"{output_lines} output and {error_lines} error lines"
            )
        ms = (time.perf_counter() - t) * 1000
        exc = AuditFailure(f"batch {batch.get('id')}: " + "; ".join(problems)) if problems else None
        self.audit_event(name, ms, output_lines + error_lines, exc)

    # -- plumbing ------------------------------------------------------------------------

    def new_ids(self) -> list[str]:
        self.seq += 1
        return [f"{self.tag}-{self.seq}-{i}" for i in range(LINES)]

    def _json(self, method: str, path: str, name: str, **kwargs: Any) -> dict[str, Any] | None:
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {_redact(r.text or '')}")
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

    def _json_id(self, method: str, path: str, name: str, **kwargs: Any) -> str | None:
        body = self._json(method, path, name, **kwargs)
        if body is None:
            return None
        ident = body.get("id")
        if not isinstance(ident, str) or not ident:
            self.audit_event(name + " (no id)", 0.0, 0, AuditFailure("response has no id"))
            return None
        return ident


class LifecycleUser(_BatchApiUser):
    """Upload, create, poll until terminal, download both files, audit."""

    weight = 4

    @task
    def lifecycle(self) -> None:
        ids = self.new_ids()
        file_id = self.upload(ids)
        if file_id is None:
            return
        batch_id = self.create(file_id)
        if batch_id is None:
            return
        batch = self.poll(batch_id)
        if batch is not None:
            self.audit(ids, batch)


class CancelUser(_BatchApiUser):
    """Upload, create, cancel (at once, or after one poll: in progress under per-poll
    progression), poll until terminal, download, audit."""

    weight = 1

    @task
    def cancel_early(self) -> None:
        self._cancel_after(polls=0)

    @task
    def cancel_in_progress(self) -> None:
        self._cancel_after(polls=1)

    def _cancel_after(self, polls: int) -> None:
        ids = self.new_ids()
        file_id = self.upload(ids)
        if file_id is None:
            return
        batch_id = self.create(file_id)
        if batch_id is None:
            return
        for _ in range(polls):
            if self.retrieve(batch_id) is None:
                return
        if self.cancel(batch_id) is None:
            return
        batch = self.poll(batch_id)
        if batch is not None:
            self.audit(ids, batch)


class BrowseUser(_BatchApiUser):
    """List batches, retrieve one of them, list files."""

    weight = 1

    @task(3)
    def browse_batches(self) -> None:
        page = self.list_batches()
        if page:
            ident = page[len(page) // 2].get("id")
            if isinstance(ident, str):
                self.retrieve(ident)

    @task(1)
    def browse_files(self) -> None:
        self.list_files()
