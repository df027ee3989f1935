"""Run the Locust scenarios headless against the emulator (or another server on this machine).

Without `--host`, starts `batchconf serve --host 127.0.0.1 --port <free> --progression
per_poll` with a freshly generated API key (handed over in the environment, so it shows in
no process list and is never printed), runs

    locust -f loadtests/locustfile.py --headless -u N -r R -t 20s --host ... --csv DIR/run

as a subprocess with a hard timeout, prints Locust's summary (requests, failures, rps,
p50/p95 per operation and in all, plus the lost-nothing audit) and the CSV path, stops the
server, and exits non-zero if anything failed (a failed request, a failed audit, Locust's
own exit code, or the timeout).

`--host` may name a server that is already running, but only on this machine
(127.0.0.1 or localhost); its key comes from BATCHCONF_API_KEY.

    python loadtests/run_load.py                          # 20 users, 20 s, no shape
    python loadtests/run_load.py --shape spike -u 40 -t 30s
    python loadtests/run_load.py --host http://127.0.0.1:8000   # BATCHCONF_API_KEY must be set
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
ALLOWED_HOSTS = {"127.0.0.1", "localhost"}
KEY_ENV = "BATCHCONF_API_KEY"
GRACE_S = 60


def parse_seconds(text: str) -> int:
    """Locust's -t syntax (`20s`, `2m`, `1h30m`, `45`) in seconds."""
    if text.isdigit():
        return int(text)
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not parts or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 20s, 2m)")
    h, m, s = (int(g or 0) for g in parts.groups())
    return h * 3600 + m * 60 + s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def checked_host(url: str) -> str:
    """The URL, if it points at this machine; otherwise exit 2."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or parsed.hostname not in ALLOWED_HOSTS:
        raise SystemExit(f"run_load: refusing --host {url!r}: only http(s)://127.0.0.1 or localhost are allowed")
    return url.rstrip("/")


def wait_ready(url: str, key: str, proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """Until `GET {url}/v1/batches?limit=1` answers 200 (bounded)."""
    deadline = time.monotonic() + timeout
    req = urllib.request.Request(f"{url}/v1/batches?limit=1", headers={"Authorization": f"Bearer {key}"})
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"run_load: the emulator exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code in (401, 403):
                raise SystemExit(f"run_load: the target answered {exc.code}: check {KEY_ENV}") from None
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise SystemExit(f"run_load: {url} not ready after {timeout:.0f} s ({last})")


def enable_mutations(url: str, names: list[str]) -> None:
    """`PUT /_emulator/mutations` (the admin surface needs no key)."""
    import json

    req = urllib.request.Request(
        f"{url}/_emulator/mutations",
        data=json.dumps({"enabled": names}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            print(f"mutations enabled: {json.loads(resp.read())['enabled']}")
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"run_load: could not enable {names}: HTTP {exc.code} {exc.read()[:300]!r}") from None


def _read_summary(path: Path) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "http" in data else None


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _proc_cpu(pid: int) -> float:
    """utime + stime of a running process (Linux /proc), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


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


def print_summary(summary: dict[str, Any] | None, stats_csv: Path, failures_csv: Path) -> tuple[int, int, int]:
    """Print the per-operation table and failures; returns (failures, audits, audit failures).

    From the locustfile's summary.json (written when Locust quits), else from Locust's CSV.
    """
    if summary:
        rows = summary["rows"]
    else:
        rows = [
            {
                "type": r["Type"],
                "name": r["Name"],
                "requests": int(r["Request Count"]),
                "failures": int(r["Failure Count"]),
                "rps": float(r["Requests/s"]),
                "p50_ms": r["50%"],
                "p95_ms": r["95%"],
            }
            for r in (csv.DictReader(stats_csv.open()) if stats_csv.exists() else [])
            if r["Name"] != "Aggregated"
        ]
    head = f"{'type':6s} {'name':34s} {'requests':>9s} {'fails':>6s} {'rps':>8s} {'p50 ms':>7s} {'p95 ms':>7s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['type']:6s} {r['name'][:34]:34s} {r['requests']:9d} {r['failures']:6d} {r['rps']:8.1f} "
            f"{r['p50_ms'] if r['p50_ms'] is not None else '-':>7} {r['p95_ms'] if r['p95_ms'] is not None else '-':>7}"
        )
    failures = sum(r["failures"] for r in rows)
    audits = sum(r["requests"] for r in rows if r["type"] == "AUDIT")
    audit_failures = sum(r["failures"] for r in rows if r["type"] == "AUDIT")
    if failures and failures_csv.exists():
        print("failures (first 10 kinds):")
        for f in list(csv.DictReader(failures_csv.open()))[:10]:
            print(f"  {f['Occurrences']:>5s}x {f['Method']} {f['Name']}: {f['Error'][:200]}")
    return failures, audits, audit_failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--host", default=None, help="target base URL on 127.0.0.1/localhost (default: start the emulator)"
    )
    parser.add_argument("-u", "--users", type=int, default=20, help="peak number of users (default 20)")
    parser.add_argument(
        "-r", "--spawn-rate", type=float, default=None, help="users started per second (default = users)"
    )
    parser.add_argument(
        "-t", "--run-time", type=parse_seconds, default="20s", help="duration, Locust syntax (default 20s)"
    )
    parser.add_argument("--shape", choices=("none", "steady", "ramp", "spike"), default="none", help="load shape")
    parser.add_argument("--lines", type=int, default=10, help="request lines per uploaded file (default 10)")
    parser.add_argument("--profile", default="openai", help="emulator profile when run_load starts it (default openai)")
    parser.add_argument(
        "--csv-dir", type=Path, default=None, help="where the CSVs go (default reports/loadtests/<time>)"
    )
    parser.add_argument("--processes", type=int, default=None, help="Locust --processes (default 1 process)")
    parser.add_argument(
        "--mutation",
        action="append",
        default=[],
        metavar="NAME",
        help="enable an emulator mutation first (repeatable; only with the emulator run_load starts): "
        "shows the audit failing the run",
    )
    args = parser.parse_args(argv)
    if isinstance(args.run_time, str):
        args.run_time = parse_seconds(args.run_time)
    if args.users < 1 or args.run_time < 1 or args.lines < 1:
        parser.error("-u, -t and --lines must be >= 1")
    rate = args.spawn_rate or float(args.users)

    out_dir = args.csv_dir or HERE.parent / "reports" / "loadtests" / time.strftime("%Y%m%d-%H%M%S")
    server = None
    if args.host and args.mutation:
        parser.error("--mutation needs the emulator run_load starts (no --host)")
    if args.host:
        host = checked_host(args.host)
        key = os.environ.get(KEY_ENV, "")
        if not key:
            raise SystemExit(f"run_load: --host needs the target's key in {KEY_ENV}")
        wait_ready(host, key, None)
        target = host
        out_dir.mkdir(parents=True, exist_ok=True)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        key = "sk-load-" + secrets.token_hex(16)
        port = free_port()
        target = f"http://127.0.0.1:{port}"
        server = start_emulator(port, key, args.profile, out_dir / "emulator.log")
    try:
        if server is not None:
            wait_ready(target, key, server)
            if args.mutation:
                enable_mutations(target, args.mutation)
        cmd = [
            sys.executable, "-m", "locust",
            "-f", str(LOCUSTFILE),
            "--headless",
            "-u", str(args.users),
            "-r", str(rate),
            "-t", f"{args.run_time}s",
            "--host", target,
            "--csv", str(out_dir / "run"),
            "--only-summary",
            "--loglevel", "WARNING",
            "--stop-timeout", "5",
        ]  # fmt: skip
        if args.processes:
            cmd += ["--processes", str(args.processes)]
        env = {
            **os.environ,
            KEY_ENV: key,
            "BATCHCONF_SHAPE": args.shape,
            "BATCHCONF_LINES": str(args.lines),
            "BATCHCONF_SUMMARY": str(out_dir / "summary.json"),
        }
        shown = " ".join(cmd)
        print(f"target {target} ({'emulator started by run_load, per_poll' if server else 'given --host'})")
        print(f"$ BATCHCONF_SHAPE={args.shape} BATCHCONF_LINES={args.lines} {KEY_ENV}=*** {shown}", flush=True)
        started = time.monotonic()
        children0 = _children_cpu()
        server_cpu0 = _proc_cpu(server.pid) if server is not None else None
        timed_out = False
        with open(out_dir / "locust.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                code = proc.wait(timeout=args.run_time + GRACE_S)
            except subprocess.TimeoutExpired:
                timed_out = True
                stop(proc)
                code = proc.returncode
        wall = time.monotonic() - started
        locust_cpu = _children_cpu() - children0
        server_cpu = _proc_cpu(server.pid) - server_cpu0 if server is not None and server_cpu0 is not None else None
    finally:
        if server is not None:
            stop(server)
    summary = _read_summary(out_dir / "summary.json")
    failures, audits, audit_fail = print_summary(summary, out_dir / "run_stats.csv", out_dir / "run_failures.csv")
    if summary:
        h = summary["http"]
        print(
            f"HTTP: {h['requests']:,} requests, {h['failures']} failures, {h['rps']:.1f} rps, "
            f"p50 {h['p50_ms']} ms, p95 {h['p95_ms']} ms (audits apart)"
        )
        n = max(1, h["requests"])
        cpu = f"CPU during the run: Locust {locust_cpu:.1f} s"
        if server_cpu is not None:
            cpu += f", emulator {server_cpu:.1f} s ({server_cpu / n * 1000:.2f} ms per HTTP request)"
        print(cpu + f", of {wall:.1f} s wall x {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    print(
        f"lost-nothing audits: {audits - audit_fail} passed, {audit_fail} failed; all failures {failures}; "
        f"locust exit {code}, {wall:.1f} s wall"
    )
    print(f"CSV: {out_dir / 'run'}_stats.csv (and _failures.csv, _stats_history.csv); log: {out_dir / 'locust.log'}")
    if timed_out:
        print(f"run_load: Locust did not finish within {args.run_time + GRACE_S} s and was stopped", file=sys.stderr)
        return 1
    if summary is None and not (out_dir / "run_stats.csv").exists():
        print("run_load: Locust wrote no stats; see the log", file=sys.stderr)
        return 1
    return 1 if failures or code != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
