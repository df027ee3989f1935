"""`batchconf load`: Locust, headless and bounded in time, against the emulator or a URL target.

Without `--target-url` it starts `batchconf serve --host 127.0.0.1 --port 0 --progression
per_poll` with generated keys (handed over in the environment: they show in no process
list and are never printed), runs Locust (emulator/_locust/locustfile.py, the users of one
dialect) for `--duration` with Locust's own `--run-time` and a hard timeout on top, stops
both, prints the summary and writes Locust's CSV and HTML reports into `--out`.

Exit status: 0 when every request succeeded and every finished batch passed the
lost-nothing audit; 1 when a request failed unexpectedly, an audit failed, or no batch
finished; 2 on a harness error (Locust missing, the emulator or Locust did not start or
did not stop in time, a refused option or budget).

Against a URL target the run never calls an admin route, and a budget bounds the input
lines it submits (`--max-requests`, default 500, like the suite's): a run whose first wave
(one batch per user) would exceed it is refused, and each Locust process stops submitting
once its share is spent. A `--worker` started by hand (another machine) must be given its
own share with `--max-requests`: it cannot know how many workers share the master's.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_URL_MAX_REQUESTS",
    "DIALECTS",
    "HarnessError",
    "build_parser",
    "exit_status",
    "format_summary",
    "load",
    "parse_duration",
]

DIALECTS = ("openai", "scaigrid", "scaleway")
#: The suite's default budget for a URL target (conformance._config), in input lines.
DEFAULT_URL_MAX_REQUESTS = 500
INSTALL_HINT = "pip install -e '.[load]'"
#: Seconds Locust may take beyond --duration (stop timeout, report writing) before it is killed.
GRACE_SECONDS = 30.0
_PSEUDO = ("AUDIT", "FLOW", "SUBMIT")
_READY_PATHS = {
    "openai": "/v1/batches?limit=1",
    "scaigrid": "/v1/inference/batch?limit=1",
    "scaleway": "/v1/batches?limit=1",
}
_SERVE_LINE = re.compile(r" on (http://127\.0\.0\.1:\d+)/")


class HarnessError(Exception):
    """The run cannot be made (exit 2); the message says why."""


def parse_duration(text: str) -> int:
    """Locust's duration syntax (`30s`, `2m`, `1h30m`, `45`) in seconds (at least 1)."""
    text = text.strip()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
        if not parts or not any(parts.groups()):
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 30s, 2m)")
        h, m, s = (int(g or 0) for g in parts.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds < 1:
        raise argparse.ArgumentTypeError("a duration of at least 1 s")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The options of `batchconf load`."""
    p = argparse.ArgumentParser(prog="batchconf load", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=("none", "steady", "ramp", "spike"), default="steady", help="load shape")
    p.add_argument("--duration", type=parse_duration, default=30, help="run time, Locust syntax (default 30s)")
    p.add_argument("--users", type=int, default=10, help="peak number of users (default 10)")
    p.add_argument("--spawn-rate", type=float, default=None, help="users started per second (default: --users)")
    p.add_argument("--lines", type=int, default=10, help="request lines per batch (default 10)")
    p.add_argument("--target-url", default=None, help="a running target (default: start the emulator on 127.0.0.1)")
    p.add_argument("--api-key-env", default=None, metavar="VAR", help="variable holding the target's key (never shown)")
    p.add_argument(
        "--emulator-profile",
        choices=DIALECTS,
        default="openai",
        help="profile of the emulator started (default openai)",
    )
    p.add_argument("--dialect", choices=DIALECTS, default=None, help="a URL target's dialect (default: openai)")
    p.add_argument(
        "--max-requests",
        type=int,
        default=None,
        help=f"input lines the run may submit (URL target default {DEFAULT_URL_MAX_REQUESTS}; emulator: no limit)",
    )
    p.add_argument("--s3-endpoint-url", default=None, help="scaleway URL target: the S3 endpoint of the bucket")
    p.add_argument("--s3-bucket", default=None, help="scaleway URL target: an existing bucket the target reads")
    p.add_argument("--s3-prefix", default="", help="scaleway: the prefix inputs go under (default none)")
    p.add_argument("--out", type=Path, default=Path("load-reports"), help="reports folder (default load-reports/)")
    dist = p.add_argument_group("distributed mode (Locust master and workers)")
    dist.add_argument("--workers", type=int, default=0, help="start a master and N local worker processes")
    dist.add_argument(
        "--master", action="store_true", help="be a master only: wait for --expect-workers workers to connect"
    )
    dist.add_argument("--expect-workers", type=int, default=1, help="--master: workers to wait for (default 1)")
    dist.add_argument("--master-bind-host", default="127.0.0.1", help="--master: interface workers connect to")
    dist.add_argument("--master-port", type=int, default=5557, help="--master/--worker: the master's port (5557)")
    dist.add_argument("--worker", action="store_true", help="be a worker only, of the master at --master-host")
    dist.add_argument("--master-host", default="127.0.0.1", help="--worker: the master's host")
    return p


@dataclass
class _Run:
    target: str
    dialect: str
    env: dict[str, str]
    out: Path


def _locustfile() -> Path:
    path = Path(__file__).resolve().parents[1] / "_locust" / "locustfile.py"
    if not path.is_file():
        raise HarnessError(f"this install lacks batchconf's Locust users ({path}); reinstall batchconf")
    return path


def _get(url: str, key: str | None, timeout: float = 2.0) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
        return json.loads(resp.read())


def _wait_ready(url: str, key: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise HarnessError(f"the emulator exited with {proc.returncode} before it answered")
        try:
            _get(url, key)
            return
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise HarnessError(f"the target answered {exc.code}: check the key") from None
            last = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise HarnessError(f"{url} did not answer within {timeout:.0f} s ({last})")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_emulator(profile: str, keys: list[str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`batchconf serve` on a free port of 127.0.0.1; (process, root URL)."""
    cmd = [sys.executable, "-m", "emulator.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--profile", profile, "--progression", "per_poll"]
    env = {**os.environ, "BATCHCONF_API_KEYS": ",".join(keys)}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _SERVE_LINE.search(log.read_text(errors="replace"))
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            raise HarnessError(f"the emulator exited with {proc.returncode}; see {log}")
        time.sleep(0.05)
    _stop(proc)
    raise HarnessError(f"the emulator printed no address within 60 s; see {log}")


def _make_bucket(endpoint: str) -> str:
    """A fresh bucket on the emulator's S3 endpoint (a moto server on 127.0.0.1)."""
    import boto3

    bucket = "batchconf-load-" + secrets.token_hex(6)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    client.create_bucket(Bucket=bucket)
    return bucket


def _locust_cmds(args: argparse.Namespace, run: _Run, locustfile: Path) -> list[list[str]]:
    """The Locust command lines: one process, or a master first and its local workers."""
    base = [sys.executable, "-m", "locust", "-f", str(locustfile), "--loglevel", "WARNING"]
    if args.worker:
        return [[*base, "--worker", "--master-host", args.master_host, "--master-port", str(args.master_port)]]
    rate = args.spawn_rate or float(args.users)
    main = [
        *base,
        "--headless",
        "-u", str(args.users),
        "-r", str(rate),
        "--run-time", f"{args.duration}s",
        "--host", run.target,
        "--csv", str(run.out / "locust"),
        "--html", str(run.out / "report.html"),
        "--only-summary",
        "--stop-timeout", "5",
    ]  # fmt: skip
    if not (args.workers or args.master):
        return [main]
    workers = args.expect_workers if args.master else args.workers
    bind = args.master_bind_host if args.master else "127.0.0.1"
    main += ["--master", "--expect-workers", str(workers), "--expect-workers-max-wait", "30"]
    main += ["--master-bind-host", bind, "--master-bind-port", str(args.master_port)]
    local = (
        []
        if args.master
        else [[*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(args.master_port)]] * args.workers
    )
    return [main, *local]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_summary(out: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "rows" in data else None


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def format_summary(summary: dict[str, Any]) -> str:
    """The table `batchconf load` prints: one row per operation, then the totals, the
    batches and lines processed, the time to terminal and the audit's verdict."""
    head = f"{'operation':34s} {'type':6s} {'requests':>9s} {'fails':>6s} {'req/s':>8s} "
    head += f"{'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s}"
    lines = [head, "-" * len(head)]
    for r in summary["rows"]:
        if r["type"] in _PSEUDO:
            continue
        lines.append(
            f"{r['name'][:34]:34s} {r['type'][:6]:6s} {r['requests']:9d} {r['failures']:6d} {r['rps']:8.1f} "
            f"{_ms(r['p50_ms']):>7s} {_ms(r['p95_ms']):>7s} {_ms(r['p99_ms']):>7s}"
        )
    h, audit, flow, submit = summary["http"], summary["audit"], summary["flow"], summary["submit"]
    lines.append("-" * len(head))
    lines.append(
        f"{'all requests':34s} {'':6s} {h['requests']:9d} {h['failures']:6d} {h['rps']:8.1f} "
        f"{_ms(h['p50_ms']):>7s} {_ms(h['p95_ms']):>7s} {_ms(h['p99_ms']):>7s}"
    )
    lines.append(
        f"batches finished and audited: {audit['requests']}; lines processed: {audit['length']}; "
        f"lines submitted: {submit['length']}"
    )
    lines.append(
        f"time to terminal (create to terminal status): p50 {_ms(flow['p50_ms'])} ms, p95 {_ms(flow['p95_ms'])} ms, "
        f"p99 {_ms(flow['p99_ms'])} ms over {flow['requests']} batches"
    )
    return "\n".join(lines)


def exit_status(summary: dict[str, Any]) -> tuple[int, str]:
    """(0 or 1, the audit's verdict line) for a finished run's summary."""
    audit, http = summary["audit"], summary["http"]
    failures = http["failures"]  # every real request (HTTP and S3), pseudo-requests apart
    if audit["failures"]:
        return 1, f"audit: FAILED: {audit['failures']} of {audit['requests']} finished batches lost or invented lines"
    if audit["requests"] == 0:
        return 1, "audit: NOTHING AUDITED: no batch finished during the run"
    verdict = f"audit: PASSED: {audit['requests']} batches, every custom_id exactly once, counts agree"
    if failures:
        return 1, verdict + f"; but {failures} requests failed"
    return 0, verdict


def _print_errors(summary: dict[str, Any], out: Path) -> None:
    errors = summary.get("errors") or []
    if not errors and (out / "locust_failures.csv").exists():
        errors = [
            {"method": f["Method"], "name": f["Name"], "error": f["Error"], "occurrences": f["Occurrences"]}
            for f in csv.DictReader((out / "locust_failures.csv").open())
        ]
    if errors:
        print("failures (first 10 kinds):")
        for e in errors[:10]:
            print(f"  {e['occurrences']:>5}x {e['method']} {e['name']}: {str(e['error'])[:200]}")


def _unfinished_on_cancel(profile: str) -> str:
    """What the profile says a cancelled batch does with its unfinished requests (the
    audit owes no line for them when they are "dropped")."""
    from schemas import load_profile

    return str(load_profile(profile).output.unfinished_on_cancel)


def _prepare(args: argparse.Namespace) -> tuple[_Run, list[subprocess.Popen[bytes]]]:
    """The target (the emulator started here, or the URL) and Locust's environment."""
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHCONF_")}
    lines = args.lines
    shape = "none" if args.profile == "none" else args.profile
    env.update({"BATCHCONF_LINES": str(lines), "BATCHCONF_SHAPE": shape})
    env["BATCHCONF_SUMMARY"] = str(args.out / "summary.json")
    if args.target_url or args.worker:
        dialect = args.dialect or "openai"
        if not args.api_key_env:
            raise HarnessError("a URL target needs --api-key-env VAR naming the variable that holds its key")
        key = os.environ.get(args.api_key_env, "")
        if not key:
            raise HarnessError(f"{args.api_key_env} is not set (--api-key-env)")
        target = (args.target_url or "").rstrip("/")
        if args.target_url and urlsplit(target).scheme not in ("http", "https"):
            raise HarnessError(f"--target-url must be an http(s) URL, got {args.target_url!r}")
        if args.worker and args.max_requests is None:
            # A worker started by hand cannot learn how many others share the master's
            # budget: each would spend all of it. It must be given its own share.
            raise HarnessError(
                "a --worker spends its own budget: give it --max-requests N, its share of the run's "
                "budget (the master's --max-requests divided by --expect-workers)"
            )
        budget = DEFAULT_URL_MAX_REQUESTS if args.max_requests is None else args.max_requests
        env["BATCHCONF_API_KEY"] = key
        if dialect == "scaleway":
            if not (args.s3_endpoint_url and args.s3_bucket):
                raise HarnessError("a scaleway URL target needs --s3-endpoint-url and --s3-bucket (a bucket it reads)")
            env.update(BATCHCONF_S3_ENDPOINT_URL=args.s3_endpoint_url, BATCHCONF_S3_BUCKET=args.s3_bucket)
        if target:
            _wait_ready(target + _READY_PATHS[dialect], key, None, timeout=15)
    else:
        dialect = args.emulator_profile
        budget = args.max_requests or 0
        # One key per user (up to 64): a per-key limit on concurrent batches (ScaiGrid: 10)
        # must not be what the run measures.
        keys = ["sk-load-" + secrets.token_hex(16) for _ in range(min(64, max(1, args.users)))]
        proc, target = _start_emulator(dialect, keys, args.out / "emulator.log")
        started.append(proc)
        try:
            _wait_ready(target + _READY_PATHS[dialect], keys[0], proc)
            if dialect == "scaleway":
                s3 = _get(target + "/_emulator/info", None).get("s3_endpoint_url")
                if not s3:
                    raise HarnessError("the emulator names no S3 endpoint in GET /_emulator/info")
                env.update(BATCHCONF_S3_ENDPOINT_URL=s3, BATCHCONF_S3_BUCKET=_make_bucket(s3))
                env.setdefault("AWS_ACCESS_KEY_ID", "testing")
                env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        except BaseException:
            _stop(proc)
            raise
        env["BATCHCONF_API_KEYS"] = ",".join(keys)
    if budget:
        if lines > budget or (args.users * lines > budget and not args.worker):
            raise HarnessError(
                f"refusing to start: {args.users} users x {lines} lines = {args.users * lines} input lines in the "
                f"first wave alone, over the budget of {budget} (--max-requests); lower --users or --lines"
            )
        # A worker started by hand is one process with its own share; local workers and a
        # master's remote ones share the budget.
        processes = 1 if args.worker else max(1, args.expect_workers if args.master else args.workers)
        # Each Locust process counts its own lines: the budget is shared out among them.
        env["BATCHCONF_MAX_LINES"] = str(max(lines, budget // processes))
    env["BATCHCONF_DIALECT"] = dialect
    env["BATCHCONF_UNFINISHED_ON_CANCEL"] = _unfinished_on_cancel(dialect)
    env["BATCHCONF_S3_PREFIX"] = args.s3_prefix
    return _Run(target, dialect, env, args.out), started


def load(argv: Sequence[str]) -> int:
    """Entry point of `batchconf load`: the exit status (0, 1 or 2, as the module says)."""
    args = build_parser().parse_args(list(argv))
    if args.users < 1 or args.lines < 1 or args.workers < 0:
        print("batchconf load: --users and --lines must be >= 1, --workers >= 0", file=sys.stderr)
        return 2
    if args.master and args.worker:
        print("batchconf load: --master and --worker exclude each other", file=sys.stderr)
        return 2
    if importlib.util.find_spec("locust") is None:
        print(f"batchconf load: Locust is not installed: {INSTALL_HINT}", file=sys.stderr)
        return 2
    started: list[subprocess.Popen[bytes]] = []
    try:
        locustfile = _locustfile()
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").unlink(missing_ok=True)
        if args.workers and not args.master:
            args.master_port = _free_port()
        run, started = _prepare(args)
        return _run_locust(args, run, locustfile, started)
    except HarnessError as exc:
        print(f"batchconf load: {exc}", file=sys.stderr)
        return 2
    finally:
        for proc in reversed(started):
            _stop(proc)


def _run_locust(args: argparse.Namespace, run: _Run, locustfile: Path, started: list[subprocess.Popen[bytes]]) -> int:
    cmds = _locust_cmds(args, run, locustfile)
    where = "the emulator started for this run" if not args.target_url else "the given URL"
    if not args.worker:
        print(
            f"batchconf load: {run.dialect} users, shape {args.profile}, {args.users} users, {args.duration} s, "
            f"against {run.target} ({where})",
            flush=True,
        )
    timeout = args.duration + GRACE_SECONDS + (30 if args.workers or args.master else 0)
    began = time.monotonic()
    procs = []
    for i, cmd in enumerate(cmds):
        log = run.out / ("locust.log" if i == 0 else f"locust-worker-{i}.log")
        with open(log, "wb") as fh:
            procs.append(subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=run.env))
    started.extend(procs)
    try:
        code = procs[0].wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"Locust did not finish within {timeout:.0f} s and was stopped; see {run.out}") from None
    for proc in procs[1:]:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(proc)
    if args.worker:
        return 0 if code == 0 else 2 if code not in (0, 1) else 1
    summary = _read_summary(run.out)
    if summary is None:
        tail = (run.out / "locust.log").read_text(errors="replace")[-1500:]
        raise HarnessError(f"Locust (exit {code}) wrote no summary; its log ends:\n{tail}")
    print(format_summary(summary))
    _print_errors(summary, run.out)
    status, verdict = exit_status(summary)
    print(verdict)
    print(
        f"reports: {run.out / 'report.html'}, {run.out / 'locust_stats.csv'} (and _failures, _stats_history), "
        f"{run.out / 'summary.json'}; {time.monotonic() - began:.1f} s"
    )
    return status
