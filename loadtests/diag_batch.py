"""Diagnose where a large batch spends time and memory (a tool for bench_batch.py misses).

One run of bench_batch's flow, in this process, with light instrumentation instead of a
profiler: wall time and the RSS high-water mark (sampled every 2 ms by a thread) of each
client phase and of the emulator's steps (multipart parse, S3 puts and gets, validation,
line processing, result storage). The emulator is wrapped from outside; nothing in
emulator/ changes. `--tracemalloc` adds the top Python allocation sites at the peak
(slower; allocations made in C by moto/boto3 buffers still show as their Python callers).

    python loadtests/diag_batch.py                   # 50,000 lines, sync client
    python loadtests/diag_batch.py --async --tracemalloc
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_batch


class RssSampler:
    """A thread that samples RSS; `mark()` returns (and resets) the high-water mark."""

    def __init__(self, period: float = 0.002) -> None:
        self.period = period
        self.high = bench_batch.rss_now_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            rss = bench_batch.rss_now_bytes()
            if rss > self.high:
                self.high = rss

    def mark(self) -> int:
        high = max(self.high, bench_batch.rss_now_bytes())
        self.high = bench_batch.rss_now_bytes()
        return high

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


ROWS: list[tuple[str, float, float, float, float]] = []  # (step, seconds, cpu_s, rss_start_mb, rss_high_mb)
_sampler: RssSampler | None = None


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `fn` to record its wall time and the RSS high-water during the call."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        assert _sampler is not None
        start_rss = bench_batch.rss_now_bytes()
        _sampler.high = start_rss
        t = time.perf_counter()
        c = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            ROWS.append((name, time.perf_counter() - t, time.thread_time() - c, start_rss / 1e6, _sampler.mark() / 1e6))

    return wrapper


def timed_iter(name: str, fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """Like `timed`, for a generator: time from the first call to exhaustion."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        assert _sampler is not None
        start_rss = bench_batch.rss_now_bytes()
        t = time.perf_counter()
        c = time.thread_time()
        try:
            yield from fn(*args, **kwargs)
        finally:
            wall, cpu = time.perf_counter() - t, time.thread_time() - c
            ROWS.append((name + " (incl. consumer)", wall, cpu, start_rss / 1e6, _sampler.mark() / 1e6))

    return wrapper


def instrument(emu: Any) -> None:
    import starlette.requests

    from emulator.model import engine as _engine

    store = emu.store
    store.put_file = timed("S3 put_file", store.put_file)
    store.iter_chunks = timed_iter("S3 get_object iter_chunks", store.iter_chunks)
    _engine.Engine._validate = timed("engine._validate (read+check all lines)", _engine.Engine._validate)
    _engine.Engine._process = timed("engine._process (mock all lines -> spool)", _engine.Engine._process)
    _engine.Engine._store_results = timed("engine._store_results (spool -> S3)", _engine.Engine._store_results)
    files = emu.provider.main.files
    files.create = timed("FileService.create (sniff + S3 put)", files.create)
    original_form = starlette.requests.Request._get_form

    async def form(self: Any, **kwargs: Any) -> Any:
        start_rss = bench_batch.rss_now_bytes()
        t = time.perf_counter()
        c = time.thread_time()
        try:
            return await original_form(self, **kwargs)
        finally:
            assert _sampler is not None
            wall, cpu = time.perf_counter() - t, time.thread_time() - c
            ROWS.append(("starlette multipart parse", wall, cpu, start_rss / 1e6, _sampler.mark() / 1e6))

    starlette.requests.Request._get_form = form  # type: ignore[method-assign]


def main() -> int:
    global _sampler
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--async", dest="use_async", action="store_true")
    parser.add_argument("--tracemalloc", action="store_true", help="top allocation sites at the peak")
    parser.add_argument("--s3", choices=("inproc", "moto-server"), default="inproc", help="as in bench_batch.py")
    args = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    workdir = Path(tempfile.mkdtemp(prefix="batchconf-diag-"))
    path = workdir / "batch_input.jsonl"
    size = bench_batch.generate(path, args.lines)

    import boto3  # noqa: F401
    import moto  # noqa: F401
    import openai  # noqa: F401

    import emulator

    baseline = bench_batch.rss_now_bytes()
    _sampler = RssSampler()
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(8)
    moto_server = bench_batch.MotoServer() if args.s3 == "moto-server" else None
    emu = emulator.Emulator(seed=1, s3_endpoint_url=moto_server.url if moto_server else None)
    instrument(emu)
    runner = bench_batch.run_async if args.use_async else bench_batch.run_sync
    cpu0 = bench_batch.cpu_seconds()
    phases, b, audit, states = runner(emu, path, args.lines)
    cpu_total = bench_batch.cpu_seconds() - cpu0
    peak = bench_batch.rss_peak_bytes()
    top = None
    if args.tracemalloc:
        import tracemalloc

        traced_peak = tracemalloc.get_traced_memory()[1]
        top = (traced_peak, tracemalloc.take_snapshot())
    _sampler.stop()
    emu.close()
    if moto_server is not None:
        print(f"moto server child: peak RSS {moto_server.peak_rss() / 1e6:.1f} MB")
        moto_server.stop()
    path.unlink()
    workdir.rmdir()
    print(
        f"{args.lines:,} lines, input {size / 1e6:.1f} MB, {'async' if args.use_async else 'sync'} client; "
        f"RSS baseline after imports {baseline / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB "
        f"(growth {(peak - baseline) / 1e6:.1f} MB = {(peak - baseline) / size:.1f}x input)"
    )
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(
        f"end to end {phases['total']:.3f} s = {args.lines / phases['total']:,.0f} lines/s, process CPU "
        f"{cpu_total:.2f} s = {args.lines / cpu_total:,.0f} lines per CPU-second; client phases (s): "
        + ", ".join(f"{k} {v:.3f}" for k, v in phases.items() if k != "total")
    )
    print(
        f"{'emulator step':48s} {'seconds':>8s} {'CPU s':>6s} {'RSS at start MB':>16s} {'RSS high MB':>12s} "
        f"{'delta MB':>9s}"
    )
    for name, secs, cpu, start, high in ROWS:
        print(f"{name:48s} {secs:8.3f} {cpu:6.3f} {start:16.1f} {high:12.1f} {high - start:9.1f}")
    print(
        "(CPU s: the calling thread's own CPU time, which other load on the machine barely changes; "
        "S3 puts by upload_fileobj also burn CPU in s3transfer's threads, not counted here)"
    )
    print("audit problems:", bench_batch._check_batch(b, args.lines, audit) or "none", "| statuses:", states)
    if top is not None:
        traced_peak, snap = top
        print(f"tracemalloc: peak traced {traced_peak / 1e6:.1f} MB; largest live allocation sites at the end:")
        for stat in snap.statistics("traceback")[:8]:
            print(f"  {stat.size / 1e6:8.1f} MB  {stat.count:7d} blocks")
            for line in stat.traceback.format()[-6:]:
                print("     " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
