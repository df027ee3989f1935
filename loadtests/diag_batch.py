"""Diagnose where a large batch spends time and memory (a tool for bench_batch.py misses).

One run of bench_batch's flow, in this process, with light instrumentation instead of a
profiler: wall time and the RSS high-water mark (sampled every 2 ms by a thread) of each
client phase and of the emulator's steps (multipart parse, S3 puts and gets, validation,
line processing, result storage). The emulator is wrapped from outside; nothing in
emulator/ changes. `--tracemalloc` adds the top Python allocation sites at the peak
(slower; allocations made in C by moto/boto3 buffers still show as their Python callers).

    python loadtests/diag_batch.py                   # 50,000 lines, sync client
    python loadtests/diag_batch.py --async --tracemalloc
    python loadtests/diag_batch.py --what-if single-put,lean-mock   # prototype fixes, from outside
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

    from emulator import _engine

    core = emu.core
    store = core.store
    store.put_file = timed("S3 put_file (upload_fileobj)", store.put_file)
    store.iter_chunks = timed_iter("S3 get_object iter_chunks", store.iter_chunks)
    _engine.Engine._validate = timed("engine._validate (read+check all lines)", _engine.Engine._validate)
    _engine.Engine._process = timed("engine._process (mock all lines -> spool)", _engine.Engine._process)
    _engine.Engine._store_results = timed("engine._store_results (spool -> S3)", _engine.Engine._store_results)
    core.files.create = timed("FileService.create (sniff + S3 put)", core.files.create)
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


WHAT_IFS = ("single-put", "lean-mock")


def apply_what_ifs(names: list[str]) -> dict[str, Any]:
    """Prototype candidate emulator changes from outside (monkeypatching; emulator/ untouched).

    - single-put: `ObjectStore.put_file` as one `put_object` (no multipart upload);
    - lean-mock: a chat mock with byte-identical output but one split per prompt, and
      slotted (non-frozen) LineRequest/Reply classes.
    Returns keyword arguments for `Emulator(...)`.
    """
    kwargs: dict[str, Any] = {}
    if "single-put" in names:
        from emulator import _storage

        def put_file(self: Any, key: str, fileobj: Any, content_type: str = "application/octet-stream") -> None:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=fileobj, ContentType=content_type)

        _storage.ObjectStore.put_file = put_file  # type: ignore[method-assign]
    if "lean-mock" in names:
        from dataclasses import dataclass

        from emulator import _backend, _engine

        @dataclass(slots=True)
        class LineRequest:
            endpoint: str
            body: dict[str, Any]
            custom_id: str
            key: str
            now: int

        @dataclass(slots=True)
        class Reply:
            status_code: int
            body: dict[str, Any] | None
            input_tokens: int = 0
            output_tokens: int = 0
            error_code: str | None = None
            error_message: str | None = None

        _engine.LineRequest = LineRequest  # type: ignore[misc]

        class LeanMock(_backend.MockBackend):
            def _chat(self, r: Any) -> Any:
                body = r.body
                messages = body.get("messages")
                last = messages[-1] if isinstance(messages, list) and messages else None
                content = last.get("content") if isinstance(last, dict) else None
                if len(messages or ()) != 1 or not isinstance(content, str):
                    return super()._chat(r)  # the general path for anything but one string message
                words = content.split()
                pin = len(words)
                words.reverse()
                limit = _backend._limit(body, "max_completion_tokens", "max_tokens")
                finish = "stop"
                if limit is not None and len(words) > limit:
                    del words[limit:]
                    finish = "length"
                text = " ".join(words) if words else "ok"
                pout = len(words) or 1
                key = r.key
                return Reply(
                    200,
                    {
                        "id": "chatcmpl-" + key,
                        "object": "chat.completion",
                        "created": r.now,
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                                "logprobs": None,
                                "finish_reason": finish,
                            }
                        ],
                        "usage": {
                            "prompt_tokens": pin,
                            "completion_tokens": pout,
                            "total_tokens": pin + pout,
                            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
                        },
                        "service_tier": "default",
                        "system_fingerprint": "fp_batchconf",
                    },
                    pin,
                    pout,
                )

        kwargs["backend"] = LeanMock()
    return kwargs


def main() -> int:
    global _sampler
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--async", dest="use_async", action="store_true")
    parser.add_argument("--tracemalloc", action="store_true", help="top allocation sites at the peak")
    parser.add_argument("--s3", choices=("inproc", "moto-server"), default="inproc", help="as in bench_batch.py")
    parser.add_argument(
        "--what-if",
        default="",
        help=f"comma-separated prototypes of emulator changes to apply first: {', '.join(WHAT_IFS)}",
    )
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
    what_ifs = [w for w in args.what_if.split(",") if w]
    unknown = sorted(set(what_ifs) - set(WHAT_IFS))
    if unknown:
        parser.error(f"unknown --what-if {unknown}; known: {', '.join(WHAT_IFS)}")
    moto_server = bench_batch.MotoServer() if args.s3 == "moto-server" else None
    emu = emulator.Emulator(
        seed=1, s3_endpoint_url=moto_server.url if moto_server else None, **apply_what_ifs(what_ifs)
    )
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
    print(f"what-ifs applied: {', '.join(what_ifs) or 'none'}; load average {os.getloadavg()[0]:.2f}")
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
