"""`batchconf matrix RESULTS...`: a run x capability table from `--results` files.

Each row is a run, identified by its name (`--target-name`; by default the profile and the
target), its target, its profile and the time it started; the Markdown table has runs as
rows, the HTML page runs as columns. Each cell counts one capability's checks in one run
(passed/ran) and carries one mark, a word (colour is added in HTML, never alone):

    FAIL       a check failed or errored; deviations in the same cell are counted in its note
    DEVIATION  a check failed only on a profile fact marked unverified (a deviation from an
               inferred expectation); it does not fail the run unless it ran with --strict
    STALE      a known deviation no longer happens (xpass): the profile's data is stale
    KNOWN      a deviation the profile records as known (xfail)
    PASS       every check that ran passed
    N/A        nothing ran: not offered by the profile, skipped, blocked by a scenario that
               failed, or not run (the target has no admin routes)

The first that applies wins. Blocked checks count like skipped ones but are named apart.
Each cell with failed, errored, deviating, stale, known or blocked checks lists them (test
name, outcome, first line of the message): under the Markdown table, run by run; inside the
HTML cell. The Markdown also gives each run's totals (passed, failed, errors, deviations,
known, stale, skipped, blocked, n/a). Tests left out with -k/-m are not counted.

Several files merge: a check (run, node id) seen more than once keeps its last result, in the
order the files are given, so a later run of the same name, target and profile replaces an
earlier one check by check. The command says on stderr which runs it merged and which it
replaced ("merged:" / "replaced:" lines), and both reports end with the same account.
Writes Markdown (`--md`), self-contained HTML (`--html`), or Markdown on stdout.
Exit status: 0 written, 2 unreadable input or no results.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._matrix import (
    DEVIATION,
    FAIL,
    KNOWN,
    MARKS,
    NA,
    PASS,
    STALE,
    Cell,
    Listed,
    Matrix,
    MatrixError,
    Replacement,
    Row,
    Run,
    build,
    load,
)
from ._matrix_html import MARK_CLASSES, render_html
from ._matrix_md import render_markdown

__all__ = [
    "DEVIATION",
    "FAIL",
    "KNOWN",
    "MARKS",
    "MARK_CLASSES",
    "NA",
    "PASS",
    "STALE",
    "Cell",
    "Listed",
    "Matrix",
    "MatrixError",
    "Replacement",
    "Row",
    "Run",
    "build",
    "load",
    "main",
    "render_html",
    "render_markdown",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchconf matrix",
        description="Merge batchconf --results files into a run x capability matrix.",
    )
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="results files (JSON lines)")
    parser.add_argument("--md", type=Path, metavar="OUT.md", help="write the Markdown report here")
    parser.add_argument("--html", type=Path, metavar="OUT.html", help="write the HTML page here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 written, 2 bad input or usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2
    try:
        lines = load(args.results)
    except MatrixError as exc:
        print(f"batchconf matrix: {exc}", file=sys.stderr)
        return 2
    if not lines:
        print("batchconf matrix: the results files hold no result lines", file=sys.stderr)
        return 2
    matrix = build(lines)
    if len(matrix.sources) > 1 or len(matrix.runs) > 1:
        # Only a merge needs accounting for; one run of one file is what was asked for.
        for line in matrix.account():
            print(f"batchconf matrix: {line}", file=sys.stderr)
    markdown = render_markdown(matrix)
    try:
        if args.md:
            args.md.parent.mkdir(parents=True, exist_ok=True)
            args.md.write_text(markdown, encoding="utf-8")
        if args.html:
            args.html.parent.mkdir(parents=True, exist_ok=True)
            args.html.write_text(render_html(matrix), encoding="utf-8")
    except OSError as exc:
        print(f"batchconf matrix: cannot write: {exc}", file=sys.stderr)
        return 2
    if not args.md and not args.html:
        sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
