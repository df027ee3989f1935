"""The `batchconf` command: `serve` the emulator, `check` a target, `check-all` the emulator's
profiles, list the `profiles`, score the `mutants`, build the `matrix`.

- `batchconf --version` prints the installed distribution's version.
- `batchconf profiles` prints a table of every bundled profile and variant (dialect, where
  results go, provider); `--names` prints the names the emulator serves, one a line, for scripts.
- `batchconf check [options]` runs `pytest --pyargs conformance [options]` in a fresh
  interpreter (`--strict` is batchconf's, passed on as `--batchconf-strict`); `-h`/`--help`
  shows batchconf's options, `--pytest-help` pytest's.
- `batchconf check-all` runs `check --strict` per served profile, then one matrix.
- `batchconf mutants` prints progress on stderr and the score table on stdout; exit 2 when
  the unmutated run cannot start.
- `batchconf serve` binds its address before printing anything: a port in use is exit 2 with
  one message.

The subcommands live in `emulator._cli`; the emulator's library code never imports them, and
only the command line reads the suite (`conformance`), which it runs in a subprocess.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from ._cli.profiles import served_profiles
from ._cli.serve import KEYS_ENV, add_state_arguments

__all__ = ["build_parser", "main", "served_profiles", "version"]


def version() -> str:
    """The installed batchconf distribution's version ("0+unknown" when not installed)."""
    try:
        return metadata.version("batchconf")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `batchconf` (`check` and `matrix` only name their subcommand
    here: their arguments go to pytest and to `conformance.matrix`)."""
    parser = argparse.ArgumentParser(
        prog="batchconf", description="Batch inference API emulator and conformance suite."
    )
    parser.add_argument("--version", action="version", version=f"batchconf {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the emulator as an HTTP server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any free port)")
    serve.add_argument("--profile", default="openai", help="provider profile to emulate (default openai)")
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help=f"accepted API key (repeatable); else the comma-separated {KEYS_ENV}; else one is generated and printed",
    )
    serve.add_argument(
        "--progression",
        choices=("timed", "per_poll", "manual"),
        default="timed",
        help="what moves batches: the clock and timing model (default), each poll, or explicit steps",
    )
    serve.add_argument("--clock", choices=("real", "virtual"), default="real", help="real time (default) or virtual")
    serve.add_argument("--time-scale", type=float, default=1.0, help="real clock speed-up factor (default 1.0)")
    serve.add_argument("--validation-seconds", type=float, default=None, help="timing model: validation time")
    serve.add_argument("--request-seconds", type=float, default=None, help="timing model: per-request latency")
    serve.add_argument("--concurrency", type=int, default=None, help="timing model: requests run at once")
    serve.add_argument("--finalization-seconds", type=float, default=None, help="timing model: finalization time")
    serve.add_argument(
        "--s3-endpoint-url", default=None, help="S3 endpoint (moto server, MinIO, AWS); default moto in-process"
    )
    serve.add_argument("--s3-bucket", default=None, help="bucket to use (default: a new one per run)")
    add_state_arguments(serve)
    serve.add_argument(
        "--backend-url",
        default=None,
        help="forward each request line to this OpenAI-compatible server (e.g. vLLM at http://127.0.0.1:8001/v1) "
        "instead of the deterministic mock",
    )
    serve.add_argument(
        "--backend-api-key-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the backend's API key (never printed)",
    )
    serve.add_argument(
        "--result-naming",
        choices=("primary", "alternative"),
        default="primary",
        help="results beside the input: the profile's primary key names (default; Scaleway's how-to: _output) "
        "or the alternative its documents give (Scaleway's API reference: -output)",
    )
    serve.add_argument(
        "--webhook-allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a host webhooks may be delivered to (repeatable; default 127.0.0.1, localhost and ::1 only)",
    )
    serve.add_argument(
        "--no-admin", action="store_true", help="leave out the /_emulator admin routes (clock, faults, mutations, ...)"
    )
    serve.add_argument(
        "--admin-token-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the token the admin routes require (X-Batchconf-Admin-Token); "
        "required on any host but loopback, where one is generated and printed when no variable is named",
    )
    serve.add_argument("--seed", type=int, default=None, help="seed for ids and output order")
    serve.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")

    sub.add_parser(
        "check",
        help="run the conformance suite (pytest --pyargs conformance) against a target; "
        "`batchconf check --help` lists its options, any other option goes to pytest",
        add_help=False,
    )

    profiles = sub.add_parser(
        "profiles", help="list every profile and variant with its dialect and where its results go"
    )
    profiles.add_argument(
        "--names", action="store_true", help="print only the names the emulator serves, one a line (for scripts)"
    )

    check_all = sub.add_parser(
        "check-all",
        help="run the suite (strict) against the in-process emulator of every served profile and variant, "
        "then build the provider x capability matrix",
    )
    check_all.add_argument("--out", default="reports", help="folder for the reports (default reports/)")
    check_all.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME",
        help="a profile or variant to check (repeatable; default: every one the emulator serves)",
    )

    mutants = sub.add_parser(
        "mutants",
        help="run the suite (strict) against every named mutation of the emulator and print the score; "
        "progress goes to stderr",
    )
    mutants.add_argument("names", nargs="*", help="mutations to run (default: all)")
    mutants.add_argument("--jobs", type=int, default=2, help="suite runs in parallel (default 2)")
    mutants.add_argument("--profile", default="openai", help="profile to emulate and check (default openai)")
    mutants.add_argument(
        "--all-catchers", action="store_true", help="run the whole suite per mutation to list every catching test"
    )
    mutants.add_argument("--md", default=None, help="also write the table to this Markdown file")

    sub.add_parser("matrix", help="merge --results files into a provider x capability table", add_help=False)
    sub.add_parser("load", help="run Locust against the emulator or a URL target and audit it", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `batchconf` console script: the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # `check` and `matrix` pass every argument on, so argparse never sees them.
    if argv and argv[0] == "check":
        from ._cli.check import check

        return check(argv[1:])
    if argv and argv[0] == "load":
        from ._cli.load import load

        return load(argv[1:])
    if argv and argv[0] == "matrix":
        from ._cli.check import matrix

        return matrix(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "serve":
        from ._cli.serve import serve

        return serve(args)
    if args.command == "mutants":
        from ._cli.mutants import mutants

        return mutants(args)
    if args.command == "check-all":
        from ._cli.check import check_all

        return check_all(args, served_profiles())
    if args.command == "profiles":
        from ._cli.profiles import format_table, profile_rows

        print("\n".join(served_profiles()) if args.names else format_table(profile_rows()))
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
