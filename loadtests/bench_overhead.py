"""Benchmark: the emulator's per-request overhead against a bare ASGI endpoint, in one run.

Not a test. The same `openai` SDK client configuration calls `batches.retrieve` N times:

- against the emulator, in-process (a completed batch, so each call is a pure lookup:
  auth, catch-up, serialization, the middleware);
- against a trivial Starlette app that returns the emulator's own Batch JSON for that batch
  as canned bytes, through the same kind of transport (the emulator's `SyncASGITransport`
  for the sync client, `AsyncASGITransport` for the async one).

Rounds alternate between the two targets so that background load hits both alike. Printed:
the median, p95 and mean milliseconds per call of each, and the ratio of the medians
(emulator / bare). `--raw` also times plain `httpx` GETs (no SDK) through the same
transports, which shows the server-side difference without the SDK's own ~0.5 ms, and a
third app, the bare one plus a no-op `run_in_threadpool` (what each emulator handler pays
for its hop to a worker thread).

    python loadtests/bench_overhead.py                 # sync client, 2,000 calls each
    python loadtests/bench_overhead.py --async --calls 5000 --raw
    python loadtests/bench_overhead.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

ROOT = "http://batchconf.emulator"


def bare_app(path_prefix: str, canned: bytes, thread_hop: bool = False) -> Any:
    """A Starlette app with one route, `GET {prefix}/batches/{batch_id}`, answering `canned`
    (after a no-op `run_in_threadpool` when `thread_hop`, as the emulator's handlers do)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def nothing() -> None:
        return None

    async def retrieve(request: Request) -> Response:
        if thread_hop:
            await run_in_threadpool(nothing)
        return Response(canned, media_type="application/json")

    return Starlette(routes=[Route(path_prefix + "/batches/{batch_id}", retrieve, methods=["GET"])])


def completed_batch(emu: Any) -> str:
    """A small batch driven to `completed`, so later retrieves do not move it."""
    import io

    client = emu.openai_client()
    data = b"".join(
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]},
            }
        ).encode()
        + b"\n"
        for i in range(3)
    )
    f = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    for _ in range(20):
        if b.status == "completed":
            return str(b.id)
        b = client.batches.retrieve(b.id)
    raise RuntimeError(f"batch did not complete: {b.status}")


def summarize(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "median_ms": round(statistics.median(s) * 1e3, 4),
        "p95_ms": round(s[int(len(s) * 0.95) - 1] * 1e3, 4),
        "mean_ms": round(statistics.fmean(s) * 1e3, 4),
        "calls": len(s),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    import openai

    import emulator
    from emulator import AsyncASGITransport, SyncASGITransport

    emu = emulator.Emulator(seed=1)
    try:
        batch_id = completed_batch(emu)
        canned = emu.http_client().get(f"{emu.base_url.removeprefix(ROOT)}/batches/{batch_id}").content
        prefix = emu.base_url.removeprefix(ROOT)
        bare = bare_app(prefix, canned)
        hop = bare_app(prefix, canned, thread_hop=True)
        bare_sync = SyncASGITransport(bare) if not args.use_async else None
        hop_sync = SyncASGITransport(hop) if not args.use_async else None
        samples: dict[str, list[float]] = {"emulator_sdk": [], "bare_sdk": []}
        if args.raw:
            samples.update(emulator_httpx=[], bare_httpx=[], bare_threadhop_httpx=[])
        headers = {"Authorization": f"Bearer {emu.api_key}"}

        if not args.use_async:
            assert bare_sync is not None
            sdk = {
                "emulator_sdk": emu.openai_client(),
                "bare_sdk": openai.OpenAI(
                    api_key=emu.api_key,
                    base_url=emu.base_url,
                    max_retries=0,
                    http_client=httpx.Client(transport=bare_sync),
                ),
            }
            raw = {
                "emulator_httpx": httpx.Client(transport=emu.sync_transport, base_url=ROOT, headers=headers),
                "bare_httpx": httpx.Client(transport=bare_sync, base_url=ROOT, headers=headers),
                "bare_threadhop_httpx": httpx.Client(transport=hop_sync, base_url=ROOT, headers=headers),
            }
            url = f"{prefix}/batches/{batch_id}"
            calls: dict[str, Callable[[], Any]] = {
                "emulator_sdk": lambda: sdk["emulator_sdk"].batches.retrieve(batch_id),
                "bare_sdk": lambda: sdk["bare_sdk"].batches.retrieve(batch_id),
                "emulator_httpx": lambda: raw["emulator_httpx"].get(url),
                "bare_httpx": lambda: raw["bare_httpx"].get(url),
                "bare_threadhop_httpx": lambda: raw["bare_threadhop_httpx"].get(url),
            }
            for name in samples:  # warm-up
                for _ in range(args.warmup):
                    calls[name]()
            rounds = max(1, args.calls // args.round_size)
            for _ in range(rounds):
                for name in samples:
                    fn = calls[name]
                    bucket = samples[name]
                    for _ in range(args.round_size):
                        t = time.perf_counter()
                        fn()
                        bucket.append(time.perf_counter() - t)
            # Check both answer the same thing (the canned body is the emulator's own).
            assert (
                sdk["bare_sdk"].batches.retrieve(batch_id).to_dict()
                == sdk["emulator_sdk"].batches.retrieve(batch_id).to_dict()
            )
        else:

            async def main() -> None:
                url = f"{prefix}/batches/{batch_id}"
                clients = {
                    "emulator_sdk": emu.async_openai_client(),
                    "bare_sdk": openai.AsyncOpenAI(
                        api_key=emu.api_key,
                        base_url=emu.base_url,
                        max_retries=0,
                        http_client=httpx.AsyncClient(transport=AsyncASGITransport(bare)),
                    ),
                }
                raw = {
                    "emulator_httpx": emu.async_http_client(),
                    "bare_httpx": httpx.AsyncClient(transport=AsyncASGITransport(bare), base_url=ROOT, headers=headers),
                    "bare_threadhop_httpx": httpx.AsyncClient(
                        transport=AsyncASGITransport(hop), base_url=ROOT, headers=headers
                    ),
                }

                async def call(name: str) -> Any:
                    if name.endswith("_sdk"):
                        return await clients[name].batches.retrieve(batch_id)
                    return await raw[name].get(url)

                for name in samples:
                    for _ in range(args.warmup):
                        await call(name)
                rounds = max(1, args.calls // args.round_size)
                for _ in range(rounds):
                    for name in samples:
                        bucket = samples[name]
                        for _ in range(args.round_size):
                            t = time.perf_counter()
                            await call(name)
                            bucket.append(time.perf_counter() - t)
                a = await clients["bare_sdk"].batches.retrieve(batch_id)
                b = await clients["emulator_sdk"].batches.retrieve(batch_id)
                assert a.to_dict() == b.to_dict()
                for c in clients.values():
                    await c.close()
                for h in raw.values():
                    await h.aclose()

            asyncio.run(main())
        for transport in (bare_sync, hop_sync):
            if transport is not None:
                transport.close()
    finally:
        emu.close()

    out: dict[str, Any] = {
        "bench": "overhead",
        "client": "async" if args.use_async else "sync",
        "calls_each": len(samples["emulator_sdk"]),
        "canned_bytes": len(canned),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    for name, s in samples.items():
        out[name] = summarize(s)
    out["ratio_median_sdk"] = round(out["emulator_sdk"]["median_ms"] / out["bare_sdk"]["median_ms"], 3)
    if args.raw:
        out["ratio_median_httpx"] = round(out["emulator_httpx"]["median_ms"] / out["bare_httpx"]["median_ms"], 3)
        out["emulator_extra_ms_median"] = round(out["emulator_httpx"]["median_ms"] - out["bare_httpx"]["median_ms"], 4)
        out["thread_hop_ms_median"] = round(
            out["bare_threadhop_httpx"]["median_ms"] - out["bare_httpx"]["median_ms"], 4
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per target (default 2000)")
    parser.add_argument("--round-size", type=int, default=100, help="calls per target per alternating round")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls per target first")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sync", dest="use_async", action="store_false", help="sync openai.OpenAI (default)")
    mode.add_argument("--async", dest="use_async", action="store_true", help="openai.AsyncOpenAI")
    parser.set_defaults(use_async=False)
    parser.add_argument("--raw", action="store_true", help="also time plain httpx GETs (no SDK)")
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON line only")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.round_size < 1 or args.warmup < 0:
        parser.error("--calls and --round-size must be >= 1, --warmup >= 0")
    out = run(args)
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"per-request overhead: {out['calls_each']:,} batches.retrieve calls per target, {out['client']} openai "
        f"client, in-process, rounds of {args.round_size} alternating; canned Batch JSON {out['canned_bytes']} B; "
        f"load average {out['loadavg_1m']}"
    )
    for name in samples_order(out):
        r = out[name]
        print(f"  {name:20s} median {r['median_ms']:.3f} ms  p95 {r['p95_ms']:.3f} ms  mean {r['mean_ms']:.3f} ms")
    print(f"ratio of medians, emulator / bare Starlette, through the SDK: {out['ratio_median_sdk']}x")
    if args.raw:
        print(
            f"ratio of medians through plain httpx: {out['ratio_median_httpx']}x "
            f"(the emulator adds {out['emulator_extra_ms_median']:.3f} ms a request; one no-op run_in_threadpool "
            f"in the bare app adds {out['thread_hop_ms_median']:.3f} ms)"
        )
    return 0


def samples_order(out: dict[str, Any]) -> list[str]:
    names = ("emulator_sdk", "bare_sdk", "emulator_httpx", "bare_httpx", "bare_threadhop_httpx")
    return [k for k in names if k in out]


if __name__ == "__main__":
    raise SystemExit(main())
