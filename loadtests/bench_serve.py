"""Benchmark: the served emulator against a bare ASGI app under the same uvicorn, with wrk.

Not a test. Three operations are loaded with `wrk` (a C load generator: a Python client
would be the bottleneck, not the server):

- `GET /v1/batches/{id}` on a completed batch (auth, lookup, catch-up, serialization);
- `GET /v1/batches?limit=20` (a page of 20 completed batches);
- `POST /v1/batches` (a JSON create body naming an uploaded file; a new batch each time).

Each is loaded on `batchconf serve` (started here on 127.0.0.1, a free port, default
options) and on a bare Starlette app that answers every request with the emulator's own
answer to the same request, captured first (same status, same body size), run by the same
uvicorn settings (`uvicorn.Config(app, log_level="warning", lifespan="off")`, its default
loop and HTTP parser) in a child process. Runs alternate, emulator then bare, `--rounds`
times per operation, so background drift hits both alike; the medians are printed with
p50/p99 latency and the ratio emulator/bare of the median requests/s.

    python loadtests/bench_serve.py                          # 2 threads, 32 connections, 5 s, 3 rounds
    python loadtests/bench_serve.py --ops get --rounds 5
    python loadtests/bench_serve.py --json                   # one JSON line at the end
    python loadtests/bench_serve.py --serve-arg=--state=store --serve-arg=--s3-endpoint-url=http://...

wrk must be on PATH (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`);
without it the script says so and exits 2. Exit 1 when a run saw socket errors or non-2xx
answers (the figures would be meaningless), or, with `--check-targets`, when a ratio is
under its target (GET 0.70, list and create 0.50).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
OPS = ("get", "list", "create")
#: The issue's targets: the emulator's requests/s as a share of the bare app's.
TARGETS = {"get": 0.70, "list": 0.50, "create": 0.50}
WRK_MISSING = (
    "bench_serve: wrk is not on PATH. Install it: `apt-get install -y wrk` (Debian/Ubuntu), "
    "`brew install wrk` (macOS), or build it from https://github.com/wg/wrk; or name it with --wrk"
)
_ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; `--ops` is split and checked against `OPS`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--ops", default=",".join(OPS), help=f"comma-separated operations among {', '.join(OPS)}")
    p.add_argument("--rounds", type=int, default=3, help="runs per operation and target, alternating (default 3)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--list-size", type=int, default=20, help="batches created for the list page (default 20)")
    p.add_argument("--wrk", default=None, help="the wrk executable (default: wrk on PATH)")
    p.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `batchconf serve` (repeatable; write --serve-arg=--flag=value)",
    )
    p.add_argument("--check-targets", action="store_true", help="exit 1 when a ratio is under its target")
    p.add_argument("--json", action="store_true", help="print one JSON line with every run and the medians")
    p.add_argument("--bare-server", metavar="BODIES", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    unknown = [o for o in ops if o not in OPS]
    if unknown or not ops:
        p.error(f"--ops: unknown {unknown or ops}; choose among {', '.join(OPS)}")
    if args.rounds < 1 or args.duration <= 0 or args.threads < 1 or args.connections < args.threads:
        p.error("--rounds >= 1, --duration > 0, --threads >= 1 and --connections >= --threads")
    if not 1 <= args.list_size <= 100:
        p.error("--list-size must be between 1 and 100")
    args.ops = ops
    return args


# -- the bare app ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Canned:
    """One captured answer: status and body, replayed by the bare app."""

    status: int
    body: bytes


def bare_app(answers: dict[str, Canned]) -> Any:
    """A Starlette app answering `answers["get"]` on `GET /v1/batches/{id}`, `answers["list"]`
    on `GET /v1/batches` and `answers["create"]` on `POST /v1/batches` (after reading the
    request body, as the emulator must)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def reply(c: Canned) -> Response:
        return Response(c.body, status_code=c.status, media_type="application/json")

    async def retrieve(request: Request) -> Response:
        return reply(answers["get"])

    async def list_page(request: Request) -> Response:
        return reply(answers["list"])

    async def create(request: Request) -> Response:
        await request.body()
        return reply(answers["create"])

    return Starlette(
        routes=[
            Route("/v1/batches", list_page, methods=["GET"]),
            Route("/v1/batches", create, methods=["POST"]),
            Route("/v1/batches/{batch_id}", retrieve, methods=["GET"]),
        ]
    )


def uvicorn_config(app: Any, port: int) -> Any:
    """The uvicorn settings `batchconf serve` uses (its defaults: log level warning, no lifespan)."""
    import uvicorn

    return uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="off")


def run_bare_server(bodies_path: str) -> int:
    """Child process: serve the bare app on a free port; print `port N` once listening."""
    import socket

    import uvicorn

    raw = json.loads(Path(bodies_path).read_text())
    answers = {k: Canned(int(v["status"]), v["body"].encode()) for k, v in raw.items()}
    sock = socket.socket()
    sock.bind((HOST, 0))
    print(f"port {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn_config(bare_app(answers), 0)).run(sockets=[sock])
    return 0


# -- the emulator -----------------------------------------------------------------------------


class Emulator:
    """`batchconf serve` in a child process on a free port, with a generated key."""

    def __init__(self, extra: list[str], log: Path) -> None:
        self.key = "sk-bench-" + secrets.token_hex(12)
        env = {**os.environ, "BATCHCONF_API_KEYS": self.key}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "emulator.cli", "serve", "--host", HOST, "--port", "0", *extra]
        self._log = log.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, env=env)
        self.port = _read_port(self.proc, rb"on http://127\.0\.0\.1:(\d+)")
        self.url = f"http://{HOST}:{self.port}"
        # The banner comes once the socket is bound, before uvicorn listens on it.
        _wait_listening(self.url)

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json") -> Canned:
        req = urllib.request.Request(self.url + path, data=body, method=method)
        req.add_header("Authorization", f"Bearer {self.key}")
        if body is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Canned(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            return Canned(exc.code, exc.read())

    def upload(self, data: bytes) -> str:
        boundary = "bench" + secrets.token_hex(8)
        form = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
                "Content-Type: application/jsonl\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        got = self.call("POST", "/v1/files", form, f"multipart/form-data; boundary={boundary}")
        if got.status != 200:
            raise SystemExit(f"bench_serve: upload answered {got.status}: {got.body[:300]!r}")
        return str(json.loads(got.body)["id"])

    def completed_batches(self, create_body: bytes, count: int, timeout: float = 60.0) -> list[str]:
        """`count` new batches, once all of them are `completed` (created first, then polled
        together: under timed progression each takes its own time)."""
        ids: list[str] = []
        for _ in range(count):
            got = self.call("POST", "/v1/batches", create_body)
            if got.status != 200:
                raise SystemExit(f"bench_serve: create answered {got.status}: {got.body[:300]!r}")
            ids.append(str(json.loads(got.body)["id"]))
        waiting = set(ids)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for batch_id in sorted(waiting):
                status = json.loads(self.call("GET", f"/v1/batches/{batch_id}").body)["status"]
                if status == "completed":
                    waiting.discard(batch_id)
                elif status in ("failed", "expired", "cancelled"):
                    raise SystemExit(f"bench_serve: a setup batch ended {status}")
            time.sleep(0.05)
        if waiting:
            raise SystemExit(f"bench_serve: {len(waiting)} setup batches did not complete in {timeout:.0f} s")
        return ids

    def stop(self) -> None:
        _stop(self.proc)
        self._log.close()


def _read_port(proc: subprocess.Popen[bytes], pattern: bytes, timeout: float = 60.0) -> int:
    """The port a child prints on stdout; its stdout is drained afterwards so it never blocks."""
    assert proc.stdout is not None
    found: list[int] = []
    ready = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = re.search(pattern, line)
            if m and not found:
                found.append(int(m.group(1)))
                ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(timeout) or not found:
        _stop(proc)
        raise SystemExit(f"bench_serve: a server did not start (exit {proc.poll()}); see its log")
    return found[0]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/v1/batches/x", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench_serve: {url} is not listening")


def input_jsonl(lines: int = 3) -> bytes:
    """A small chat batch input."""
    return b"".join(
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
            }
        ).encode()
        + b"\n"
        for i in range(lines)
    )


# -- wrk ----------------------------------------------------------------------------------------


def wrk_script(method: str, headers: dict[str, str], body: bytes | None) -> str:
    """A wrk Lua script: the request, and a `done` hook printing one `BENCH {json}` line."""
    lines = [f'wrk.method = "{method}"']
    for name, value in headers.items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body.decode())}")
    lines.append(
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        '  io.write(string.format(\'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
        '"socket_errors": %d, "non2xx": %d}\\n\', summary.requests, summary.duration, '
        "latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))\n"
        "end"
    )
    return "\n".join(lines) + "\n"


def _lua_string(text: str) -> str:
    # A long bracket string needs no escaping, as long as its closing bracket is not inside.
    level = 0
    while "]" + "=" * level + "]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


@dataclass
class Run:
    """One wrk run's figures."""

    target: str
    op: str
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non2xx: int


def run_wrk(wrk: str, args: argparse.Namespace, url: str, script: Path, target: str, op: str) -> Run:
    """One wrk run against `url` with `script`."""
    cmd = [
        wrk,
        "-t",
        str(args.threads),
        "-c",
        str(args.connections),
        "-d",
        f"{args.duration:g}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60, check=False)
    m = re.search(r"^BENCH (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or m is None:
        raise SystemExit(f"bench_serve: wrk failed ({out.returncode}): {out.stderr[-500:] or out.stdout[-500:]}")
    d = json.loads(m.group(1))
    return Run(
        target,
        op,
        d["requests"] / (d["duration_us"] / 1e6),
        d["p50_us"] / 1000,
        d["p99_us"] / 1000,
        d["socket_errors"],
        d["non2xx"],
    )


# -- main -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server:
        return run_bare_server(args.bare_server)
    wrk = args.wrk or shutil.which("wrk")
    if not wrk or not shutil.which(wrk):
        print(WRK_MISSING, file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench_serve."))
    emu = Emulator(args.serve_arg, work / "emulator.log")
    bare: subprocess.Popen[bytes] | None = None
    try:
        file_id = emu.upload(input_jsonl())
        create_body = json.dumps(
            {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        ).encode()
        batch_id = emu.completed_batches(create_body, args.list_size)[-1]
        requests = {
            "get": ("GET", f"/v1/batches/{batch_id}", None),
            "list": ("GET", f"/v1/batches?limit={args.list_size}", None),
            "create": ("POST", "/v1/batches", create_body),
        }
        answers = {op: emu.call(method, path, body) for op, (method, path, body) in requests.items()}
        for op, got in answers.items():
            if got.status != 200:
                raise SystemExit(f"bench_serve: {op} answered {got.status}: {got.body[:300]!r}")
        bodies = work / "bodies.json"
        bodies.write_text(json.dumps({k: {"status": v.status, "body": v.body.decode()} for k, v in answers.items()}))
        bare = subprocess.Popen(
            [sys.executable, __file__, "--bare-server", str(bodies)],
            stdout=subprocess.PIPE,
            stderr=(work / "bare.log").open("wb"),
        )
        bare_port = _read_port(bare, rb"^port (\d+)")
        bare_url = f"http://{HOST}:{bare_port}"
        _wait_listening(bare_url)
        headers = {"Authorization": f"Bearer {emu.key}"}
        runs: list[Run] = []
        for op in args.ops:
            method, path, body = requests[op]
            h = {**headers, "Content-Type": "application/json"} if body is not None else headers
            script = work / f"{op}.lua"
            script.write_text(wrk_script(method, h, body))
            for i in range(args.rounds):
                for target, base in (("emulator", emu.url), ("bare", bare_url)):
                    run = run_wrk(wrk, args, base + path, script, target, op)
                    runs.append(run)
                    print(
                        f"{op:6} round {i + 1} {target:8} {run.rps:9.0f} req/s  p50 {run.p50_ms:6.2f} ms  "
                        f"p99 {run.p99_ms:6.2f} ms  errors {run.socket_errors}  non-2xx {run.non2xx}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        emu.stop()
        if bare is not None:
            _stop(bare)
    return report(args, runs, {op: len(a.body) for op, a in answers.items()})


def report(args: argparse.Namespace, runs: list[Run], sizes: dict[str, int]) -> int:
    """Print the table (and the JSON line); the exit code."""
    rows: list[dict[str, Any]] = []
    for op in args.ops:
        row: dict[str, Any] = {"op": op, "body_bytes": sizes[op], "target": TARGETS[op]}
        for target in ("emulator", "bare"):
            mine = [r for r in runs if r.op == op and r.target == target]
            row[target] = {
                "rps": statistics.median(r.rps for r in mine),
                "p50_ms": statistics.median(r.p50_ms for r in mine),
                "p99_ms": statistics.median(r.p99_ms for r in mine),
                "socket_errors": sum(r.socket_errors for r in mine),
                "non2xx": sum(r.non2xx for r in mine),
            }
        row["ratio"] = row["emulator"]["rps"] / row["bare"]["rps"]
        rows.append(row)
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, medians of {args.rounds} alternating runs")
    print(
        f"{'operation':28} {'bytes':>6} {'emulator req/s':>15} {'p50/p99 ms':>13} {'bare req/s':>11} "
        f"{'p50/p99 ms':>13} {'ratio':>6} target"
    )
    labels = {
        "get": "GET /v1/batches/{id}",
        "list": f"GET /v1/batches?limit={args.list_size}",
        "create": "POST /v1/batches",
    }
    bad = False
    missed = False
    for row in rows:
        e, b = row["emulator"], row["bare"]
        met = row["ratio"] >= row["target"]
        missed |= not met
        bad |= bool(e["socket_errors"] or e["non2xx"] or b["socket_errors"] or b["non2xx"])
        print(
            f"{labels[row['op']]:28} {row['body_bytes']:>6} {e['rps']:>15.0f} "
            f"{e['p50_ms']:>6.2f}/{e['p99_ms']:<6.2f} {b['rps']:>11.0f} {b['p50_ms']:>6.2f}/{b['p99_ms']:<6.2f} "
            f"{row['ratio']:>6.2f} >= {row['target']:.2f} {'met' if met else 'MISSED'}"
        )
    if bad:
        print("bench_serve: some runs saw socket errors or non-2xx answers; the figures are not comparable")
    if args.json:
        print(json.dumps({"rows": rows, "runs": [r.__dict__ for r in runs]}))
    return 1 if bad or (missed and args.check_targets) else 0


if __name__ == "__main__":
    sys.exit(main())
