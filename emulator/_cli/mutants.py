"""`batchconf mutants`: the mutation score, with progress on stderr and the table on stdout."""

from __future__ import annotations

import argparse
import sys
import threading

__all__ = ["mutants"]


def mutants(args: argparse.Namespace) -> int:
    """Print the mutation score table. Exit 0 only when the unmutated emulator is conformant
    and every mutation is caught, 1 otherwise, 2 when the runs cannot start (an unknown profile
    or mutation, or an unmutated run that is a harness error: its reason is printed)."""
    from schemas import ProfileError, UnknownProfileError

    from .. import mutations_for
    from .._mutants import MutantResult, format_table, progress_line, run_mutants

    try:
        catalogue = mutations_for(args.profile)
    except UnknownProfileError as exc:
        print(f"batchconf mutants: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except (ProfileError, NotImplementedError) as exc:
        print(f"batchconf mutants: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(set(args.names) - set(catalogue))
    if unknown:
        print(
            f"batchconf mutants: unknown mutations {unknown} for profile {args.profile!r}; known: {sorted(catalogue)}",
            file=sys.stderr,
        )
        return 2
    total = len(args.names or catalogue)
    print(
        f"batchconf mutants: profile {args.profile}, {total} mutation{'' if total == 1 else 's'}, "
        f"{max(1, args.jobs)} suite runs at a time, after one unmutated run",
        file=sys.stderr,
        flush=True,
    )
    lock = threading.Lock()
    done = 0

    def report(result: MutantResult) -> None:
        nonlocal done
        with lock:  # called from the worker threads: one whole line at a time
            if result.mutation is None:
                print(progress_line(result), file=sys.stderr, flush=True)
                return
            done += 1
            print(f"[{done}/{total}] {progress_line(result)}", file=sys.stderr, flush=True)

    baseline, results = run_mutants(
        args.names or None, jobs=args.jobs, profile=args.profile, stop_at_first=not args.all_catchers, progress=report
    )
    if baseline.harness_error:
        reason = baseline.reason() or "(it printed nothing)"
        print(
            f"batchconf mutants: the unmutated run could not start (pytest exit {baseline.exit_code}); "
            "no mutation was run:\n" + "\n".join(f"  {line}" for line in reason.splitlines()),
            file=sys.stderr,
        )
        return 2
    table = format_table(baseline, results, args.profile)
    print(table)
    if args.md:
        with open(args.md, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    ok = baseline.exit_code == 0 and all(r.caught for r in results)
    return 0 if ok else 1
