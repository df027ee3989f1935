"""bench_peer.py and bench_scaling.py run and report what they measured; no timing is asserted.

bench_peer runs once on a 20-line batch against the served emulator alone (`--no-peer`):
what is checked is that its table has the emulator's row and its audit passed. The fit and
the cell plan are checked as functions.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

LOADTESTS = Path(__file__).resolve().parents[1] / "loadtests"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, LOADTESTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_bench_peer_reports_our_row_and_its_audit() -> None:
    """bench_peer MUST finish a served batch, print the emulator's row (lines, wall s, server
    CPU ms, µs/line) with a positive server CPU, pass its audit, and leave the peer out with a
    note when told to."""
    proc = subprocess.run(
        [sys.executable, str(LOADTESTS / "bench_peer.py"), "--sizes", "20", "--repeat", "1", "--no-peer"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    row = re.search(r"^batchconf +\| +20 \| +([\d.]+) \| +([\d.]+) \| +([\d.]+) \| +(\d+)$", out, re.M)
    assert row, out
    wall_s, cpu_ms, us_per_line, polls = (float(g) for g in row.groups())
    assert wall_s > 0 and cpu_ms > 0 and polls >= 1
    # Both columns are rounded to 0.1: the CPU's rounding, spread over 20 lines, is 2.5 µs.
    assert us_per_line == pytest.approx(cpu_ms * 1000 / 20, abs=2.6)
    assert "audit: passed" in out
    assert "no peer: --no-peer given" in out
    assert not re.search(r"^llmock +\|", out, re.M)


def test_bench_peer_fit_goes_through_two_sizes() -> None:
    """The fit MUST give b = (cpu2 - cpu1) / (n2 - n1) and a = cpu1 - n1*b from two sizes,
    and refuse a single size."""
    bench = _load("bench_peer")
    a, b = bench.fit_line([(1000, 31.2), (10000, 190.5)])
    assert b == pytest.approx((190.5 - 31.2) / 9000)
    assert a == pytest.approx(31.2 - 1000 * b)
    assert bench.fit_line([(1000, 31.2), (1000, 40.0)]) is None


def test_bench_scaling_plans_every_cell_and_judges_linearity() -> None:
    """bench_scaling MUST run 1k/10k/50k in both modes plus the 200 MB input in both modes
    (once each by default), and call lines/s linear only at or above the factor."""
    bench = _load("bench_scaling")
    cells = bench.plan(bench.parse_args([]))
    assert [(c.size, c.mode) for c in cells] == [
        (s, m) for s in ("1k", "10k", "50k", "200 MB") for m in ("in-process", "HTTP")
    ]
    large = [c for c in cells if c.size == "200 MB"]
    assert all(c.repeat == 1 and c.lines == 50_000 and "--line-bytes" in c.argv() for c in large)
    assert [("--serve" in c.argv()) for c in large] == [False, True]
    assert len(bench.plan(bench.parse_args(["--skip-large"]))) == 6
    rows = [
        {"mode": "HTTP", "size": "10k", "lines": 10_000, "lines_per_s": 20_000},
        {"mode": "HTTP", "size": "50k", "lines": 50_000, "lines_per_s": 9_000},
    ]
    (verdict,) = bench.linearity(rows, 0.5)
    assert (verdict["from"], verdict["to"], verdict["ratio"], verdict["linear"]) == ("10k", "50k", 0.45, False)
    assert bench.linearity(rows, 0.4)[0]["linear"] is True
