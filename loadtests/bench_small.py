"""Benchmark: what small batches cost in-process, where users spend their time.

Not a test. In one fresh child process per run (`--repeat`, medians across runs):

1. `Emulator()`: the first in the process (imports excluded; moto's start-up, the S3
   client), then `--emulators` more, each made and closed in turn: the median time to
   make one, and to close one.
2. A 10-line chat batch through the official sync `openai` SDK, in-process: upload,
   create, retrieve until completed (per-poll progression: 3 polls), download the output
   and check every custom_id once: the median of `--flows` flows after 5 to warm up.
3. The same six SDK calls answered by a bare Starlette app through the same in-process
   transport, each with the emulator's own answer captured from a flow (same status,
   same bytes): the floor the SDK and the transport put under any flow. And the two S3
   writes a flow cannot skip (its input and its results), timed as single in-process
   moto PUTs of the same sizes through the emulator's own client.

The flow's time is printed next to that floor and as a ratio of it (measured in the same
process, in alternating rounds), so that the machine's drift cancels.

Targets (issue 13): every `Emulator()` after the first at most 10 ms; a 10-line flow at
most 5 ms. `--check-targets` exits 1 when a median misses one.

    python loadtests/bench_small.py                  # 3 runs, 40 emulators, 60 flows each
    python loadtests/bench_small.py --repeat 5 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

TARGET_EMULATOR_MS = 10.0
TARGET_FLOW_MS = 5.0
LINES = 10
_ROUNDS = 4


def _jsonl(n: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello batch world"}]},
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


class Answer(NamedTuple):
    """One answer of the emulator, as the bare app replays it."""

    path: str
    status: int
    content_type: str
    body: bytes


def _flow(client: Any, data: bytes) -> None:
    """Upload, create, poll to terminal, download; audit the custom_ids."""
    f = client.files.create(file=("in.jsonl", data), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    for _ in range(20):
        if b.status in ("completed", "failed", "expired", "cancelled"):
            break
        b = client.batches.retrieve(b.id)
    if b.status != "completed" or not b.output_file_id:
        raise SystemExit(f"bench_small: the batch ended {b.status}")
    out = client.files.content(b.output_file_id).read()
    ids = sorted(json.loads(line)["custom_id"] for line in out.splitlines())
    if ids != sorted(f"r{i}" for i in range(LINES)):
        raise SystemExit(f"bench_small: audit failed: {ids}")


def _bare_client(answers: list[Answer], base_url: str) -> Any:
    """A sync SDK client on a bare Starlette app that replays `answers` in turn."""
    import httpx
    import openai
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from emulator._transport import SyncASGITransport

    turn = {"i": 0}

    async def reply(request: Request) -> Response:
        await request.body()
        answer = answers[turn["i"] % len(answers)]
        turn["i"] += 1
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    app = Starlette(routes=[Route("/{path:path}", reply, methods=["GET", "POST"])])
    transport = SyncASGITransport(app)
    return openai.OpenAI(
        api_key="sk-bare", base_url=base_url, max_retries=0, http_client=httpx.Client(transport=transport)
    )


def _recording_client(emu: Any) -> tuple[Any, list[Answer]]:
    """An SDK client on `emu` that records each answer it receives."""
    import httpx
    import openai

    seen: list[Answer] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        ctype = response.headers.get("content-type", "application/octet-stream")
        seen.append(Answer(response.request.url.path, response.status_code, ctype, response.content))

    http = emu.http_client(base_url=emu.base_url, event_hooks={"response": [keep]})
    client = openai.OpenAI(api_key=emu.api_key, base_url=emu.base_url, max_retries=0, http_client=http)
    return client, seen


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """One run in this process (the child)."""
    import emulator  # noqa: F401  (imports are not what is timed)
    from emulator import Emulator

    t = time.perf_counter()
    first = Emulator()
    first_ms = (time.perf_counter() - t) * 1000
    first.close()
    makes: list[float] = []
    closes: list[float] = []
    for _ in range(args.emulators):
        t = time.perf_counter()
        emu = Emulator()
        makes.append(time.perf_counter() - t)
        t = time.perf_counter()
        emu.close()
        closes.append(time.perf_counter() - t)

    data = _jsonl(LINES)
    with Emulator() as emu:
        client = emu.openai_client()
        recorder, answers = _recording_client(emu)
        _flow(recorder, data)
        bare = _bare_client(answers, emu.base_url)
        store = emu.store
        output = next(answer.body for answer in answers if answer.path.endswith("/content"))
        flows: list[float] = []
        floors: list[float] = []
        puts: list[float] = []
        for _ in range(5):
            _flow(client, data)
        per_round = max(1, args.flows // _ROUNDS)
        for _ in range(_ROUNDS):
            for _ in range(per_round):
                t = time.perf_counter()
                _flow(client, data)
                flows.append(time.perf_counter() - t)
            for _ in range(per_round):
                t = time.perf_counter()
                _flow(bare, data)
                floors.append(time.perf_counter() - t)
            for i in range(per_round):
                t = time.perf_counter()
                store.client.put_object(Bucket=store.bucket, Key=f"bench/in-{i}", Body=data)
                store.client.put_object(Bucket=store.bucket, Key=f"bench/out-{i}", Body=output)
                puts.append(time.perf_counter() - t)
    return {
        "first_emulator_ms": first_ms,
        "emulator_ms": _median_ms(makes),
        "emulator_p90_ms": sorted(makes)[int(len(makes) * 0.9)] * 1000,
        "close_ms": _median_ms(closes),
        "flow_ms": _median_ms(flows),
        "floor_sdk_transport_ms": _median_ms(floors),
        "floor_two_puts_ms": _median_ms(puts),
        "flow_over_floor": statistics.median(flows) / statistics.median(floors),
        "calls_per_flow": len(answers),
    }


def _child(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--child",
        "--emulators", str(args.emulators), "--flows", str(args.flows),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench_small: a run failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs, each in a fresh process (default 3)")
    parser.add_argument("--emulators", type=int, default=40, help="emulators made after the first (default 40)")
    parser.add_argument("--flows", type=int, default=60, help="10-line flows timed per run (default 60)")
    parser.add_argument("--check-targets", action="store_true", help="exit 1 when a median misses its target")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.emulators < 1 or args.flows < _ROUNDS:
        parser.error(f"--repeat and --emulators >= 1, --flows >= {_ROUNDS}")
    if args.child:
        print(json.dumps(one_run(args)))
        return 0
    runs = [_child(args) for _ in range(args.repeat)]
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    met = {
        "emulator": medians["emulator_ms"] <= TARGET_EMULATOR_MS,
        "flow": medians["flow_ms"] <= TARGET_FLOW_MS,
    }
    if args.json:
        print(json.dumps({"runs": runs, "medians": medians, "targets_met": met}))
    else:
        for i, r in enumerate(runs, 1):
            print(
                f"run {i}: first Emulator() {r['first_emulator_ms']:.0f} ms, then {r['emulator_ms']:.2f} ms "
                f"(p90 {r['emulator_p90_ms']:.2f}), close {r['close_ms']:.2f} ms; 10-line flow {r['flow_ms']:.2f} ms, "
                f"floor {r['floor_sdk_transport_ms']:.2f} ms SDK+transport + {r['floor_two_puts_ms']:.2f} ms 2 puts"
            )
        print(f"medians of {args.repeat} runs, each in a fresh process:")
        print(
            f"  Emulator() after the first: {medians['emulator_ms']:.2f} ms "
            f"(target <= {TARGET_EMULATOR_MS:g}: {'met' if met['emulator'] else 'MISSED'}); "
            f"the first: {medians['first_emulator_ms']:.0f} ms; close: {medians['close_ms']:.2f} ms"
        )
        print(
            f"  10-line flow through the SDK ({int(medians['calls_per_flow'])} calls): {medians['flow_ms']:.2f} ms "
            f"(target <= {TARGET_FLOW_MS:g}: {'met' if met['flow'] else 'MISSED'})"
        )
        floor = medians["floor_sdk_transport_ms"] + medians["floor_two_puts_ms"]
        print(
            f"  its floor: the same calls on a bare app {medians['floor_sdk_transport_ms']:.2f} ms "
            f"+ its two S3 writes on in-process moto {medians['floor_two_puts_ms']:.2f} ms = {floor:.2f} ms; "
            f"flow / bare app {medians['flow_over_floor']:.2f}x"
        )
    return 1 if args.check_targets and not all(met.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
