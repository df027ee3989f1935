"""The benchmark script runs end to end and its lost-nothing audit holds, in each mode.

Small batches, so nothing here measures speed (targets are judged by the script itself on
the full 50,000 lines); what is checked is that every mode completes the flow, accounts
for every custom_id, and reports the memory figures the README quotes.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "loadtests" / "bench_batch.py"
BENCH_SERVE = BENCH.with_name("bench_serve.py")


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="sync-in-process"),
        pytest.param(["--async"], id="async-in-process"),
        pytest.param(["--serve"], id="sync-served"),
    ],
)
def test_bench_batch_completes_and_audits(extra: list[str]) -> None:
    """bench_batch MUST finish a batch in every mode with every custom_id exactly once."""
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--lines", "600", "--repeat", "1", "--json", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit 1 only means a speed target was missed, which 600 lines say nothing about.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["audit_ok"] and summary["problems"] == []
    run = summary["runs"][0]
    assert run["statuses"][-1] == "completed"
    assert run["request_counts"] == {"completed": 600, "failed": 0}
    assert run["peak_rss_mb"] >= run["rss_emulator_ready_mb"] > 0
    assert run["rss_growth_ratio_from_ready"] >= 0
    assert (run.get("target") == "serve") == ("--serve" in extra)


def _bench_serve() -> Any:
    spec = importlib.util.spec_from_file_location("bench_serve", BENCH_SERVE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_serve"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_bench_serve_parses_its_arguments() -> None:
    """bench_serve MUST default to the issue's wrk settings and refuse unknown operations."""
    bench = _bench_serve()
    args = bench.parse_args([])
    assert (args.threads, args.connections, args.duration, args.rounds) == (2, 32, 5.0, 3)
    assert args.ops == ["get", "list", "create"]
    assert bench.parse_args(["--ops", "create, get"]).ops == ["create", "get"]
    assert bench.parse_args(["--serve-arg=--state=store"]).serve_arg == ["--state=store"]
    for bad in (["--ops", "delete"], ["--rounds", "0"], ["--connections", "1", "--threads", "2"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_bench_serve_bare_app_replays_the_captured_answers() -> None:
    """The bare app MUST answer each operation with the captured status and the very bytes
    (so it sends the emulator's body size), and route only those three operations."""
    from starlette.testclient import TestClient

    bench = _bench_serve()
    answers = {
        "get": bench.Canned(200, b'{"id":"batch_1","object":"batch"}'),
        "list": bench.Canned(200, b'{"object":"list","data":[' + b'{"id":"b"},' * 19 + b'{"id":"c"}]}'),
        "create": bench.Canned(200, b'{"id":"batch_2","status":"validating"}'),
    }
    client = TestClient(bench.bare_app(answers))
    got = {
        "get": client.get("/v1/batches/batch_1"),
        "list": client.get("/v1/batches?limit=20"),
        "create": client.post("/v1/batches", content=b'{"input_file_id":"file-1"}'),
    }
    for op, resp in got.items():
        assert resp.status_code == answers[op].status
        assert resp.content == answers[op].body
        assert resp.headers["content-type"] == "application/json"
    assert client.delete("/v1/batches/batch_1").status_code == 405
    assert client.get("/v1/files").status_code == 404


def test_bench_serve_wrk_script_carries_the_body_verbatim() -> None:
    """The wrk Lua script MUST send the create body byte for byte, whatever brackets it holds."""
    bench = _bench_serve()
    body = b'{"metadata":{"k":"]]"},"x":"]=]"}'
    script = bench.wrk_script("POST", {"Content-Type": "application/json"}, body)
    assert 'wrk.method = "POST"' in script
    assert "wrk.body = [==[" + body.decode() + "]==]" in script
    assert "BENCH {" in script and "latency:percentile(99)" in script


def test_bench_serve_without_wrk_exits_2(tmp_path: Path) -> None:
    """bench_serve MUST exit 2 and say how to install wrk when wrk is missing."""
    proc = subprocess.run(
        [sys.executable, str(BENCH_SERVE), "--wrk", str(tmp_path / "no-wrk")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "apt-get install -y wrk" in proc.stderr


def test_bench_small_completes_its_flows_and_reports_each_figure() -> None:
    """bench_small MUST run its flows to completion (each audited) through the emulator and
    through the bare app, and report every figure it judges; it asserts no timing."""
    proc = subprocess.run(
        [sys.executable, str(BENCH.with_name("bench_small.py")), "--repeat", "1", "--emulators", "3",
         "--flows", "4", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    medians = summary["medians"]
    assert medians["calls_per_flow"] == 6  # upload, create, 3 polls, download
    for key in ("first_emulator_ms", "emulator_ms", "close_ms", "flow_ms", "floor_sdk_transport_ms"):
        assert medians[key] > 0, key
    assert set(summary["targets_met"]) == {"emulator", "flow"}
