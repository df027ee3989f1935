"""The suite's command-line options and markers, in batchconf's words.

Each option has a config key (`conformance._config` resolves and validates it, with the same
precedence for every source) and a flag; every flag also answers to `--batchconf-<name>`,
and the short spelling gives way when another plugin owns it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["MARKERS", "NO_CONTROLS", "OPTIONS", "Option", "add_option"]


@dataclass(frozen=True)
class Option:
    """One batchconf option: its config key, flag, metavar, help and argparse action."""

    key: str
    flag: str
    metavar: str | None
    help: str
    action: str = "store"
    const: str | None = None
    #: Older or longer spellings that keep working.
    aliases: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return "batchconf_" + self.key


OPTIONS: tuple[Option, ...] = (
    Option(
        "target_url",
        "--target-url",
        "URL",
        "base URL of the provider API under test (e.g. https://api.example.com/v1); "
        "default: the in-process emulator. Env BATCHCONF_TARGET_URL.",
    ),
    Option(
        "profile",
        "--profile",
        "NAME",
        "provider profile (contract) to hold the target to, e.g. openai, scaleway, "
        "truefoundry+bedrock, or a profile .toml path. Default openai. Env BATCHCONF_PROFILE.",
    ),
    Option(
        "api_key_env",
        "--api-key-env",
        "VAR",
        "name of the environment variable holding the target's API key (default BATCHCONF_API_KEY); "
        "the key itself is never printed or written.",
    ),
    Option(
        "second_api_key_env",
        "--second-api-key-env",
        "VAR",
        "name of the environment variable holding a second principal's key, for isolation tests "
        "(default BATCHCONF_SECOND_API_KEY; isolation tests skip without one).",
    ),
    Option(
        "target_name",
        "--target-name",
        "NAME",
        "a name for this run in the results and the matrix (default: the profile and the target). "
        "Env BATCHCONF_TARGET_NAME.",
    ),
    Option("project", "--target-project", "ID", "project id sent in the profile's project header, if any."),
    Option("seed", "--seed", "N", "seed for generated data and the emulator (default 0)."),
    Option("results", "--results", "FILE", "write one JSON line per check (and per deselected test) here."),
    Option(
        "state_file",
        "--state-file",
        "FILE",
        "record submitted scenario batches here; a later run against the same URL target and profile "
        "resumes polling them instead of submitting again.",
    ),
    Option(
        "max_requests",
        "--max-requests",
        "N",
        "request budget: the most input lines one run may submit (default: unlimited on the emulator, "
        "500 on a URL target); over budget the run stops before submitting, with exit status 2.",
    ),
    Option(
        "timeouts",
        "--wait-timeout",
        "NAME=SECONDS",
        "set a named timeout (request, terminal, validation, cancel, expiry); repeatable.",
        action="append",
    ),
    Option(
        "poll_interval",
        "--poll-interval",
        "SECONDS",
        "sleep between polling rounds (default 0 on the emulator, 10 on a URL target).",
    ),
    Option(
        "emulator_mutations",
        "--emulator-mutation",
        "NAME",
        "switch on a named contract violation of the in-process emulator (repeatable); the suite "
        "must then fail. Used to prove the suite's teeth.",
        action="append",
    ),
    Option(
        "model",
        "--model",
        "NAME",
        "model (or deployment) name for generated requests; default: the profile's models.default.",
    ),
    Option(
        "other_model",
        "--other-model",
        "NAME",
        "a second model name, for mixed-model checks; default: the profile's models.other.",
    ),
    Option(
        "s3_endpoint_url",
        "--s3-endpoint-url",
        "URL",
        "object-storage profiles (Scaleway): the S3 endpoint of the bucket the target reads inputs from and writes "
        "results to, e.g. https://s3.fr-par.scw.cloud; default: the in-process emulator's store, or the endpoint a "
        "served emulator names in GET /_emulator/info. Credentials come from the usual AWS variables.",
    ),
    Option(
        "s3_bucket",
        "--s3-bucket",
        "NAME",
        "object-storage profiles: the bucket to put inputs in (it must exist, and the target must be allowed to "
        "read and write it); default: a fresh batchconf-suite-<hex> the suite creates.",
    ),
    Option(
        "s3_prefix",
        "--s3-prefix",
        "PREFIX",
        "object-storage profiles: the key prefix the suite writes under (default: none); each run writes in "
        "PREFIX/batchconf-<hex>/, and the storage checks watch that nothing else appears under PREFIX.",
    ),
    Option(
        "strict",
        "--strict",
        None,
        "fail a check even when it rests only on profile facts marked unverified (default: such a "
        "failure is a deviation: reported apart, and it does not change the exit status). Under plain "
        "pytest, whose own --strict this would shadow, spell it --batchconf-strict. Env BATCHCONF_STRICT.",
        action="store_const",
        const="true",
        aliases=("--strict-facts",),
    ),
    Option(
        "observe",
        "--observe",
        "FILE",
        "write each deviation the run saw as a proposed profile overlay (the observed value, with the "
        "source 'observed on <target name>, <date>'); review it, then load it with --profile FILE.",
    ),
    Option(
        "target_controls",
        "--target-controls",
        None,
        "the URL target answers the emulator's admin routes (/_emulator); default: probe GET /_emulator/info.",
        action="store_const",
        const="true",
    ),
)
NO_CONTROLS = Option(
    "target_controls",
    "--no-target-controls",
    None,
    "treat the URL target as having no admin routes (tests needing them are deselected).",
    action="store_const",
    const="false",
)


def add_option(group: pytest.OptionGroup, option: Option) -> None:
    # Every option also answers to --batchconf-<name>; the short spelling is dropped if
    # another plugin already owns it (argparse conflict), so that loading batchconf can
    # never break an unrelated pytest run.
    alias = "--batchconf-" + option.flag.removeprefix("--")
    kwargs: dict[str, Any] = {"dest": option.dest, "action": option.action, "help": option.help, "default": None}
    if option.metavar:
        kwargs["metavar"] = option.metavar
    if option.const is not None:
        kwargs["const"] = option.const
    try:
        group.addoption(option.flag, alias, *option.aliases, **kwargs)
    except (argparse.ArgumentError, ValueError):
        group.addoption(alias, *option.aliases, **kwargs)


# -- markers -------------------------------------------------------------------------------

MARKERS = (
    "capability(name): the capability a conformance test checks (files, create, lifecycle, records, "
    "validation, cancel, expiry, pagination, auth, isolation, metadata, usage, storage_layout, ...); "
    "tests of a capability the profile lacks are deselected with the reason.",
    "scenarios(*names): the scenarios a test reads through finished(name); they are submitted before "
    "any test runs and polled together. On a test, class or module (pytestmark).",
    "needs_control: the test steers the target through the emulator's admin routes (/_emulator); "
    "deselected on targets without them.",
    "dialect(*names): the test checks a rule of these wire dialects only (openai, scaigrid, ...); deselected "
    "for a profile of another dialect, with the reason.",
    "applies(*predicates): each predicate(profile) returns why the test does not apply to the profile (or "
    "None); deselected with that reason when one does.",
)
