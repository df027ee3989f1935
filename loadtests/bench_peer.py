"""Benchmark: the served emulator's CPU per batch and per line, side by side with llmock.

Not a test. For each size (`--sizes`, default 1,000 and 10,000 chat lines) this starts, on
127.0.0.1 and a free port each, in child processes:

- batchconf: `python -m emulator.cli serve --host 127.0.0.1 --port P --progression per_poll
  --log-level warning` (the key in `BATCHCONF_API_KEYS`, never on the command line), with the
  code that `python -m emulator` finds from this process's environment and working directory
  (the header prints its path and `git describe`);
- llmock 0.2.2 (a minimal public mock; no key), from its own venv (`--peer-python`), with its
  fixed 3 s batch delay patched out in the server process only:
  `python -c "import llmock.routers.batch as b; b._BATCH_DELAY = 0.0; from llmock.cli import
  app; app([...])" serve --host 127.0.0.1 --port P --log-level warning` (site-packages
  untouched; the same patch as /work/peers/run-llmock.sh with LLMOCK_BATCH_DELAY=0).

Each server is warmed up with one 10-line batch. Then `--repeat` runs (default 5) go in turns,
one server then the other (the order alternating from run to run), so that the machine's drift
hits both alike. One run, through the official `openai` SDK (one client per server, keep-alive):
read the server's CPU time, upload the JSONL, create the batch, retrieve it with no sleep until
it is terminal, download the output and error files, audit them (every custom_id exactly once,
counts agree, status completed), read the server's CPU time again. The input is the same file
for both servers, generated deterministically (bench_batch.generate, seed 1, ~300 B lines).

The server's CPU time is user + system of the whole process (every thread, exited ones too),
read from its POSIX process CPU-time clock (`clock_gettime` on the pid's clock id), which
counts nanoseconds; /proc/PID/stat's utime + stime count 10 ms clock ticks, too coarse for a
1,000-line batch. Both are recorded per run (`--json`); the tick figure is a cross-check.

Printed: every run (wall s, server CPU ms, polls), a table of medians per server and size
(server | lines | wall s | server CPU ms | µs/line | polls), the fit cpu(n) = a + b*n per
server (a: fixed cost per batch in ms, b: µs per line; two sizes give b = (cpu2 - cpu1) /
(n2 - n1), more give a least-squares line), and the lead ratios llmock / batchconf (> 1:
batchconf spends less). `--json` prints one JSON object instead.

    python loadtests/bench_peer.py                       # 1,000 and 10,000 lines, 5 runs each, both servers
    python loadtests/bench_peer.py --repeat 9 --json
    python loadtests/bench_peer.py --no-peer --sizes 20 --repeat 1
    python loadtests/bench_peer.py --peer-python /path/to/venv/bin/python

The peer column is left out, with a note, when no peer python is given or the default one
(/work/peers/venv-llmock/bin/python) does not exist or cannot import llmock. Exit 0 when
every audit passed, 1 when one failed (the figures of that server mean nothing), 2 when a
server did not start.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _load_bench_batch() -> Any:
    # By file path, not by putting loadtests/ on sys.path (its module names, such as `audit`
    # or `users`, would then shadow others' in any process that imports this one).
    spec = importlib.util.spec_from_file_location("bench_batch", Path(__file__).resolve().with_name("bench_batch.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The same input generator, audit and port helper as bench_batch.py.
bench_batch = _load_bench_batch()

HOST = "127.0.0.1"
DEFAULT_PEER_PYTHON = Path("/work/peers/venv-llmock/bin/python")
WARMUP_LINES = 10
POLL_DEADLINE_S = 300.0
READY_TIMEOUT_S = 60.0
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_LLMOCK_MAIN = (
    "import sys\n"
    "import llmock.routers.batch as b\n"
    "b._BATCH_DELAY = 0.0  # the fixed 3 s before a batch is processed\n"
    "from llmock.cli import app\n"
    "app(sys.argv[1:])\n"
)


@dataclass
class ServerSpec:
    """How to start one server and reach it."""

    name: str
    argv: list[str]  # "{port}" is replaced by the port
    env: dict[str, str]
    key: str
    ready_path: str
    version: str
    shown: str  # the command as printed (no key in it)


@dataclass
class Server:
    """One started server: its process, base URL and SDK client."""

    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    client: Any = None
    runs: list[dict[str, Any]] = field(default_factory=list)


def _cpu_clock_id(pid: int) -> int:
    # Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED): the clock of a whole thread group.
    return (~pid << 3) | 2


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all threads, exited ones included),
    nanosecond resolution; falls back to /proc ticks where the process clock is unavailable."""
    try:
        return time.clock_gettime(_cpu_clock_id(pid))
    except OSError:
        return proc_stat_cpu_s(pid)


def proc_stat_cpu_s(pid: int) -> float:
    """utime + stime of process `pid` from /proc/PID/stat (clock ticks, 10 ms at 100 Hz)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid` (their CPU is not in the process clock)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def fit_line(points: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares a, b of y = a + b*x through (x, y) points; with two points, the line
    through them. None with fewer than two distinct x."""
    xs = [float(x) for x, _ in points]
    if len(set(xs)) < 2:
        return None
    mx = statistics.fmean(xs)
    my = statistics.fmean(y for _, y in points)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, (y for _, y in points), strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my - b * mx, b


def code_under_test() -> dict[str, str]:
    """Where `python -m emulator` resolves in a child started like the server (same
    interpreter, environment and working directory), and that tree's `git describe`."""
    proc = subprocess.run(
        [sys.executable, "-c", "import emulator; print(emulator.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    pkg = Path(proc.stdout.strip()).parent
    desc = subprocess.run(
        ["git", "-C", str(pkg), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return {"emulator": str(pkg), "git": desc.stdout.strip() or "(not a git checkout)"}


def batchconf_spec(serve_args: Sequence[str]) -> ServerSpec:
    """`python -m emulator.cli serve` with per-poll progression and a generated key."""
    key = "bench-" + secrets.token_hex(12)
    argv = [sys.executable, "-m", "emulator.cli", "serve", "--host", HOST, "--port", "{port}"]
    argv += ["--progression", "per_poll", "--log-level", "warning", *serve_args]
    import importlib.metadata as md

    try:
        version = md.version("batchconf")
    except md.PackageNotFoundError:
        version = "?"
    return ServerSpec(
        name="batchconf",
        argv=argv,
        # In the environment, not argv: the key never shows in `ps`.
        env={**os.environ, "BATCHCONF_API_KEYS": key},
        key=key,
        ready_path="/v1/batches?limit=1",
        version=version,
        shown="BATCHCONF_API_KEYS=*** " + " ".join(argv),
    )


def llmock_spec(python: Path) -> ServerSpec | str:
    """llmock served by `python` with `_BATCH_DELAY` patched to 0, or why it cannot be."""
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, llmock.routers.batch; print(m.version('llmock'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return f"{python} cannot import llmock: {probe.stderr.strip().splitlines()[-1:]}"
    argv = [str(python), "-c", _LLMOCK_MAIN, "serve", "--host", HOST, "--port", "{port}", "--log-level", "warning"]
    shown = (
        f'{python} -c "import llmock.routers.batch as b; b._BATCH_DELAY = 0.0; from llmock.cli import app; '
        f'app(sys.argv[1:])" serve --host {HOST} --port {{port}} --log-level warning'
    )
    # Its env without our PYTHONPATH, so that its venv alone decides what it imports.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return ServerSpec(
        name="llmock",
        argv=argv,
        env=env,
        key="sk-no-key-checked",
        ready_path="/health",
        version=probe.stdout.strip() + " (_BATCH_DELAY=0)",
        shown=shown,
    )


def start(spec: ServerSpec) -> Server:
    """Start `spec` on a free port and wait until it answers (bounded)."""
    port = bench_batch.free_port()
    fd, log = tempfile.mkstemp(prefix=f"bench-peer-{spec.name}-", suffix=".log")
    argv = [a.replace("{port}", str(port)) for a in spec.argv]
    with os.fdopen(fd, "wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=spec.env)
    server = Server(spec, proc, f"http://{HOST}:{port}", Path(log))
    req = urllib.request.Request(server.url + spec.ready_path, headers={"Authorization": f"Bearer {spec.key}"})
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    import openai

                    server.client = openai.OpenAI(
                        base_url=server.url + "/v1", api_key=spec.key, max_retries=0, timeout=600
                    )
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    tail = Path(log).read_text(errors="replace")[-3000:]
    stop(server)
    raise RuntimeError(f"{spec.name} did not answer {spec.ready_path} within {READY_TIMEOUT_S:.0f} s:\n{tail}")


def stop(server: Server) -> None:
    """End the server process this script started (by its pid) and drop its log."""
    if server.client is not None:
        server.client.close()
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    server.log.unlink(missing_ok=True)


def run_batch(server: Server, path: Path, lines: int) -> dict[str, Any]:
    """One audited batch end to end; the server's CPU time around it."""
    client = server.client
    pid = server.proc.pid
    cpu0, ticks0 = process_cpu_s(pid), proc_stat_cpu_s(pid)
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        f = client.files.create(file=(path.name, fh), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    statuses = [b.status]
    polls = 0
    deadline = time.monotonic() + POLL_DEADLINE_S
    while b.status not in TERMINAL and time.monotonic() < deadline:
        b = client.batches.retrieve(b.id)  # no sleep: the poll rate is the client's
        polls += 1
        if b.status != statuses[-1]:
            statuses.append(b.status)
    audit = bench_batch.Audit(lines)
    for fid, output in ((b.output_file_id, True), (b.error_file_id, False)):
        if fid:
            with client.files.with_streaming_response.content(fid) as resp:
                for line in bench_batch.split_lines(resp.iter_bytes()):
                    audit.feed(line, output=output)
    wall = time.perf_counter() - t0
    cpu, ticks = process_cpu_s(pid) - cpu0, proc_stat_cpu_s(pid) - ticks0
    problems = audit.problems()
    rc = b.request_counts
    if b.status != "completed":
        problems.append(f"batch ended {b.status!r} after {polls} polls, expected 'completed'")
    if rc is None or (rc.total, rc.completed, rc.failed) != (lines, audit.output_lines, audit.error_lines):
        problems.append(
            f"request_counts {rc} but {lines} lines were sent and the files hold "
            f"{audit.output_lines} output and {audit.error_lines} error lines"
        )
    return {
        "lines": lines,
        "wall_s": round(wall, 4),
        "cpu_ms": round(cpu * 1e3, 2),
        "cpu_ticks_ms": round(ticks * 1e3),
        "polls": polls,
        "statuses": statuses,
        "problems": problems,
    }


def measure_size(specs: Sequence[ServerSpec], lines: int, repeat: int, workdir: Path) -> dict[str, Any]:
    """Start every server, warm it, run `repeat` batches of `lines` in turns, stop them."""
    path = workdir / f"batch_{lines}.jsonl"
    size = bench_batch.generate(path, lines, seed=1)
    warm = workdir / "warmup.jsonl"
    bench_batch.generate(warm, WARMUP_LINES, seed=2)
    servers: list[Server] = []
    try:
        for spec in specs:
            servers.append(start(spec))
        notes = []
        for s in servers:
            w = run_batch(s, warm, WARMUP_LINES)
            if w["problems"]:
                notes.append(f"{s.spec.name} warm-up: " + "; ".join(w["problems"]))
            if kids := child_pids(s.proc.pid):
                notes.append(f"{s.spec.name} has child processes {kids}: their CPU is not counted")
        for i in range(repeat):
            order = servers if i % 2 == 0 else servers[::-1]
            for s in order:
                s.runs.append(run_batch(s, path, lines))
    finally:
        for s in servers:
            stop(s)
    out: dict[str, Any] = {"lines": lines, "input_bytes": size, "notes": notes, "servers": {}}
    for s in servers:
        cpu = statistics.median(r["cpu_ms"] for r in s.runs)
        out["servers"][s.spec.name] = {
            "median_wall_s": round(statistics.median(r["wall_s"] for r in s.runs), 4),
            "median_cpu_ms": round(cpu, 2),
            "us_per_line": round(cpu * 1e3 / lines, 2),
            "median_polls": statistics.median(r["polls"] for r in s.runs),
            "runs": s.runs,
        }
    return out


def summarize(specs: Sequence[ServerSpec], cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Fits per server and the lead ratios (peer / batchconf) from the measured cells."""
    fits: dict[str, Any] = {}
    for spec in specs:
        line = fit_line([(c["lines"], c["servers"][spec.name]["median_cpu_ms"]) for c in cells])
        fits[spec.name] = (
            None if line is None else {"a_ms_per_batch": round(line[0], 2), "b_us_per_line": round(line[1] * 1e3, 3)}
        )
    lead: dict[str, Any] = {}
    ours, peers = "batchconf", [s.name for s in specs if s.name != "batchconf"]
    for peer in peers:
        ratios: dict[str, float | None] = {}
        for c in cells:
            o, p = c["servers"][ours], c["servers"][peer]
            ratios[f"cpu_{c['lines']}"] = (
                round(p["median_cpu_ms"] / o["median_cpu_ms"], 2) if o["median_cpu_ms"] else None
            )
            ratios[f"wall_{c['lines']}"] = round(p["median_wall_s"] / o["median_wall_s"], 2)
        fo, fp = fits[ours], fits[peer]
        if fo and fp:
            ratios["a"] = round(fp["a_ms_per_batch"] / fo["a_ms_per_batch"], 2) if fo["a_ms_per_batch"] > 0 else None
            ratios["b"] = round(fp["b_us_per_line"] / fo["b_us_per_line"], 2) if fo["b_us_per_line"] > 0 else None
        lead[peer] = {
            "ratios": ratios,
            "batchconf_leads_cpu_at_every_size": all(
                c["servers"][ours]["median_cpu_ms"] < c["servers"][peer]["median_cpu_ms"] for c in cells
            ),
        }
    return {"fits": fits, "lead": lead}


def print_report(result: dict[str, Any]) -> None:
    """The human-readable form of `result` (what --json prints whole)."""
    print(
        f"bench_peer {result['date']}: server CPU per batch, {result['repeat']} runs per server and size, "
        f"in turns; {os.cpu_count()} CPUs, load {result['loadavg_start']} at start"
    )
    for name, srv in result["servers"].items():
        print(f"  {name} {srv['version']}: {srv['command']}")
    print(f"  batchconf code: {result['code']['emulator']} ({result['code']['git']})")
    print(f"  server CPU: {result['cpu_clock']}; client: openai SDK {result['sdk']}, no sleep between polls")
    if result.get("peer_note"):
        print(f"  peer: {result['peer_note']}")
    for c in result["cells"]:
        print(f"{c['lines']:,} lines ({c['input_bytes'] / 1e6:.2f} MB):")
        for note in c["notes"]:
            print(f"  note: {note}")
        for name, s in c["servers"].items():
            runs = ", ".join(f"{r['wall_s']:.3f} s/{r['cpu_ms']:.1f} ms" for r in s["runs"])
            print(f"  {name:<9} wall/server CPU per run: {runs}")
    print()
    header = ("server", "lines", "wall s", "server CPU ms", "µs/line", "polls")
    rows = [
        (
            name,
            f"{c['lines']:,}",
            f"{s['median_wall_s']:.3f}",
            f"{s['median_cpu_ms']:.1f}",
            f"{s['us_per_line']:.1f}",
            f"{s['median_polls']:g}",
        )
        for c in result["cells"]
        for name, s in c["servers"].items()
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))))
    print()
    for name, f in result["fits"].items():
        if f is None:
            print(f"fit {name}: needs two sizes")
        else:
            a, b = f["a_ms_per_batch"], f["b_us_per_line"]
            print(f"fit {name}: cpu(n) = a + b*n, a = {a:.2f} ms/batch, b = {b:.2f} µs/line")
    for peer, lead in result["lead"].items():
        ratios = ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}x'}" for k, v in lead["ratios"].items())
        verdict = "yes" if lead["batchconf_leads_cpu_at_every_size"] else "no"
        print(f"lead {peer}/batchconf (> 1: batchconf spends less): {ratios}")
        print(f"batchconf leads {peer} on server CPU at every size: {verdict}")
    print(
        "audit: "
        + (
            "passed (every custom_id exactly once, counts agree, completed)"
            if result["audit_ok"]
            else "FAILED: " + "; ".join(result["problems"])
        )
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1000,10000", help="comma-separated batch sizes in lines (default 1000,10000)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per server and size; medians (default 5)")
    peer = parser.add_mutually_exclusive_group()
    peer.add_argument(
        "--peer-python",
        type=Path,
        default=None,
        help=f"python of a venv with llmock installed (default {DEFAULT_PEER_PYTHON} if it exists)",
    )
    peer.add_argument("--no-peer", action="store_true", help="measure batchconf only")
    parser.add_argument(
        "--serve-arg", action="append", default=[], help="extra argument for `batchconf serve` (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--sizes: comma-separated integers")
    if not args.sizes or args.sizes[0] < 1 or args.repeat < 1:
        parser.error("--sizes and --repeat must be >= 1")
    if args.peer_python is not None and not args.peer_python.exists():
        parser.error(f"--peer-python: {args.peer_python} does not exist")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import openai

    specs = [batchconf_spec(args.serve_arg)]
    peer_note = ""
    python = (
        None if args.no_peer else args.peer_python or (DEFAULT_PEER_PYTHON if DEFAULT_PEER_PYTHON.exists() else None)
    )
    if python is None:
        peer_note = (
            "no peer: --no-peer given"
            if args.no_peer
            else f"no peer: {DEFAULT_PEER_PYTHON} not found and no --peer-python"
        )
    else:
        spec = llmock_spec(python)
        if isinstance(spec, str):
            peer_note = "no peer: " + spec
        else:
            specs.append(spec)
    cpu_clock = (
        "user+sys of the whole process from its POSIX process CPU-time clock (ns)"
        if _clock_works()
        else "user+sys from /proc/PID/stat (10 ms ticks: the process clock is unavailable)"
    )
    result: dict[str, Any] = {
        "bench": "peer_server_cpu",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_start": round(os.getloadavg()[0], 2),
        "repeat": args.repeat,
        "sdk": openai.__version__,
        "cpu_clock": cpu_clock,
        "code": code_under_test(),
        "servers": {s.name: {"version": s.version, "command": s.shown} for s in specs},
        "peer_note": peer_note,
    }
    workdir = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    try:
        cells = [measure_size(specs, n, args.repeat, workdir) for n in args.sizes]
    except RuntimeError as exc:
        print(f"bench_peer: {exc}", file=sys.stderr)
        return 2
    finally:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()
    result["cells"] = cells
    result.update(summarize(specs, cells))
    problems = [
        f"{name} {c['lines']} lines run {i}: {p}"
        for c in cells
        for name, s in c["servers"].items()
        for i, r in enumerate(s["runs"], 1)
        for p in r["problems"]
    ]
    problems += [n for c in cells for n in c["notes"] if "warm-up" in n]
    result.update(audit_ok=not problems, problems=problems, loadavg_end=round(os.getloadavg()[0], 2))
    if args.json:
        print(json.dumps(result))
    else:
        print_report(result)
    return 0 if not problems else 1


def _clock_works() -> bool:
    try:
        time.clock_gettime(_cpu_clock_id(os.getpid()))
    except OSError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
