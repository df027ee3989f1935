"""The mutation score: run the conformance suite once per named mutation of the emulator.

Each mutation is a contract violation; the suite must fail on every one of them. The suite
runs in a fresh interpreter per mutation (`python -m pytest --pyargs conformance
--emulator-mutation NAME`), so this module never imports the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MutantResult", "format_table", "run_mutant", "run_mutants"]

_FAILING = frozenset({"failed", "error"})


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
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "conformance",
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
        if mutation is not None:
            cmd += ["--emulator-mutation", mutation]
        if stop_at_first:
            cmd.append("-x")
        cmd += list(extra_args)
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
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
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        return MutantResult(mutation, proc.returncode, tuple(catchers), seconds, run, tail, skipped)


def run_mutants(
    names: Iterable[str] | None = None,
    *,
    jobs: int = 2,
    profile: str = "openai",
    stop_at_first: bool = True,
) -> tuple[MutantResult, list[MutantResult]]:
    """The unmutated baseline and one result per mutation (all of them by default)."""
    from . import mutations_for

    catalogue = mutations_for(profile)
    selected = list(catalogue if names is None else names)
    unknown = sorted(set(selected) - set(catalogue))
    if unknown:
        raise ValueError(f"unknown mutations {unknown} for profile {profile!r}; known: {sorted(catalogue)}")
    baseline = run_mutant(None, profile=profile, stop_at_first=False)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(lambda n: run_mutant(n, profile=profile, stop_at_first=stop_at_first), selected))
    return baseline, results


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
