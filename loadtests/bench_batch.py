"""Benchmark: one large chat-completions batch end to end, in-process, through the `openai` SDK.

Not a test (nothing here is collected by pytest). Each run, in a fresh child process so that
its peak RSS is its own:

1. generate a JSONL of `--lines` chat requests (~300 B a line, the "brief" profile of
   reference/spike.md section 3) to a temp file; not timed as part of the flow;
2. `files.create` (upload), `batches.create`, then `batches.retrieve` until the batch is
   terminal (the emulator's per-poll progression: each retrieve moves it one status);
3. download the output and error files with `files.with_streaming_response.content`,
   iterate their lines, and check that every input custom_id appears exactly once across
   the two files and that the counts agree with `request_counts`.

A 10-line batch goes through the same emulator first, unmeasured (`--no-warmup` measures
the process's first batch instead: its one-time costs are most of a 1,000-line run).

Printed per run and as the median over `--repeat` runs: seconds per phase and in all, lines
per second end to end, the peak RSS (`ru_maxrss`) and two growths, each as a ratio of the
input file size:

- the batch's memory: peak minus the RSS once the Emulator is ready (moto started, bucket
  made), i.e. what this batch's bytes cost the process. The < 3x target is judged on it.
- the process's memory: peak minus the RSS after imports, before the Emulator exists. It
  adds moto's one-time start-up (its lazy imports and the S3 service model, about 38 MB
  whatever the input), so it only falls under 3x for inputs above about 20 MB
  (`--line-bytes 4000` makes a 200 MB input).

Targets (issue 2): >= 20,000 lines/s end to end and the batch's RSS growth < 3x the input
file size on this 2-core machine. The script exits 1 when a run misses a target or the
audit fails.

    python loadtests/bench_batch.py                       # 50,000 lines, 3 runs, sync client
    python loadtests/bench_batch.py --async --repeat 5
    python loadtests/bench_batch.py --lines 10000 --json  # one JSON line on stdout
    python loadtests/bench_batch.py --line-bytes 4000 --repeat 1   # a 200 MB input
    python loadtests/bench_batch.py --serve               # over HTTP; the server's memory
    python loadtests/bench_batch.py --profile-to /tmp/b.prof --repeat 1   # cProfile one run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_LINES_PER_S = 20_000
TARGET_RSS_RATIO = 3.0
MAX_LINES = 50_000  # the openai profile's limits.max_requests
CHILD_TIMEOUT_S = 600
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_POLLS = 100

_WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "batch",
    "request",
    "token",
    "model",
    "output",
    "latency",
    "queue",
    "file",
    "upload",
    "retrieve",
    "cancel",
    "window",
    "completion",
    "summary",
    "translate",
    "classify",
    "extract",
    "answer",
    "question",
    "context",
    "document",
)


def rss_now_bytes() -> int:
    """The current resident set size (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, all threads."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def rss_peak_bytes() -> int:
    """The peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def generate(path: Path, lines: int, seed: int = 1, line_bytes: int = 0) -> int:
    """Write `lines` chat-completion request lines (~300 B each, or about `line_bytes` each
    with a longer prompt); returns the file size."""
    import orjson

    rnd = random.Random(seed)
    with open(path, "wb") as fh:
        buf: list[bytes] = []
        for i in range(lines):
            words = " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(12, 20)))
            while len(words) < line_bytes - 230:  # 230 B: the line's JSON around the prompt
                words += " " + rnd.choice(_WORDS)
            buf.append(
                orjson.dumps(
                    {
                        "custom_id": f"request-{i:06d}",
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": {
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": words}],
                            "max_tokens": 256,
                            "temperature": 0.2,
                        },
                    },
                    option=orjson.OPT_APPEND_NEWLINE,
                )
            )
            if len(buf) >= 4096:
                fh.write(b"".join(buf))
                buf.clear()
        fh.write(b"".join(buf))
    return path.stat().st_size


class Audit:
    """Counts each custom_id seen in the result files (ids are `request-NNNNNN`, 0..n-1)."""

    def __init__(self, n: int) -> None:
        self.seen = bytearray(n)
        self.strangers = 0
        self.output_lines = 0
        self.error_lines = 0
        self.non_200_in_output = 0
        self.success_in_error_file = 0
        self.unparseable = 0

    def feed(self, line: bytes, *, output: bool) -> None:
        import orjson

        if not line.strip():
            return
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            self.unparseable += 1
            return
        cid = obj.get("custom_id", "")
        if output:
            self.output_lines += 1
            resp = obj.get("response") or {}
            if resp.get("status_code") != 200:
                self.non_200_in_output += 1
        else:
            self.error_lines += 1
            resp = obj.get("response") or {}
            if isinstance(resp.get("status_code"), int) and 200 <= resp["status_code"] < 300:
                self.success_in_error_file += 1
        try:
            idx = int(cid.removeprefix("request-"))
        except (ValueError, AttributeError):
            self.strangers += 1
            return
        if not cid.startswith("request-") or not 0 <= idx < len(self.seen):
            self.strangers += 1
            return
        if self.seen[idx] < 255:
            self.seen[idx] += 1

    def problems(self) -> list[str]:
        missing = self.seen.count(0)
        dup = len(self.seen) - missing - self.seen.count(1)
        out = []
        if missing:
            out.append(f"{missing} custom_ids missing from output+error")
        if dup:
            out.append(f"{dup} custom_ids appear more than once")
        if self.strangers:
            out.append(f"{self.strangers} lines with a custom_id that was never submitted")
        if self.non_200_in_output:
            out.append(f"{self.non_200_in_output} output lines without status_code 200")
        if self.unparseable:
            out.append(f"{self.unparseable} result lines that are not JSON objects")
        if self.success_in_error_file:
            out.append(f"{self.success_in_error_file} error-file lines with a 2xx status_code")
        return out


def split_lines(chunks: Any) -> Any:
    """Lines (bytes, without the newline) from a stream of byte chunks, holding one chunk."""
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        buf = pending + chunk if pending else chunk
        lines = buf.split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def _check_batch(b: Any, n: int, audit: Audit) -> list[str]:
    out = audit.problems()
    rc = b.request_counts
    if b.status != "completed":
        out.append(f"batch ended {b.status!r}, expected 'completed'")
    if rc is None or rc.total != n or rc.completed + rc.failed != n:
        out.append(f"request_counts {rc} do not add up to {n}")
    elif rc.completed != audit.output_lines or rc.failed != audit.error_lines:
        out.append(
            f"request_counts completed={rc.completed} failed={rc.failed} but files hold "
            f"{audit.output_lines} output and {audit.error_lines} error lines"
        )
    return out


def run_sync(emu: Any, path: Path, n: int, sdk_lines: bool = False) -> tuple[dict[str, float], Any, Audit, list[str]]:
    """The flow with the sync `openai.OpenAI` client (emulator's sync bridge transport)."""
    client = emu.openai_client(timeout=600)
    t: dict[str, float] = {}
    states: list[str] = []
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        f = client.files.create(file=(path.name, fh), purpose="batch")
    t1 = time.perf_counter()
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    states.append(b.status)
    t2 = time.perf_counter()
    for _ in range(MAX_POLLS):
        if b.status in TERMINAL:
            break
        tp = time.perf_counter()
        b = client.batches.retrieve(b.id)
        t[f"poll->{b.status}"] = time.perf_counter() - tp
        states.append(b.status)
    t3 = time.perf_counter()
    audit = Audit(n)
    for fid, output in ((b.output_file_id, True), (b.error_file_id, False)):
        if fid is None:
            continue
        with client.files.with_streaming_response.content(fid) as resp:
            lines = resp.iter_lines() if sdk_lines else split_lines(resp.iter_bytes())
            for line in lines:
                audit.feed(line.encode() if isinstance(line, str) else line, output=output)
    t4 = time.perf_counter()
    t.update(upload=t1 - t0, create=t2 - t1, poll=t3 - t2, download_and_audit=t4 - t3, total=t4 - t0)
    return t, b, audit, states


def run_async(emu: Any, path: Path, n: int, sdk_lines: bool = False) -> tuple[dict[str, float], Any, Audit, list[str]]:
    """The same flow with `openai.AsyncOpenAI` (the emulator's streaming AsyncASGITransport, no thread hop)."""
    import asyncio

    async def flow() -> tuple[dict[str, float], Any, Audit, list[str]]:
        client = emu.async_openai_client(timeout=600)
        t: dict[str, float] = {}
        states: list[str] = []
        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            f = await client.files.create(file=(path.name, fh), purpose="batch")
        t1 = time.perf_counter()
        b = await client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        states.append(b.status)
        t2 = time.perf_counter()
        for _ in range(MAX_POLLS):
            if b.status in TERMINAL:
                break
            tp = time.perf_counter()
            b = await client.batches.retrieve(b.id)
            t[f"poll->{b.status}"] = time.perf_counter() - tp
            states.append(b.status)
        t3 = time.perf_counter()
        audit = Audit(n)
        for fid, output in ((b.output_file_id, True), (b.error_file_id, False)):
            if fid is None:
                continue
            async with client.files.with_streaming_response.content(fid) as resp:
                if sdk_lines:
                    async for line in resp.iter_lines():
                        audit.feed(line.encode(), output=output)
                else:
                    pending = b""
                    async for chunk in resp.iter_bytes():
                        lines = (pending + chunk if pending else chunk).split(b"\n")
                        pending = lines.pop()
                        for line in lines:
                            audit.feed(line, output=output)
                    audit.feed(pending, output=output)
        t4 = time.perf_counter()
        await client.close()
        t.update(upload=t1 - t0, create=t2 - t1, poll=t3 - t2, download_and_audit=t4 - t3, total=t4 - t0)
        return t, b, audit, states

    return asyncio.run(flow())


class _AllThreadsProfile:
    """cProfile in every thread started after it (the emulator works in its portal thread and
    worker threads, which a plain cProfile of the main thread never sees), timed by each
    thread's CPU clock. Stats are merged at the end."""

    def __init__(self) -> None:
        import cProfile
        import threading

        self._profiles: list[Any] = []
        # Per-thread CPU time, not wall time: with several threads a wall-clock profile
        # charges each function with the time its thread waited for the GIL.
        self._make = lambda: cProfile.Profile(time.thread_time)

        def start_in_thread(*_: Any) -> None:
            prof = self._make()
            self._profiles.append(prof)
            prof.enable()  # replaces this hook for the thread

        self._threading = threading
        threading.setprofile(start_in_thread)
        main = self._make()
        self._profiles.append(main)
        main.enable()

    def dump(self, path: str) -> None:
        import pstats

        self._threading.setprofile(None)  # type: ignore[arg-type]
        for prof in self._profiles:
            prof.disable()
        stats = pstats.Stats(self._profiles[0])
        for prof in self._profiles[1:]:
            prof.create_stats()
            if prof.stats:
                stats.add(prof)
        stats.dump_stats(path)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_of(pid: int) -> int:
    """Another process's peak RSS (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class MotoServer:
    """`python -m moto.server` on 127.0.0.1 in a child process, for `--s3 moto-server`."""

    def __init__(self) -> None:
        import socket

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto server did not start within 30 s")

    def peak_rss(self) -> int:
        return peak_rss_of(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _ServedEmulator:
    """`batchconf serve` on 127.0.0.1 in a child process, with the client factories the
    flows use; its memory is read from /proc, the client's is not counted."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import served

        self._served = served
        self.key = "bench-" + os.urandom(12).hex()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        fd, log = tempfile.mkstemp(prefix="batchconf-bench-serve-", suffix=".log")
        os.close(fd)
        self._log = Path(log)
        self.proc = served.start_emulator(port, self.key, "openai", self._log)
        served.wait_ready(self.url, self.key, self.proc)

    def openai_client(self, **kwargs: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=self.key, max_retries=0, **kwargs)

    def async_openai_client(self, **kwargs: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=self.key, max_retries=0, **kwargs)

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def peak_rss(self) -> int:
        return peak_rss_of(self.proc.pid)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self._served.stop(self.proc)
        self._log.unlink(missing_ok=True)


def warm_up(args: argparse.Namespace, target: Any, workdir: Path) -> None:
    """One 10-line batch through `target` before anything is measured (unless --no-warmup).

    The first requests of a process pay one-time costs (the lazy imports and model building
    of the SDK's and moto's request paths, the multipart parser) that say nothing about a
    batch's cost; at 1,000 lines they were most of the time measured."""
    if args.no_warmup:
        return
    small = workdir / "warmup.jsonl"
    generate(small, 10)
    try:
        (run_async if args.use_async else run_sync)(target, small, 10, False)
    finally:
        small.unlink(missing_ok=True)


def one_run_served(args: argparse.Namespace, path: Path, size: int, gen_s: float) -> dict[str, Any]:
    """One measured run against `batchconf serve` over loopback HTTP; the memory figures are
    the server process's (its RSS once it answers, and its peak)."""
    server = _ServedEmulator()
    try:
        warm_up(args, server, path.parent)
        ready = server.rss()
        cpu0 = server.cpu_seconds()
        runner = run_async if args.use_async else run_sync
        phases, b, audit, states = runner(server, path, args.lines, args.sdk_iter_lines)
        cpu = server.cpu_seconds() - cpu0
        peak = server.peak_rss()
    finally:
        server.close()
    # A server has no separate post-import point: both growths count from the RSS it has
    # once it answers (moto started, bucket made, one request served).
    flow = (phases, b, audit, states)
    figures = _record(args, size, gen_s, flow, cpu, baseline=ready, ready=ready, peak=peak, peak_before=ready)
    return {"target": "serve", **figures}


def _record(
    args: argparse.Namespace,
    size: int,
    gen_s: float,
    flow: tuple[dict[str, float], Any, Audit, list[str]],
    cpu: float,
    *,
    baseline: int,
    ready: int,
    peak: int,
    peak_before: int,
    s3_peak: int | None = None,
) -> dict[str, Any]:
    """One run's figures and audit problems, as `_child` reads them back."""
    phases, b, audit, states = flow
    problems = _check_batch(b, args.lines, audit)
    if states[-1] != "completed" or len(states) < 2:
        problems.append(f"status path {states}")
    return {
        "client": "async" if args.use_async else "sync",
        "s3": "inproc (in the server)" if args.serve else args.s3,
        "line_iteration": "sdk-iter-lines" if args.sdk_iter_lines else "bytes",
        "lines": args.lines,
        "input_bytes": size,
        "generate_s": round(gen_s, 3),
        "phases_s": {k: round(v, 4) for k, v in phases.items()},
        "lines_per_s": round(args.lines / phases["total"]),
        "cpu_s": round(cpu, 3),
        "lines_per_cpu_s": round(args.lines / cpu) if cpu else 0,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "statuses": states,
        "request_counts": {"completed": b.request_counts.completed, "failed": b.request_counts.failed},
        "rss_baseline_mb": round(baseline / 1e6, 1),
        "rss_emulator_ready_mb": round(ready / 1e6, 1),
        "peak_rss_mb": round(peak / 1e6, 1),
        "peak_before_run_mb": round(peak_before / 1e6, 1),
        "rss_growth_mb": round((peak - baseline) / 1e6, 1),
        "rss_growth_ratio": round((peak - baseline) / size, 2),
        "rss_growth_ratio_from_ready": round((peak - ready) / size, 2),
        "s3_server_peak_rss_mb": round(s3_peak / 1e6, 1) if s3_peak else None,
        "problems": problems,
    }


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """One measured run in this process (called in a child process)."""
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    workdir = Path(tempfile.mkdtemp(prefix="batchconf-bench-"))
    path = workdir / "batch_input.jsonl"
    tg = time.perf_counter()
    size = generate(path, args.lines, line_bytes=args.line_bytes)
    gen_s = time.perf_counter() - tg
    if args.serve:
        try:
            return one_run_served(args, path, size, gen_s)
        finally:
            path.unlink(missing_ok=True)
            workdir.rmdir()

    # Everything the flow needs is imported before the baseline is taken.
    import boto3  # noqa: F401
    import moto  # noqa: F401
    import openai  # noqa: F401
    import orjson  # noqa: F401

    import emulator

    moto_server = MotoServer() if args.s3 == "moto-server" else None
    baseline = rss_now_bytes()
    peak_before = rss_peak_bytes()
    emu = emulator.Emulator(seed=1, s3_endpoint_url=moto_server.url if moto_server else None)
    warm_up(args, emu, workdir)
    rss_ready = rss_now_bytes()
    profiler = _AllThreadsProfile() if args.profile_to else None
    cpu0 = cpu_seconds()
    try:
        runner = run_async if args.use_async else run_sync
        phases, b, audit, states = runner(emu, path, args.lines, args.sdk_iter_lines)
    finally:
        if profiler is not None:
            profiler.dump(args.profile_to)
        peak = rss_peak_bytes()
        cpu = cpu_seconds() - cpu0
        emu.close()
        s3_peak = moto_server.peak_rss() if moto_server else None
        if moto_server:
            moto_server.stop()
        path.unlink(missing_ok=True)
        workdir.rmdir()
    flow = (phases, b, audit, states)
    return _record(
        args,
        size,
        gen_s,
        flow,
        cpu,
        baseline=baseline,
        ready=rss_ready,
        peak=peak,
        peak_before=peak_before,
        s3_peak=s3_peak,
    )


def _child(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one-run", "--lines", str(args.lines), "--line-bytes", str(args.line_bytes)]
    if args.use_async:
        cmd.append("--async")
    if args.profile_to:
        cmd += ["--profile-to", args.profile_to]
    if args.sdk_iter_lines:
        cmd.append("--sdk-iter-lines")
    cmd += ["--s3", args.s3]
    if args.serve:
        cmd.append("--serve")
    if args.no_warmup:
        cmd.append("--no-warmup")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt_run(i: int, r: dict[str, Any]) -> str:
    p = r["phases_s"]
    polls = " ".join(f"{k.split('->')[1]}={v:.3f}" for k, v in p.items() if k.startswith("poll->"))
    return (
        f"  run {i}: total {p['total']:.3f} s = upload {p['upload']:.3f} + create {p['create']:.3f} "
        f"+ poll {p['poll']:.3f} [{polls}] + download+audit {p['download_and_audit']:.3f}; "
        f"{r['lines_per_s']:,} lines/s (CPU {r['cpu_s']:.2f} s, load {r['loadavg_1m']}); "
        f"peak RSS {r['peak_rss_mb']} MB (baseline {r['rss_baseline_mb']} MB, "
        f"emulator ready {r['rss_emulator_ready_mb']} MB); growth over ready "
        f"{r['peak_rss_mb'] - r['rss_emulator_ready_mb']:.1f} MB = {r['rss_growth_ratio_from_ready']}x input, "
        f"over baseline {r['rss_growth_mb']} MB = {r['rss_growth_ratio']}x"
        + (f"; moto server peak RSS {r['s3_server_peak_rss_mb']} MB" if r.get("s3_server_peak_rss_mb") else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000, help="request lines in the batch (default 50000)")
    parser.add_argument(
        "--line-bytes",
        type=int,
        default=0,
        help="pad each request's prompt to about this many bytes a line (default: ~300 B lines); "
        "--line-bytes 4000 makes a 50,000-line input of about 200 MB, the openai per-batch limit",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs, each in a fresh process (default 3)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sync", dest="use_async", action="store_false", help="sync openai.OpenAI client (default)")
    mode.add_argument("--async", dest="use_async", action="store_true", help="openai.AsyncOpenAI client")
    parser.set_defaults(use_async=False)
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON line only")
    parser.add_argument(
        "--sdk-iter-lines",
        action="store_true",
        help="iterate results with the SDK's iter_lines() (str decoding) instead of splitting iter_bytes()",
    )
    parser.add_argument(
        "--s3",
        choices=("inproc", "moto-server"),
        default="inproc",
        help="the emulator's storage: moto in-process (default) or a moto server child on 127.0.0.1",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="run the flow over loopback HTTP against `batchconf serve` (a child process) and report the "
        "server's memory instead",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="measure the process's first batch too (by default a 10-line batch goes through first, unmeasured)",
    )
    parser.add_argument("--profile-to", default=None, help="write a cProfile of the flow to this path")
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lines < 1 or args.repeat < 1:
        parser.error("--lines and --repeat must be >= 1")
    if args.lines > MAX_LINES:
        parser.error(f"--lines: the openai profile takes at most {MAX_LINES:,} requests per batch")

    if args.one_run:
        print(json.dumps(one_run(args)))
        return 0

    runs = [_child(args) for _ in range(args.repeat)]
    totals = [r["phases_s"]["total"] for r in runs]
    med_total = statistics.median(totals)
    phase_names = [k for k in runs[0]["phases_s"] if all(k in r["phases_s"] for r in runs)]
    summary = {
        "bench": "batch_e2e",
        "client": runs[0]["client"],
        "s3": args.s3,
        "line_iteration": runs[0]["line_iteration"],
        "lines": args.lines,
        "input_bytes": runs[0]["input_bytes"],
        "repeat": args.repeat,
        "median_phases_s": {k: round(statistics.median(r["phases_s"][k] for r in runs), 4) for k in phase_names},
        "median_lines_per_s": round(args.lines / med_total),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "median_lines_per_cpu_s": round(args.lines / statistics.median(r["cpu_s"] for r in runs)),
        "median_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
        "median_rss_growth_ratio": round(statistics.median(r["rss_growth_ratio"] for r in runs), 2),
        "median_rss_growth_ratio_from_ready": round(
            statistics.median(r["rss_growth_ratio_from_ready"] for r in runs), 2
        ),
        "targets": {"lines_per_s": TARGET_LINES_PER_S, "rss_growth_ratio_from_ready": TARGET_RSS_RATIO},
        "runs": runs,
    }
    problems = sorted({p for r in runs for p in r["problems"]})
    speed_ok = summary["median_lines_per_s"] >= TARGET_LINES_PER_S
    rss_ok = summary["median_rss_growth_ratio_from_ready"] < TARGET_RSS_RATIO
    summary.update(speed_ok=speed_ok, rss_ok=rss_ok, audit_ok=not problems, problems=problems)
    if args.json:
        print(json.dumps(summary))
    else:
        mb = runs[0]["input_bytes"] / 1e6
        print(
            f"batch benchmark: {args.lines:,} chat lines, {mb:.1f} MB input "
            f"({runs[0]['input_bytes'] / args.lines:.0f} B/line), {summary['client']} openai client, "
            f"{'against batchconf serve on 127.0.0.1 (memory: the server process)' if args.serve else 'in-process'}, "
            f"S3 {args.s3}, lines from {runs[0]['line_iteration']}, "
            f"{args.repeat} run(s), each in a fresh process, {os.cpu_count()} CPUs"
        )
        for i, r in enumerate(runs, 1):
            print(_fmt_run(i, r))
        mp = summary["median_phases_s"]
        print("median seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in mp.items()))
        print(
            f"end to end: {summary['median_lines_per_s']:,} lines/s (median) - target >= {TARGET_LINES_PER_S:,}: "
            f"{'MET' if speed_ok else 'MISSED'}; process CPU {summary['median_cpu_s']:.2f} s "
            f"= {summary['median_lines_per_cpu_s']:,} lines per CPU-second (less sensitive to other load)"
        )
        if args.serve:
            print(
                f"memory (the server process): peak RSS {summary['median_peak_rss_mb']} MB; growth over its RSS "
                f"once it answers (moto started, bucket made) = {summary['median_rss_growth_ratio_from_ready']}x "
                f"the input file (median) - target < {TARGET_RSS_RATIO}x: {'MET' if rss_ok else 'MISSED'}"
            )
        else:
            print(
                f"memory: peak RSS {summary['median_peak_rss_mb']} MB; the batch's growth over the RSS once the "
                f"Emulator is ready (moto started, bucket made) = {summary['median_rss_growth_ratio_from_ready']}x "
                f"the input file (median) - target < {TARGET_RSS_RATIO}x: {'MET' if rss_ok else 'MISSED'}; "
                f"the process's growth over the post-import RSS (adds moto's one-time start-up of "
                f"{statistics.median(r['rss_emulator_ready_mb'] - r['rss_baseline_mb'] for r in runs):.1f} MB) = "
                f"{summary['median_rss_growth_ratio']}x"
            )
        print(
            "audit: "
            + (
                "every custom_id exactly once across output+error; counts agree"
                if not problems
                else "; ".join(problems)
            )
        )
    return 0 if speed_ok and rss_ok and not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
