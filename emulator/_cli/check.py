"""`batchconf check`, `check-all` and `matrix`: the suite and its reports, each run in the way
`pytest --pyargs conformance` and `python -m conformance.matrix` run them.

`check` hands its arguments to pytest, but answers `-h`/`--help` itself: batchconf's options
first, in the words of the suite plugin's own option table, then pytest's on request.
"""

from __future__ import annotations

import argparse
import runpy
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .._suite_process import suite_process

__all__ = ["check", "check_all", "check_help_parser", "matrix"]

_HELP_FLAGS = frozenset({"-h", "--help"})

_DESCRIPTION = """\
Run the conformance suite (pytest --pyargs conformance) against a target: the in-process
emulator by default, or a provider's URL. Each option below also answers to
--batchconf-<name>, and can be set in [tool.batchconf] of pyproject.toml, in
conformance.toml or in a BATCHCONF_<KEY> variable; the command line wins."""

_EPILOG = """\
Any other option is passed to pytest (-k EXPR, -x, -q, --collect-only, --junitxml FILE, ...);
`batchconf check --pytest-help` shows pytest's.

Exit status: 0 conformant, 1 not conformant, 2 harness or configuration error.

examples:
  # the built-in emulator of a profile, in-process
  batchconf check --profile scaigrid

  # a provider: its URL, the key's variable (never the key), a name for this run's reports
  export MY_KEY=...
  batchconf check --target-url https://api.example.com/v1 --profile openai --api-key-env MY_KEY \\
      --target-name example-prod --results results.jsonl --junitxml junit.xml

  # a server without the emulator's admin routes; unverified profile facts must hold too
  batchconf check --target-url http://127.0.0.1:8000/v1 --no-target-controls --strict
"""


def check_help_parser() -> argparse.ArgumentParser:
    """The parser whose help `batchconf check --help` prints: the plugin's options, with its
    flags, metavars and words (`conformance._options`). It only formats help;
    the options themselves are parsed and validated by the plugin inside pytest."""
    from conformance._options import NO_CONTROLS, OPTIONS

    parser = argparse.ArgumentParser(
        prog="batchconf check",
        usage="batchconf check [batchconf options] [pytest options]",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    group = parser.add_argument_group("batchconf options")
    group.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    group.add_argument("--pytest-help", action="store_true", help="show pytest's options and exit")
    for option in (*OPTIONS, NO_CONTROLS):
        kwargs: dict[str, object] = {"dest": option.dest, "help": option.help}
        if option.metavar:
            kwargs["metavar"] = option.metavar
        if option.action == "store_const":
            kwargs.update(action="store_const", const=option.const)
        elif option.action == "append":
            kwargs["action"] = "append"
        group.add_argument(option.flag, *option.aliases, **kwargs)  # type: ignore[arg-type]
    return parser


def _before_separator(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    return args[: args.index("--")] if "--" in args else args


def check(argv: Sequence[str]) -> int:
    """`batchconf check ARGS`: pytest's exit status, with pytest's usage, internal and
    no-tests codes (3, 4, 5) mapped to 2, the harness-error status."""
    mine = _before_separator(argv)
    if _HELP_FLAGS & set(mine):
        check_help_parser().print_help()
        return 0
    if "--pytest-help" in mine:
        return subprocess.call([sys.executable, "-m", "pytest", "--help"])
    # A fresh interpreter: this process has already imported the emulator, and pytest must
    # import (and assertion-rewrite) the suite's modules itself.
    # `--strict` is batchconf's here; under plain pytest it is pytest's own option.
    pytest_args = ["--batchconf-strict" if a == "--strict" else a for a in argv]
    argv, env = suite_process(pytest_args)
    code = subprocess.call(argv, env=env)
    return 2 if code in (2, 3, 4, 5) else code


def matrix(argv: Sequence[str]) -> int:
    """`batchconf matrix ARGS`: `python -m conformance.matrix ARGS` in this process."""
    saved = sys.argv
    sys.argv = ["batchconf matrix", *argv]
    try:
        runpy.run_module("conformance.matrix", run_name="__main__")
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


def check_all(args: argparse.Namespace, served: Sequence[str]) -> int:
    """`batchconf check --strict` once per profile (in-process), then `batchconf matrix` over
    them all. Strict: the emulator implements its profiles, so an inferred fact must hold
    there too.

    Exit 0 when every profile is conformant, 1 when one is not, 2 on a harness error."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.profile or served
    worst = 0
    results: list[str] = []
    for name in names:
        stem = name.replace("+", "_")
        result = out / f"results-{stem}.jsonl"
        result.unlink(missing_ok=True)
        print(f"== batchconf check --strict --profile {name}", flush=True)
        code = check(
            ["--strict", "--profile", name, "--results", str(result), "--junitxml", str(out / f"junit-{stem}.xml")]
        )
        print(f"== {name}: exit {code}", flush=True)
        worst = max(worst, code)
        if result.is_file():
            results.append(str(result))
    if results:
        matrix([*results, "--md", str(out / "matrix.md"), "--html", str(out / "matrix.html")])
    return worst
