"""The `batchconf` command: `serve` the emulator, `check` a target, build the `matrix`.

`check` runs the conformance suite through pytest (`pytest --pyargs conformance ...`) and
`matrix` runs `conformance.matrix`; the emulator package itself never imports the suite.
"""

from __future__ import annotations

import argparse
import os
import runpy
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

KEYS_ENV = "BATCHCONF_API_KEYS"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `batchconf`."""
    parser = argparse.ArgumentParser(
        prog="batchconf", description="Batch inference API emulator and conformance suite."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the emulator as an HTTP server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
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

    check = sub.add_parser(
        "check",
        help="run the conformance suite (pytest --pyargs conformance); other options are passed to pytest",
        add_help=False,
    )
    check.add_argument("pytest_args", nargs=argparse.REMAINDER)

    sub.add_parser("profiles", help="list the profiles and variants the emulator serves, one a line")

    check_all = sub.add_parser(
        "check-all",
        help="run the suite against the in-process emulator of every served profile and variant, "
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
        "mutants", help="run the suite against every named mutation of the emulator and print the score"
    )
    mutants.add_argument("names", nargs="*", help="mutations to run (default: all)")
    mutants.add_argument("--jobs", type=int, default=2, help="suite runs in parallel (default 2)")
    mutants.add_argument("--profile", default="openai", help="profile to emulate and check (default openai)")
    mutants.add_argument(
        "--all-catchers", action="store_true", help="run the whole suite per mutation to list every catching test"
    )
    mutants.add_argument("--md", default=None, help="also write the table to this Markdown file")

    matrix = sub.add_parser("matrix", help="merge --results files into a provider x capability table", add_help=False)
    matrix.add_argument("matrix_args", nargs=argparse.REMAINDER)
    return parser


def _keys(args: argparse.Namespace) -> tuple[tuple[str, ...], bool]:
    keys = [k for k in args.api_key if k]
    if not keys:
        keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    if keys:
        return tuple(keys), False
    return ("sk-batchconf-" + secrets.token_hex(16),), True


def serve(args: argparse.Namespace) -> int:
    """Run the emulator under uvicorn until interrupted."""
    import uvicorn

    from schemas import ProfileError, UnknownProfileError, load_profile

    from ._clock import RealClock, VirtualClock
    from ._emulator import Emulator
    from ._provider import DEFAULT_WEBHOOK_HOSTS
    from ._timing import TimingModel

    keys, generated = _keys(args)
    timing = TimingModel.quick() if args.progression == "timed" else TimingModel(progression=args.progression)
    changes = {
        name: getattr(args, name)
        for name in ("validation_seconds", "request_seconds", "concurrency", "finalization_seconds")
        if getattr(args, name) is not None
    }
    changes["progression"] = args.progression
    admin_token = os.environ.get(args.admin_token_env) if args.admin_token_env else None
    if args.admin_token_env and not admin_token:
        print(f"batchconf serve: {args.admin_token_env} is not set (--admin-token-env)", file=sys.stderr)
        return 2
    token_generated = False
    if not args.no_admin and admin_token is None and args.host not in _LOOPBACK_HOSTS:
        # Anyone who reaches the server could move its clock or switch on mutations.
        admin_token = secrets.token_urlsafe(24)
        token_generated = True
    moto_server = None
    s3_endpoint_url = args.s3_endpoint_url
    try:
        profile = load_profile(args.profile)
        if s3_endpoint_url is None and profile.output.location == "object_storage":
            # The user's bucket must be reachable by the user's own client (boto3, the aws
            # CLI): a moto server on 127.0.0.1 stands in for the provider's Object Storage.
            from moto.server import ThreadedMotoServer

            moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto_server.start()
            host, port = moto_server.get_host_and_port()
            s3_endpoint_url = f"http://{host}:{port}"
        timing = timing.updated(changes)
        clock = RealClock(args.time_scale) if args.clock == "real" else VirtualClock()
        backend = None
        if args.backend_url:
            from ._backend import HttpBackend

            key = os.environ.get(args.backend_api_key_env) if args.backend_api_key_env else None
            backend = HttpBackend(args.backend_url, api_key=key)
        emu = Emulator(
            profile,
            api_keys=keys,
            timing=timing,
            clock=clock,
            seed=args.seed,
            s3_endpoint_url=s3_endpoint_url,
            s3_bucket=args.s3_bucket,
            backend=backend,
            webhook_hosts=tuple(args.webhook_allow_host) or DEFAULT_WEBHOOK_HOSTS,
            public_url=f"http://{args.host}:{args.port}",
            result_naming=args.result_naming,
            admin=not args.no_admin,
            admin_token=admin_token,
        )
    except (ValueError, UnknownProfileError, ProfileError, NotImplementedError) as exc:
        if moto_server is not None:
            moto_server.stop()
        print(f"batchconf serve: {exc}", file=sys.stderr)
        return 2
    root = f"http://{args.host}:{args.port}"
    for surface in emu.provider.surfaces:
        what = f"{surface.profile.name} profile" if surface is emu.provider.main else f"{emu.profile.name}'s compatible"
        print(
            f"batchconf emulator ({what}, {surface.dialect.name} dialect) on {root}{surface.profile.http.base_path}",
            flush=True,
        )
    store = emu.store
    where = store.endpoint_url or "in-process (moto)"
    if moto_server is not None:
        where += " (a moto server started for this run; region us-east-1, any credentials)"
    print(f"S3: {where}; the emulator's own bucket {store.bucket}", flush=True)
    if emu.batch_principals:
        name, application = emu.batch_principals
        print(f"batch principal: {name} ({application}); a bucket policy must allow it", flush=True)
    if emu.webhooks is not None:
        print(f"webhooks to: {', '.join(emu.webhooks.allowed_hosts)}", flush=True)
    if args.no_admin:
        print("admin routes: off", flush=True)
    elif token_generated:
        # The operator must learn it once; it is printed nowhere else.
        print(f"admin routes need X-Batchconf-Admin-Token: {admin_token}", flush=True)
    elif admin_token is not None:
        print(f"admin routes need the token in {args.admin_token_env}", flush=True)
    if generated:
        # The one time a key is printed: the operator asked for none and must learn this one.
        print(f"API key (generated): {keys[0]}", flush=True)
    else:
        print(f"API keys: {len(keys)} configured", flush=True)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into a normal exit so
    # the `finally` below releases storage (a bucket on a shared S3 must not be left behind).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(emu.app, host=args.host, port=args.port, log_level=args.log_level, lifespan="off")
    finally:
        emu.close()
        if moto_server is not None:
            moto_server.stop()
    return 0


def served_profiles() -> list[str]:
    """Every bundled profile and variant whose dialect and storage the emulator serves."""
    from schemas import load_profile, profile_names

    from .dialects import DIALECTS

    names: list[str] = []
    for name in profile_names():
        profile = load_profile(name)
        if profile.dialect not in DIALECTS:
            continue
        names.append(name)
        names.extend(f"{name}+{v.name}" for v in profile.variants)
    return names


def check_all(args: argparse.Namespace) -> int:
    """`batchconf check` once per profile (in-process), then `batchconf matrix` over them all.

    Exit 0 when every profile is conformant, 1 when one is not, 2 on a harness error."""
    from pathlib import Path

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.profile or served_profiles()
    worst = 0
    results: list[str] = []
    for name in names:
        stem = name.replace("+", "_")
        result = out / f"results-{stem}.jsonl"
        result.unlink(missing_ok=True)
        print(f"== batchconf check --profile {name}", flush=True)
        code = main(
            ["check", "--profile", name, "--results", str(result), "--junitxml", str(out / f"junit-{stem}.xml")]
        )
        print(f"== {name}: exit {code}", flush=True)
        worst = max(worst, code)
        if result.is_file():
            results.append(str(result))
    if results:
        main(["matrix", *results, "--md", str(out / "matrix.md"), "--html", str(out / "matrix.html")])
    return worst


def mutants(args: argparse.Namespace) -> int:
    """Print the mutation score; exit 0 only when every mutation is caught and the
    unmutated emulator is conformant."""
    from ._mutants import format_table, run_mutants

    try:
        baseline, results = run_mutants(
            args.names or None, jobs=args.jobs, profile=args.profile, stop_at_first=not args.all_catchers
        )
    except ValueError as exc:
        print(f"batchconf mutants: {exc}", file=sys.stderr)
        return 2
    table = format_table(baseline, results, args.profile)
    print(table)
    if args.md:
        with open(args.md, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    ok = baseline.exit_code == 0 and all(r.caught for r in results)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `batchconf` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "check":
        # A fresh interpreter: this process has already imported the emulator, and pytest
        # must import (and assertion-rewrite) the suite's modules itself.
        # `--strict` is batchconf's here; under plain pytest it is pytest's own option.
        pytest_args = ["--batchconf-strict" if a == "--strict" else a for a in argv[1:]]
        code = subprocess.call([sys.executable, "-m", "pytest", "--pyargs", "conformance", *pytest_args])
        # pytest's own usage, internal and no-tests codes (3, 4, 5) are harness errors here.
        return 2 if code in (2, 3, 4, 5) else code
    if argv and argv[0] == "matrix":
        sys.argv = ["batchconf matrix", *argv[1:]]
        try:
            runpy.run_module("conformance.matrix", run_name="__main__")
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "mutants":
        return mutants(args)
    if args.command == "check-all":
        return check_all(args)
    if args.command == "profiles":
        print("\n".join(served_profiles()))
        return 0
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
