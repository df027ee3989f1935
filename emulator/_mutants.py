"""The mutation score: run the conformance suite once per named mutation of the emulator.

Each mutation is a contract violation; the suite must fail on every one of them. The suite
runs in a fresh interpreter per mutation (`python -m pytest --pyargs conformance
--emulator-mutation NAME`), so this module never imports the suite. The unmutated run goes
first: when it cannot start (a harness error: an unknown profile, a bad option, a broken
install), no mutation runs, since a score against a suite that cannot run would read as 0%.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ._suite_process import suite_process

__all__ = ["MutantResult", "format_table", "progress_line", "run_mutant", "run_mutants"]

_FAILING = frozenset({"failed", "error"})
#: Lines of a run's output kept for its report (the last ones: pytest's summary and reasons).
_TAIL_LINES = 30


@dataclass(frozen=True)
class MutantResult:
    """What the suite did against one mutation (`None` is the unmutated emulator)."""

    mutation: str | None
    exit_code: int
    catchers: tuple[str, ...]
    seconds: float
    tests_run: int
    output_tail: str = field(default="", repr=False)
    skipped: int = 0

    @property
    def caught(self) -> bool:
        """The suite failed (exit 1) and named at least one failing check."""
        return self.exit_code == 1 and bool(self.catchers)

    @property
    def harness_error(self) -> bool:
        """The suite could not run (pytest exit 2 or another code than 0 and 1): no verdict."""
        return self.exit_code not in (0, 1)

    def reason(self, lines: int = 5) -> str:
        """The last meaningful lines of the run's output: pytest's separators, blank lines and
        the repeats of one message (pytest prints an exit reason on stdout and stderr) left out."""
        kept: list[str] = []
        for raw in self.output_tail.splitlines():
            line = raw.strip().removeprefix("! ").removesuffix(" !").strip("= ")
            for prefix in ("_pytest.outcomes.Exit: ", "Exit: "):
                line = line.removeprefix(prefix)
            if not line.strip("=-_! ") or line in kept:
                continue
            kept.append(line)
        return "\n".join(kept[-lines:])


def run_mutant(
    mutation: str | None,
    *,
    profile: str = "openai",
    stop_at_first: bool = True,
    extra_args: Sequence[str] = (),
    timeout: float = 600.0,
) -> MutantResult:
    """Run the suite against the in-process emulator with `mutation` switched on."""
    with tempfile.TemporaryDirectory(prefix="batchconf-mutant-") as tmp:
        results = Path(tmp) / "results.jsonl"
        cmd, env = suite_process(
            [
                "-q",
                "-p",
                "no:cacheprovider",
                "--profile",
                profile,
                "--results",
                str(results),
                # Against our own emulator every profile fact is the contract it implements:
                # a violation of an inferred fact counts too.
                "--batchconf-strict",
            ]
        )
        if mutation is not None:
            cmd += ["--emulator-mutation", mutation]
        if stop_at_first:
            cmd.append("-x")
        cmd += list(extra_args)
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        seconds = time.perf_counter() - started
        catchers: list[str] = []
        run = 0
        skipped = 0
        if results.is_file():
            for line in results.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                outcome = record.get("outcome")
                if outcome != "deselected":
                    run += 1
                if outcome == "skipped":
                    skipped += 1
                if outcome in _FAILING:
                    catchers.append(str(record.get("nodeid")))
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-_TAIL_LINES:])
        return MutantResult(mutation, proc.returncode, tuple(catchers), seconds, run, tail, skipped)


def run_mutants(
    names: Iterable[str] | None = None,
    *,
    jobs: int = 2,
    profile: str = "openai",
    stop_at_first: bool = True,
    progress: Callable[[MutantResult], None] | None = None,
) -> tuple[MutantResult, list[MutantResult]]:
    """The unmutated baseline and one result per mutation (all of them by default), in the
    order asked; none when the baseline is a harness error. `progress` is called with each
    result as it finishes (the baseline first), from the worker threads."""
    from . import mutations_for

    catalogue = mutations_for(profile)
    selected = list(catalogue if names is None else names)
    unknown = sorted(set(selected) - set(catalogue))
    if unknown:
        raise ValueError(f"unknown mutations {unknown} for profile {profile!r}; known: {sorted(catalogue)}")
    report = progress or (lambda _: None)
    baseline = run_mutant(None, profile=profile, stop_at_first=False)
    report(baseline)
    if baseline.harness_error:
        return baseline, []

    def one(name: str) -> MutantResult:
        result = run_mutant(name, profile=profile, stop_at_first=stop_at_first)
        report(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, selected))
    return baseline, results


def progress_line(result: MutantResult) -> str:
    """One line on a finished run: the unmutated one's exit and checks, or a mutation's
    verdict and first catching test; with its time."""
    took = f"({result.seconds:.1f} s)"
    if result.mutation is None:
        verdict = {0: "conformant", 1: "NOT conformant"}.get(result.exit_code, "harness error")
        return f"unmutated: exit {result.exit_code}, {result.tests_run} checks, {verdict} {took}"
    if result.caught:
        first = result.catchers[0].removeprefix("conformance/suite/")
        return f"{result.mutation}: caught by {first} {took}"
    return f"{result.mutation}: MISSED (exit {result.exit_code}) {took}"


def format_table(baseline: MutantResult, results: Sequence[MutantResult], profile: str = "openai") -> str:
    """A Markdown table: mutation, what it breaks, verdict, the first catching test."""
    from . import mutations_for

    catalogue = mutations_for(profile)
    caught = sum(r.caught for r in results)
    lines = [
        f"Profile {profile}. Unmutated emulator: exit {baseline.exit_code}, {baseline.tests_run} checks"
        f" ({'conformant' if baseline.exit_code == 0 else 'NOT conformant'}).",
        "",
        "| mutation | contract violation | verdict | caught by |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        assert r.mutation is not None
        verdict = "caught" if r.caught else f"SURVIVED (exit {r.exit_code})"
        first = r.catchers[0].removeprefix("conformance/suite/") if r.catchers else "-"
        more = f" (+{len(r.catchers) - 1})" if len(r.catchers) > 1 else ""
        lines.append(f"| `{r.mutation}` | {catalogue.get(r.mutation, '?')} | {verdict} | `{first}`{more} |")
    total = len(results)
    score = 100.0 * caught / total if total else 0.0
    lines += ["", f"Mutation score: {caught}/{total} caught ({score:.0f}%)."]
    return "\n".join(lines)
