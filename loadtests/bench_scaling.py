"""Benchmark: lines/s of batch processing at several sizes, in-process and over HTTP, in one table.

Not a test. Each cell is one `bench_batch.py --json` subprocess (which itself runs every
measured batch in a fresh child process and reports medians), so this script measures
nothing itself; it only runs the cells and lays their figures side by side:

- 1,000, 10,000 and 50,000 chat lines (~300 B a line; `--sizes`), in-process (the official
  `openai` SDK on the emulator's in-process transport) and over HTTP (`--serve`: against
  `batchconf serve` on 127.0.0.1), `--repeat` runs each (default 3);
- a 200 MB batch (50,000 lines of ~4,000 B: `--line-bytes 4000`), in-process and over HTTP,
  `--repeat-large` runs each (default 1; each takes about 10 s); `--skip-large` leaves it out.

Printed: one row per cell (size | mode | lines | MB | s | lines/s | MB/s | CPU s | peak RSS
growth/input), where s is the median end-to-end time, CPU s the median CPU of the process that
did the batch's work (in-process: the benchmark process; HTTP: the server process), and growth
the peak RSS over the RSS once the emulator is ready, as a multiple of the input file
(bench_batch's `rss_growth_ratio_from_ready`). Then, per mode, whether lines/s at the largest
size is within `--linear-factor` (default 0.5) of lines/s at the next size down: cost that
grows linearly keeps lines/s flat. `--json` prints one JSON object instead.

    python loadtests/bench_scaling.py                    # all 8 cells
    python loadtests/bench_scaling.py --skip-large --repeat 5
    python loadtests/bench_scaling.py --repeat-large 3 --json

bench_batch exits 1 when a run misses its own targets (>= 20,000 lines/s, which small and
200 MB batches are not meant to meet); that is not a failure here. Exit 1 only when a
cell's audit failed (a custom_id lost or duplicated, counts that disagree), 2 when a cell
produced no result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_BATCH = Path(__file__).resolve().with_name("bench_batch.py")
MODES = {"in-process": [], "HTTP": ["--serve"]}
CELL_TIMEOUT_PER_RUN_S = 700  # bench_batch allows 600 s per child run


@dataclass(frozen=True)
class Cell:
    """One bench_batch invocation."""

    size: str  # the row label: "1k", "10k", "50k", "200 MB"
    mode: str  # a key of MODES
    lines: int
    line_bytes: int
    repeat: int

    def argv(self) -> list[str]:
        """The bench_batch command line for this cell."""
        cmd = [sys.executable, str(BENCH_BATCH), "--lines", str(self.lines), "--repeat", str(self.repeat)]
        if self.line_bytes:
            cmd += ["--line-bytes", str(self.line_bytes)]
        return [*cmd, *MODES[self.mode], "--json"]


def _label(lines: int) -> str:
    return f"{lines // 1000}k" if lines % 1000 == 0 else str(lines)


def plan(args: argparse.Namespace) -> list[Cell]:
    """The cells to run, smallest first, both modes of a size one after the other."""
    cells = [Cell(_label(n), mode, n, 0, args.repeat) for n in args.sizes for mode in MODES]
    if not args.skip_large:
        repeat = args.repeat if args.repeat_large else 1
        label = f"{args.large_lines * args.large_line_bytes / 1e6:.0f} MB"
        cells += [Cell(label, mode, args.large_lines, args.large_line_bytes, repeat) for mode in MODES]
    return cells


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run bench_batch for `cell` and return its JSON summary (raises RuntimeError without one)."""
    proc = subprocess.run(
        cell.argv(),
        capture_output=True,
        text=True,
        timeout=CELL_TIMEOUT_PER_RUN_S * cell.repeat,
        check=False,
    )
    last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
    try:
        summary: dict[str, Any] = json.loads(last[0]) if last else {}
    except json.JSONDecodeError:
        summary = {}
    if proc.returncode not in (0, 1) or "median_phases_s" not in summary:
        raise RuntimeError(
            f"bench_batch gave no result for {cell.size} {cell.mode} (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return summary


def row(cell: Cell, summary: dict[str, Any]) -> dict[str, Any]:
    """One table row from a bench_batch JSON summary."""
    total = summary["median_phases_s"]["total"]
    mb = summary["input_bytes"] / 1e6
    return {
        "size": cell.size,
        "mode": cell.mode,
        "lines": summary["lines"],
        "mb": round(mb, 1),
        "repeat": summary["repeat"],
        "s": round(total, 3),
        "lines_per_s": summary["median_lines_per_s"],
        "mb_per_s": round(mb / total, 2),
        "cpu_s": summary["median_cpu_s"],
        "rss_growth_per_input": summary["median_rss_growth_ratio_from_ready"],
        "peak_rss_mb": summary["median_peak_rss_mb"],
        "audit_ok": bool(summary["audit_ok"]),
        "problems": summary["problems"],
        "command": " ".join(["python", "loadtests/bench_batch.py", *cell.argv()[2:]]),
    }


def linearity(rows: Sequence[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """Per mode, lines/s at the largest ~300 B-line size against the next size down."""
    out = []
    for mode in MODES:
        small = sorted(
            (r for r in rows if r["mode"] == mode and not r["size"].endswith("MB")), key=lambda r: r["lines"]
        )
        if len(small) < 2:
            continue
        lo, hi = small[-2], small[-1]
        ratio = hi["lines_per_s"] / lo["lines_per_s"]
        out.append(
            {
                "mode": mode,
                "from": lo["size"],
                "to": hi["size"],
                "ratio": round(ratio, 2),
                "factor": factor,
                "linear": ratio >= factor,
            }
        )
    return out


def print_table(result: dict[str, Any]) -> None:
    """The human-readable form of `result`."""
    print(
        f"bench_scaling {result['date']}: bench_batch.py per cell, {os.cpu_count()} CPUs, "
        f"load {result['loadavg_start']} at start, {result['loadavg_end']} at the end; "
        f"emulator code {result['code']}"
    )
    header = ("size", "mode", "lines", "MB", "s", "lines/s", "MB/s", "CPU s", "peak RSS growth/input", "runs")
    cells = [
        (
            r["size"],
            r["mode"],
            f"{r['lines']:,}",
            f"{r['mb']:.1f}",
            f"{r['s']:.3f}",
            f"{r['lines_per_s']:,}",
            f"{r['mb_per_s']:.2f}",
            f"{r['cpu_s']:.2f}",
            f"{r['rss_growth_per_input']:.2f}x",
            str(r["repeat"]),
        )
        for r in result["rows"]
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths, strict=True))))
    print(
        "s: median end to end (upload, create, poll to completed, download + audit); CPU s: the process doing "
        "the work (in-process: the benchmark's; HTTP: the server's); growth: peak RSS over the RSS once the "
        "emulator is ready, / input size"
    )
    for lin in result["linearity"]:
        print(
            f"linear cost, {lin['mode']}: lines/s at {lin['to']} = {lin['ratio']:.2f}x lines/s at {lin['from']} "
            f"(>= {lin['factor']}x: {'yes' if lin['linear'] else 'NO'})"
        )
    print("audit: " + ("passed in every cell" if result["audit_ok"] else "FAILED: " + "; ".join(result["problems"])))
    print("commands:")
    for r in result["rows"]:
        print(f"  {r['command']}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated line counts (~300 B lines)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell, medians (default 3)")
    parser.add_argument(
        "--repeat-large", action="store_true", help="--repeat runs for the 200 MB cells too (default 1)"
    )
    parser.add_argument("--skip-large", action="store_true", help="leave out the 200 MB cells")
    parser.add_argument("--large-lines", type=int, default=50_000, help=argparse.SUPPRESS)
    parser.add_argument("--large-line-bytes", type=int, default=4000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--linear-factor", type=float, default=0.5, help="lines/s at the largest size must be >= this x the next"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--sizes: comma-separated integers")
    if not args.sizes or args.sizes[0] < 1 or args.repeat < 1:
        parser.error("--sizes and --repeat must be >= 1")
    return args


def code_under_test() -> str:
    """Where bench_batch's children import `emulator` from (a script's sys.path starts with
    its own directory, which holds no `emulator`), and that tree's `git describe`."""
    proc = subprocess.run(
        [sys.executable, "-c", "import emulator; print(emulator.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=BENCH_BATCH.parent,
    )
    pkg = Path(proc.stdout.strip()).parent
    desc = subprocess.run(
        ["git", "-C", str(pkg), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    )
    return f"{pkg} ({desc.stdout.strip() or 'not a git checkout'})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {
        "bench": "batch_scaling",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_start": round(os.getloadavg()[0], 2),
        "code": code_under_test(),
    }
    rows = []
    for cell in plan(args):
        if not args.json:
            print(f"running {cell.size} {cell.mode} ({cell.repeat} run(s))...", file=sys.stderr, flush=True)
        try:
            rows.append(row(cell, run_cell(cell)))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"bench_scaling: {exc}", file=sys.stderr)
            return 2
    problems = [f"{r['size']} {r['mode']}: {p}" for r in rows for p in r["problems"]]
    problems += [f"{r['size']} {r['mode']}: audit failed" for r in rows if not r["audit_ok"] and not r["problems"]]
    result.update(
        rows=rows,
        linearity=linearity(rows, args.linear_factor),
        loadavg_end=round(os.getloadavg()[0], 2),
        audit_ok=not problems,
        problems=problems,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
