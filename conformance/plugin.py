"""The batchconf pytest plugin: target, configuration, selection, scenarios and reports.

Loaded in every pytest run of the environment through the `pytest11` entry point, it only
registers its options and markers until a run *engages* it: a batchconf option on the
command line, a path into the `conformance` package (`pytest --pyargs conformance`), or a
collected test carrying a `capability` marker. An engaged run:

1. resolves and validates the configuration (`conformance._config`): a bad value ends the
   run with exit status 2 and a message naming the key, the value and what is expected;
2. deselects, with a reason, every test whose capability the profile lacks, that checks
   another wire dialect (`@pytest.mark.dialect`), that does not apply to the profile
   (`@pytest.mark.applies`), that needs a scenario of such a capability, admin controls the
   target lacks, or a webhook receiver the target cannot reach (127.0.0.1); marks the
   profile's known deviations as strict xfail;
3. before the first test, builds the target, starts the webhook receiver when a selected
   test checks webhooks, submits every scenario a selected test declares
   (`@pytest.mark.scenarios`), within the request budget, and polls them together;
4. scrubs the API keys from every report and log record, writes `--results` (one JSON
   line per check) and maps the exit status: 0 conformant, 1 not, 2 harness or config
   error (including "no tests selected").
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from schemas import Profile

    from ._config import ConfigError, SuiteConfig
    from ._redact import Redactor
    from ._reports import ItemInfo, ResultsRecorder
    from ._target import Credentials, Target
    from ._waiter import Waiter
    from .client import ApiClient
    from .control import Control
    from .receiver import WebhookReceiver
    from .scenarios import Budget, Finished, ScenarioRunner

__all__ = [
    "ALWAYS_ON",
    "CAPABILITY_MAP",
    "TestBudget",
    "anon_api",
    "api",
    "bad_key_api",
    "bc_budget",
    "bc_config",
    "bc_profile",
    "bc_target",
    "control",
    "finished",
    "other_api",
    "waiter",
    "webhook_receiver",
]

log = logging.getLogger("batchconf")

_PACKAGE_DIR = Path(__file__).resolve().parent

#: Capability marker name -> the profile capability that must be true for it to run.
CAPABILITY_MAP: dict[str, str] = {
    "files": "files_api",
    "cancel": "cancel",
    "expiry": "expiry",
    "pagination": "pagination",
    "auth": "auth",
    "isolation": "isolation",
    "metadata": "metadata",
    "usage": "usage",
    "storage_layout": "storage_layout",
    "webhooks": "webhooks",
    "file_delete": "file_delete",
    "output_expires_after": "output_expires_after",
}
#: Capabilities every batch API has: never deselected.
ALWAYS_ON = frozenset({"create", "lifecycle", "records", "validation"})
KNOWN_CAPABILITIES = ALWAYS_ON | CAPABILITY_MAP.keys()

_EXIT_HARNESS = 2


# -- options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
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


_OPTIONS: tuple[_Option, ...] = (
    _Option(
        "target_url",
        "--target-url",
        "URL",
        "base URL of the provider API under test (e.g. https://api.example.com/v1); "
        "default: the in-process emulator. Env BATCHCONF_TARGET_URL.",
    ),
    _Option(
        "profile",
        "--profile",
        "NAME",
        "provider profile (contract) to hold the target to, e.g. openai, scaleway, "
        "truefoundry+bedrock, or a profile .toml path. Default openai. Env BATCHCONF_PROFILE.",
    ),
    _Option(
        "api_key_env",
        "--api-key-env",
        "VAR",
        "name of the environment variable holding the target's API key (default BATCHCONF_API_KEY); "
        "the key itself is never printed or written.",
    ),
    _Option(
        "second_api_key_env",
        "--second-api-key-env",
        "VAR",
        "name of the environment variable holding a second principal's key, for isolation tests "
        "(default BATCHCONF_SECOND_API_KEY; isolation tests skip without one).",
    ),
    _Option(
        "target_name",
        "--target-name",
        "NAME",
        "a name for this run in the results and the matrix (default: the profile and the target). "
        "Env BATCHCONF_TARGET_NAME.",
    ),
    _Option("project", "--target-project", "ID", "project id sent in the profile's project header, if any."),
    _Option("seed", "--seed", "N", "seed for generated data and the emulator (default 0)."),
    _Option("results", "--results", "FILE", "write one JSON line per check (and per deselected test) here."),
    _Option(
        "state_file",
        "--state-file",
        "FILE",
        "record submitted scenario batches here; a later run against the same URL target and profile "
        "resumes polling them instead of submitting again.",
    ),
    _Option(
        "max_requests",
        "--max-requests",
        "N",
        "request budget: the most input lines one run may submit (default: unlimited on the emulator, "
        "500 on a URL target); over budget the run stops before submitting, with exit status 2.",
    ),
    _Option(
        "timeouts",
        "--wait-timeout",
        "NAME=SECONDS",
        "set a named timeout (request, terminal, validation, cancel, expiry); repeatable.",
        action="append",
    ),
    _Option(
        "poll_interval",
        "--poll-interval",
        "SECONDS",
        "sleep between polling rounds (default 0 on the emulator, 10 on a URL target).",
    ),
    _Option(
        "emulator_mutations",
        "--emulator-mutation",
        "NAME",
        "switch on a named contract violation of the in-process emulator (repeatable); the suite "
        "must then fail. Used to prove the suite's teeth.",
        action="append",
    ),
    _Option(
        "model",
        "--model",
        "NAME",
        "model (or deployment) name for generated requests; default: the profile's models.default.",
    ),
    _Option(
        "other_model",
        "--other-model",
        "NAME",
        "a second model name, for mixed-model checks; default: the profile's models.other.",
    ),
    _Option(
        "s3_endpoint_url",
        "--s3-endpoint-url",
        "URL",
        "object-storage profiles (Scaleway): the S3 endpoint of the bucket the target reads inputs from and writes "
        "results to, e.g. https://s3.fr-par.scw.cloud; default: the in-process emulator's store, or the endpoint a "
        "served emulator names in GET /_emulator/info. Credentials come from the usual AWS variables.",
    ),
    _Option(
        "s3_bucket",
        "--s3-bucket",
        "NAME",
        "object-storage profiles: the bucket to put inputs in (it must exist, and the target must be allowed to "
        "read and write it); default: a fresh batchconf-suite-<hex> the suite creates.",
    ),
    _Option(
        "s3_prefix",
        "--s3-prefix",
        "PREFIX",
        "object-storage profiles: the key prefix the suite writes under (default: none); each run writes in "
        "PREFIX/batchconf-<hex>/, and the storage checks watch that nothing else appears under PREFIX.",
    ),
    _Option(
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
    _Option(
        "target_controls",
        "--target-controls",
        None,
        "the URL target answers the emulator's admin routes (/_emulator); default: probe GET /_emulator/info.",
        action="store_const",
        const="true",
    ),
)
_NO_CONTROLS = _Option(
    "target_controls",
    "--no-target-controls",
    None,
    "treat the URL target as having no admin routes (tests needing them are deselected).",
    action="store_const",
    const="false",
)


def _add_option(group: pytest.OptionGroup, option: _Option) -> None:
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


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the batchconf options, all in the "batchconf" group. Values are strings
    validated by the plugin (not by argparse), so a bad value gets batchconf's message and
    exit status 2."""
    group = parser.getgroup("batchconf", "batchconf conformance suite")
    for option in (*_OPTIONS, _NO_CONTROLS):
        _add_option(group, option)


# -- markers -------------------------------------------------------------------------------

_MARKERS = (
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


# -- per-run state ---------------------------------------------------------------------------


@dataclass
class _Run:
    """Everything the plugin knows about one pytest run (kept in `config.stash`)."""

    config: pytest.Config
    requested: bool
    active: bool = False
    suite_config: SuiteConfig | None = None
    config_error: ConfigError | None = None
    redactor: Redactor | None = None
    credentials: Credentials | None = None
    target: Target | None = None
    waiter: Waiter | None = None
    budget: Budget | None = None
    runner: ScenarioRunner | None = None
    recorder: ResultsRecorder | None = None
    infos: dict[str, ItemInfo] = field(default_factory=dict)
    deselected: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    exit_reason: str | None = None
    header_shown: bool = False
    controls_probe: bool | None = None
    receiver: WebhookReceiver | None = None
    _undo_logging: Callable[[], None] | None = None

    @property
    def engaged(self) -> bool:
        return self.requested or self.active

    # -- configuration --

    def suite(self) -> SuiteConfig:
        """The resolved configuration; raises ConfigError (cached)."""
        if self.suite_config is not None:
            return self.suite_config
        if self.config_error is not None:
            raise self.config_error
        from ._config import ConfigError, resolve

        cli = {o.key: self.config.getoption(o.dest) for o in _OPTIONS}
        names = {o.key: o.flag for o in _OPTIONS}
        try:
            self.suite_config = resolve(
                cli, rootdir=self.config.rootpath, cwd=self.config.invocation_params.dir, cli_names=names
            )
        except ConfigError as exc:
            self.config_error = exc
            raise
        return self.suite_config

    def suite_or_exit(self) -> SuiteConfig:
        """The configuration, or end the run with exit status 2 and the reason."""
        from ._config import ConfigError

        try:
            return self.suite()
        except ConfigError as exc:
            _exit(f"invalid configuration: {exc}")
            raise  # pragma: no cover - _exit raises

    def activate(self) -> None:
        """Engage the run: credentials, redaction, results recorder."""
        if self.redactor is not None:
            return
        from ._redact import Redactor, install_logging_redaction
        from ._reports import ResultsRecorder
        from ._target import Credentials, describe

        suite = self.suite_or_exit()
        self.redactor = Redactor()
        if suite.target_url is None:
            self.credentials = Credentials.generated()
        else:
            primary = os.environ.get(suite.api_key_env, "")
            secondary = os.environ.get(suite.second_api_key_env) or None
            self.credentials = Credentials(primary, secondary, (suite.api_key_env, suite.second_api_key_env))
        self.redactor.add(self.credentials.primary, self.credentials.labels[0])
        self.redactor.add(self.credentials.secondary, self.credentials.labels[1])
        if suite.profile.output.location == "object_storage":
            # The bucket's credentials (boto3 reads them from these variables) are secrets
            # too; a local endpoint's dummy ones ("testing") are too short to be.
            for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                value = os.environ.get(name, "")
                if len(value) >= 16:
                    self.redactor.add(value, name)
        self._undo_logging = install_logging_redaction(self.redactor)
        self.recorder = ResultsRecorder(
            meta={
                "target_name": suite.target_name or f"{suite.profile_name} ({describe(suite)})",
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "profile": suite.profile_name,
                "target": describe(suite),
                "target_kind": suite.target_kind,
                "seed": suite.seed,
                "harness": _version(),
            },
            redact=self.redactor,
        )

    # -- target and helpers --

    def ensure_target(self) -> Target:
        """Build the target on first use (raises TargetError / ConfigError)."""
        if self.target is None:
            from ._target import build_target

            suite = self.suite()
            self.activate()
            assert self.credentials is not None
            # Selection may have probed for controls already: reuse that answer, so what
            # runs matches what was deselected, and probe only once.
            self.target = build_target(
                suite,
                self.credentials,
                user_agent=f"batchconf/{_version()} (conformance)",
                probe=self.controls_probe is None,
            )
            if self.controls_probe is not None and suite.target_controls is None:
                self.target.controls = self.controls_probe
            storage = self.target.storage
            if storage is not None:
                where = storage.endpoint_url or "the in-process store"
                made = "given" if suite.s3_bucket else "created by the suite"
                self.announce(
                    f"object storage: bucket {storage.bucket} ({made}) on {where}, inputs under {storage.run_folder}"
                )
        return self.target

    def ensure_waiter(self) -> Waiter:
        """The run's one waiter."""
        if self.waiter is None:
            from ._waiter import Waiter

            suite = self.suite()
            self.waiter = Waiter(
                terminal=suite.profile.lifecycle.terminal,
                timeouts=suite.timeouts,
                poll_interval=suite.poll_interval,
            )
        return self.waiter

    def ensure_budget(self) -> Budget:
        """The run's request budget."""
        if self.budget is None:
            from .scenarios import Budget

            self.budget = Budget(self.suite().max_requests)
        return self.budget

    def api_client(self, key: str | None) -> ApiClient:
        """An ApiClient for `key` (None: no credentials) on the shared client."""
        from .client import ApiClient

        target = self.ensure_target()
        return ApiClient(target.http, target.profile, api_key=key, project=self.suite().project, storage=target.storage)

    def control_client(self) -> Control | None:
        """The admin-route client, or None when the target has no controls."""
        target = self.ensure_target()
        if not target.controls:
            return None
        from .control import Control

        return Control(target.http, root_url=target.root_url)

    def ensure_runner(self) -> ScenarioRunner:
        """The scenario runner (loads the state file of a URL target)."""
        if self.runner is None:
            from .scenarios import ScenarioRunner, StateFile

            suite = self.suite()
            target = self.ensure_target()
            assert self.credentials is not None
            state = None
            if suite.state_file is not None:
                if target.kind == "emulator":
                    self.notes.append(
                        f"state file {suite.state_file} ignored: batches of the in-process emulator end with the run"
                    )
                else:
                    state = StateFile(suite.state_file, target.base_url, suite.profile_name)
                    state.load()
            self.runner = ScenarioRunner(
                api=self.api_client(self.credentials.primary),
                profile=suite.profile,
                waiter=self.ensure_waiter(),
                budget=self.ensure_budget(),
                target=target,
                control=self.control_client(),
                seed=suite.seed,
                state=state,
                announce=self.announce,
                redact=self.redactor or (lambda text: text),
                webhook_url=self.receiver.url if self.receiver is not None else None,
            )
        return self.runner

    def ensure_receiver(self) -> WebhookReceiver:
        """The run's webhook receiver on 127.0.0.1 (started on first use, closed with the run)."""
        if self.receiver is None:
            from .receiver import WebhookReceiver

            self.receiver = WebhookReceiver("127.0.0.1").start()
            self.announce(f"webhook receiver listening at {self.receiver.url}")
            if self.runner is not None:
                self.runner.webhook_url = self.receiver.url
        return self.receiver

    def announce(self, line: str) -> None:
        """A progress line on the terminal (and in the log)."""
        log.info("%s", line)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"batchconf: {line}")

    def targets_controls(self, suite: SuiteConfig) -> bool:
        """Whether the target has admin controls, probing a URL target once if needed."""
        if suite.target_url is None:
            return True
        if suite.target_controls is not None:
            return suite.target_controls
        if self.controls_probe is None:
            import httpx

            from ._target import probe_controls, split_url

            root, _ = split_url(suite.target_url, suite.profile)
            with httpx.Client(timeout=suite.timeouts.get("request", 30.0)) as client:
                self.controls_probe = probe_controls(client, root)
        return self.controls_probe

    def close(self) -> None:
        """Release the target and the webhook receiver, and undo the logging redaction."""
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None
        if self.target is not None:
            self.target.close()
            self.target = None
        if self._undo_logging is not None:
            self._undo_logging()
            self._undo_logging = None

    # -- header --

    def header_lines(self) -> list[str]:
        """Target, profile, seed, harness version, controls, budget and timeouts."""
        suite = self.suite()
        if suite.target_url is None:
            target, controls = "emulator (in-process)", "yes"
        else:
            target = suite.target_url
            controls = {True: "yes", False: "no", None: "auto (probe GET /_emulator/info)"}[suite.target_controls]
        budget = "unlimited" if suite.max_requests is None else f"{suite.max_requests} requests"
        timeouts = ", ".join(f"{k}={v:g}s" for k, v in suite.timeouts.items())
        lines = [
            f"batchconf {_version()}: target {target}, profile {suite.profile_name} "
            f"({suite.profile.display_name}), seed {suite.seed}",
            f"batchconf: controls {controls}, budget {budget}, poll interval {suite.poll_interval:g}s, "
            f"timeouts {timeouts}",
        ]
        if suite.profile.output.location == "object_storage":
            default = "the emulator's" if suite.target_url is None else "the one GET /_emulator/info names"
            lines.append(
                f"batchconf: object storage: endpoint {suite.s3_endpoint_url or default}, bucket "
                f"{suite.s3_bucket or 'a fresh batchconf-suite-<hex>'}, prefix {suite.s3_prefix or '(none)'}"
            )
        return lines


_RUN_KEY = pytest.StashKey[_Run]()
_REPORT_HOOKS = "batchconf-reports"


def _run(config: pytest.Config) -> _Run:
    return config.stash[_RUN_KEY]


def _exit(message: str) -> None:
    """End the run now with exit status 2 (harness or configuration error)."""
    pytest.exit(f"batchconf: {message}", returncode=_EXIT_HARNESS)


def _version() -> str:
    # Read from the distribution rather than `conformance.__version__`: the plugin must work
    # even where `conformance` resolves as a namespace package (a stale editable install).
    from importlib import metadata

    try:
        return metadata.version("batchconf")
    except metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "0+unknown"


def _requested(config: pytest.Config) -> bool:
    """A batchconf option on the command line, or an argument inside the conformance package."""
    if any(config.getoption(o.dest) is not None for o in (*_OPTIONS, _NO_CONTROLS)):
        return True
    pyargs = bool(config.getoption("pyargs", False))
    for arg in config.args:
        base = str(arg).split("::", 1)[0]
        if pyargs and (base == "conformance" or base.startswith("conformance.")):
            return True
        try:
            path = (config.invocation_params.dir / base).resolve()
        except (OSError, ValueError):
            continue
        if path == _PACKAGE_DIR or _PACKAGE_DIR in path.parents:
            return True
    return False


# -- hooks ---------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and the run's state; reads nothing else (cheap by design)."""
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    run = _Run(config=config, requested=_requested(config))
    config.stash[_RUN_KEY] = run
    config.pluginmanager.register(_ReportHooks(run), _REPORT_HOOKS)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Release the target and the logging redaction."""
    run = config.stash.get(_RUN_KEY, None)
    if run is not None:
        run.close()
    hooks = config.pluginmanager.get_plugin(_REPORT_HOOKS)
    if hooks is not None:
        config.pluginmanager.unregister(hooks)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The report header: target, profile, seed, harness version (when engaged)."""
    run = config.stash.get(_RUN_KEY, None)
    if run is None or not run.requested:
        return []
    from ._config import ConfigError

    try:
        lines = run.header_lines()
    except ConfigError:
        return ["batchconf: configuration error (see below)"]
    run.header_shown = True
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Validate the configuration up front when the run asked for batchconf."""
    run = _run(session.config)
    if run.requested:
        run.suite_or_exit()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Select by capability, scenario capability and controls; apply known deviations."""
    run = _run(config)
    marked = [item for item in items if item.get_closest_marker("capability") is not None]
    if not marked and not run.requested:
        return
    run.active = True
    suite = run.suite_or_exit()
    run.activate()
    from .scenarios import registered

    profile = suite.profile
    specs = registered()
    errors: list[str] = []
    infos: dict[str, tuple[pytest.Item, ItemInfo]] = {}
    for item in items:
        marker = item.get_closest_marker("capability")
        if marker is None:
            if _in_package(item):
                errors.append(f"{item.nodeid}: has no @pytest.mark.capability(...) marker")
            continue
        info, problems = _item_info(item, marker, specs)
        errors += problems
        infos[item.nodeid] = (item, info)
    for name in sorted({n for _, info in infos.values() for n in info.scenarios}):
        spec = specs[name]
        if spec.capability not in KNOWN_CAPABILITIES:
            errors.append(f"scenario {name!r}: unknown capability {spec.capability!r}")
        if spec.timeout not in suite.timeouts:
            errors.append(f"scenario {name!r}: unknown timeout {spec.timeout!r} (known: {', '.join(suite.timeouts)})")
    if errors:
        _exit("the suite is malformed:\n  " + "\n  ".join(errors))
    run.infos = {nodeid: info for nodeid, (_, info) in infos.items()}
    _junit_properties(config, run)

    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    needs_controls = any(item.get_closest_marker("needs_control") for item, _ in infos.values())
    controls = run.targets_controls(suite) if needs_controls else True
    unreachable = _receiver_unreachable(suite.target_url)
    for item in items:
        entry = infos.get(item.nodeid)
        if entry is None:
            keep.append(item)
            continue
        reason = _lack(item, entry[1], profile, specs, controls, unreachable)
        if reason is None:
            keep.append(item)
            continue
        run.deselected[item.nodeid] = reason
        assert run.recorder is not None
        run.recorder.deselected(entry[1], *reason)
        dropped.append(item)
    _apply_deviations(run, profile, [item for item, _ in infos.values()])
    if dropped:
        items[:] = keep
        config.hook.pytest_deselected(items=dropped)


def _junit_properties(config: pytest.Config, run: _Run) -> None:
    """Name the run in the JUnit file's global properties (when --junitxml is on)."""
    try:
        from _pytest.junitxml import xml_key  # private, hence guarded (as hypothesis does)
    except ImportError:  # pragma: no cover - a pytest without it
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    suite = run.suite()
    from ._target import describe

    for name, value in (
        ("batchconf_target", describe(suite)),
        ("batchconf_profile", suite.profile_name),
        ("batchconf_seed", suite.seed),
        ("batchconf_version", _version()),
    ):
        xml.add_global_property(name, value)


def _in_package(item: pytest.Item) -> bool:
    try:
        path = Path(str(item.path)).resolve()
    except (OSError, ValueError):
        return False
    return _PACKAGE_DIR in path.parents


def _item_info(item: pytest.Item, marker: pytest.Mark, specs: Any) -> tuple[ItemInfo, list[str]]:
    from ._reports import ItemInfo

    problems: list[str] = []
    capability: str | None = None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or marker.kwargs:
        problems.append(f"{item.nodeid}: capability marker takes exactly one name, got {marker.args!r}")
    else:
        capability = marker.args[0]
        if capability not in KNOWN_CAPABILITIES:
            problems.append(
                f"{item.nodeid}: unknown capability {capability!r} (known: {', '.join(sorted(KNOWN_CAPABILITIES))})"
            )
    names: list[str] = []
    for mark in item.iter_markers("scenarios"):
        for name in mark.args:
            if not isinstance(name, str):
                problems.append(f"{item.nodeid}: scenario names must be strings, got {name!r}")
            elif name not in specs:
                known = ", ".join(sorted(specs)) or "none"
                problems.append(f"{item.nodeid}: declares unknown scenario {name!r} (registered: {known})")
            elif name not in names:
                names.append(name)
    for mark in item.iter_markers("dialect"):
        if not mark.args or not all(isinstance(a, str) for a in mark.args) or mark.kwargs:
            problems.append(f"{item.nodeid}: dialect marker takes dialect names, got {mark.args!r}")
    for mark in item.iter_markers("applies"):
        if not mark.args or not all(callable(a) for a in mark.args) or mark.kwargs:
            problems.append(
                f"{item.nodeid}: applies marker takes predicates profile -> reason | None, got {mark.args!r}"
            )
    test = getattr(item, "originalname", None) or item.name
    return ItemInfo(item.nodeid, test, capability, tuple(names), item.path), problems


#: Hosts from which a target reaches the suite's webhook receiver on 127.0.0.1.
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _receiver_unreachable(target_url: str | None) -> str | None:
    """Why the target cannot reach a webhook receiver on 127.0.0.1 (None: it can: the
    in-process emulator, or a URL target on loopback)."""
    if target_url is None:
        return None
    from urllib.parse import urlsplit

    host = urlsplit(target_url).hostname or ""
    if host in _LOOPBACK:
        return None
    return (
        "needs a webhook receiver the target can reach: the suite's receiver listens on 127.0.0.1, "
        f"and the target host {host!r} is not on loopback"
    )


def _needs_receiver(caps: list[str], info: ItemInfo, specs: Any) -> bool:
    """Whether a test (by its capabilities and its scenarios') checks webhook deliveries."""
    return "webhooks" in caps or any(specs[n].capability == "webhooks" for n in info.scenarios)


def _lack(
    item: pytest.Item,
    info: ItemInfo,
    profile: Profile,
    specs: Any,
    controls: bool,
    unreachable: str | None = None,
) -> tuple[str, str] | None:
    """Why the target cannot run this test, as (reason, kind), or None."""
    name = profile.name
    # The closest marker is the test's capability in reports, but a test inherits the
    # module's too (a cancel test of expired batches needs expiry as well): all must hold.
    caps = [info.capability] + [m.args[0] for m in item.iter_markers("capability") if len(m.args) == 1]
    for cap in dict.fromkeys(c for c in caps if isinstance(c, str)):
        if cap in ALWAYS_ON or cap not in CAPABILITY_MAP:
            continue
        key = CAPABILITY_MAP[cap]
        if not profile.has(key):
            return f"profile {name!r} does not offer capability {cap!r} (capabilities.{key} is not true)", "capability"
    for mark in item.iter_markers("dialect"):
        if profile.dialect not in mark.args:
            dialects = " / ".join(str(a) for a in mark.args)
            return (
                f"a check of the {dialects} dialect; profile {name!r} speaks the {profile.dialect!r} dialect",
                "dialect",
            )
    for mark in item.iter_markers("applies"):
        for predicate in mark.args:
            why = predicate(profile)
            if why is not None:
                return f"does not apply to profile {name!r}: {why}", "applies"
    for scenario_name in info.scenarios:
        spec = specs[scenario_name]
        scap = spec.capability
        if scap not in ALWAYS_ON and scap in CAPABILITY_MAP and not profile.has(CAPABILITY_MAP[scap]):
            return (
                f"needs scenario {scenario_name!r} of capability {scap!r}, which profile {name!r} does not offer",
                "scenario",
            )
        why = spec.lack(profile)
        if why is not None:
            return f"needs scenario {scenario_name!r}, which does not apply to profile {name!r}: {why}", "scenario"
    if item.get_closest_marker("needs_control") is not None and not controls:
        return (
            "needs the emulator's admin routes (/_emulator), which the target does not answer "
            "(pass --target-controls if it does)",
            "controls",
        )
    if unreachable is not None and _needs_receiver([c for c in caps if isinstance(c, str)], info, specs):
        return unreachable, "receiver"
    return None


def _apply_deviations(run: _Run, profile: Profile, items: list[pytest.Item]) -> None:
    for deviation in profile.deviations:
        matched = False
        for item in items:
            original = getattr(item, "originalname", None) or item.name
            if deviation.check in (original, item.name) or item.nodeid.endswith(deviation.check):
                item.add_marker(
                    pytest.mark.xfail(
                        strict=True,
                        reason=f"known deviation of {profile.name}: {deviation.reason} (source: {deviation.source})",
                    )
                )
                matched = True
        if not matched:
            run.notes.append(f"profile deviation {deviation.check!r} matches no collected test")


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Record tests deselected by -k/-m (or another plugin) in the results."""
    if not items:
        return
    run = _run(items[0].config)
    if not run.active or run.recorder is None:
        return
    for item in items:
        info = run.infos.get(item.nodeid)
        if info is None or item.nodeid in run.deselected:
            continue
        run.deselected[item.nodeid] = ("deselected by -k/-m or another plugin", "option")
        run.recorder.deselected(info, "deselected by -k/-m or another plugin", "option")


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """After "collected N items": the header if it was not shown yet, and why tests were
    deselected."""
    run = _run(config)
    # Also reached after a configuration error ended the collection (pytest calls it from a
    # `finally`): there is nothing to report then.
    if not run.active or run.suite_config is None:
        return []
    lines = [] if run.header_shown else run.header_lines()
    run.header_shown = True
    by_reason: dict[str, int] = {}
    for reason, kind in run.deselected.values():
        if kind != "option":
            by_reason[reason] = by_reason.get(reason, 0) + 1
    for reason, count in by_reason.items():
        lines.append(f"batchconf: deselected {count}: {reason}")
    return lines


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[None]:
    """Before the first test: build the target and run the declared scenarios."""
    run = _run(session.config)
    collection_failed = session.testsfailed and not session.config.option.continue_on_collection_errors
    if run.active and session.items and not session.config.option.collectonly and not collection_failed:
        _prepare(run, session)
    return (yield)


def _prepare(run: _Run, session: pytest.Session) -> None:
    from ._config import ConfigError
    from ._target import TargetError
    from .scenarios import BudgetExceeded, StateFileError, registered

    try:
        run.ensure_target()
    except (TargetError, ConfigError) as exc:
        _exit(str(exc))
    needed: list[str] = []
    receiver = False
    specs = registered()
    for item in session.items:
        info = run.infos.get(item.nodeid)
        if info is not None:
            needed += [n for n in info.scenarios if n not in needed]
            caps = [info.capability] + [m.args[0] for m in item.iter_markers("capability") if len(m.args) == 1]
            receiver = receiver or _needs_receiver([c for c in caps if isinstance(c, str)], info, specs)
    if receiver:
        run.ensure_receiver()
    if not needed:
        return
    try:
        runner = run.ensure_runner()
        waiter = run.ensure_waiter()
        waiter_announce, waiter._announce = waiter._announce, run.announce
        try:
            runner.run(needed)
        finally:
            waiter._announce = waiter_announce
    except (BudgetExceeded, StateFileError) as exc:
        _exit(str(exc))
    failed = [name for name in needed if runner.failure(name)]
    if failed:
        run.announce(f"{len(failed)} scenario(s) failed: {', '.join(failed)} (their tests will error)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test whose declared scenario failed errors here, with the scenario's failure."""
    run = _run(item.config)
    if not run.active:
        return
    info = run.infos.get(item.nodeid)
    if info is None or not info.scenarios or run.runner is None:
        return
    for name in info.scenarios:
        message = run.runner.failure(name)
        if message:
            pytest.fail(message, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A conformance check that failed only on a fact the profile marks unverified is a
    deviation: reported as xfailed with the fact and its source, not a failure (unless the
    run is strict about facts). Verified facts and the shared contract fail as ever."""
    report = yield
    run = item.config.stash.get(_RUN_KEY, None)
    if run is None or not run.engaged or report.when != "call" or not report.failed or call.excinfo is None:
        return report
    from ._contract import ContractViolation

    exc = call.excinfo.value
    if isinstance(exc, ContractViolation) and exc.inferred and _in_package(item) and not run.suite().strict:
        report.outcome = "skipped"
        report.wasxfail = f"deviation: rests only on the unverified fact {exc.inferred}: {str(exc).splitlines()[0]}"
    return report


class _ReportHooks:
    """Hooks that receive a report but not the config: registered per run, so each nested
    pytest run (pytester) scrubs with its own keys."""

    def __init__(self, run: _Run) -> None:
        self.run = run

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Scrub the keys from the report before any reporter (terminal, JUnit) sees it,
        then fold it into the results."""
        run = self.run
        if run.redactor:
            from ._redact import scrub_report

            scrub_report(report, run.redactor)
        info = run.infos.get(report.nodeid)
        if info is not None and run.recorder is not None:
            run.recorder.report(report, info)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Scrub the keys from collection reports too."""
        if self.run.redactor:
            from ._redact import scrub_report

            scrub_report(report, self.run.redactor)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the results file and map the exit status to 0 / 1 / 2."""
    run = _run(session.config)
    if not run.engaged:
        return
    status = int(session.exitstatus)
    if run.recorder is not None:
        run.recorder.flush()
        suite = run.suite_config
        if suite is not None and suite.results is not None:
            try:
                run.recorder.write(suite.results)
            except OSError as exc:
                run.exit_reason = f"cannot write the results file {suite.results}: {exc}"
                status = _EXIT_HARNESS
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        run.exit_reason = "no tests selected" + _deselection_hint(run)
        status = _EXIT_HARNESS
    elif status in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        run.exit_reason = run.exit_reason or f"pytest ended with {pytest.ExitCode(status).name}"
        status = _EXIT_HARNESS
    session.exitstatus = status


def _deselection_hint(run: _Run) -> str:
    if not run.deselected:
        return ""
    return f" ({len(run.deselected)} deselected; see the reasons above)"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """A "batchconf" section: scenario failures, budget, notes, results file, verdict."""
    run = _run(config)
    if not run.engaged or run.suite_config is None:
        return
    lines: list[str] = []
    if run.runner is not None:
        for name, outcome in run.runner.outcomes.items():
            if outcome.error:
                lines.append(f"scenario {name}: {outcome.error}")
    if run.budget is not None and run.budget.spent:
        limit = "unlimited" if run.budget.limit is None else str(run.budget.limit)
        lines.append(f"requests submitted: {run.budget.spent} (budget {limit})")
    lines += run.notes
    if run.suite_config.results is not None and run.recorder is not None:
        lines.append(f"results: {run.suite_config.results} ({len(run.recorder.lines)} lines)")
    if run.exit_reason:
        lines.append(f"harness error: {run.exit_reason} (exit status 2)")
    if lines:
        terminalreporter.section("batchconf")
        for line in lines:
            terminalreporter.write_line(line)


# -- fixtures --------------------------------------------------------------------------------


def _fixture_run(request: pytest.FixtureRequest) -> _Run:
    return _run(request.config)


@pytest.fixture(scope="session")
def bc_config(request: pytest.FixtureRequest) -> SuiteConfig:
    """The run's resolved configuration (`conformance._config.SuiteConfig`)."""
    return _fixture_run(request).suite()


@pytest.fixture(scope="session")
def bc_target(request: pytest.FixtureRequest) -> Target:
    """The target under test: kind, base_url, root_url, profile, controls, seed, second_key,
    api_key_env. Never holds the key."""
    return _fixture_run(request).ensure_target()


@pytest.fixture(scope="session")
def bc_profile(request: pytest.FixtureRequest) -> Profile:
    """The provider profile the target is held to (builds no target)."""
    return _fixture_run(request).suite().profile


@pytest.fixture(scope="session")
def api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API as the main principal (the configured key)."""
    run = _fixture_run(request)
    assert run.credentials is not None
    return run.api_client(run.credentials.primary)


@pytest.fixture(scope="session")
def other_api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API as a second principal; skips the test when none is configured."""
    run = _fixture_run(request)
    assert run.credentials is not None
    if run.credentials.secondary is None:
        suite = run.suite()
        pytest.skip(f"no second principal: set {suite.second_api_key_env} (or --second-api-key-env) to a second key")
    return run.api_client(run.credentials.secondary)


@pytest.fixture(scope="session")
def anon_api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API with no credentials at all."""
    return _fixture_run(request).api_client(None)


@pytest.fixture(scope="session")
def bad_key_api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API with a well-formed key that belongs to nobody."""
    from ._target import BAD_KEY

    return _fixture_run(request).api_client(BAD_KEY)


@pytest.fixture(scope="session")
def control(request: pytest.FixtureRequest, bc_target: Target) -> Control:
    """The emulator's admin routes; skips the test when the target has none."""
    client = _fixture_run(request).control_client()
    if client is None:
        pytest.skip("the target has no admin routes (/_emulator); pass --target-controls if it does")
    return client


@pytest.fixture(scope="session")
def webhook_receiver(request: pytest.FixtureRequest) -> WebhookReceiver:
    """The run's webhook receiver on 127.0.0.1 (`conformance.receiver.WebhookReceiver`): the
    scenarios subscribe their batches to `webhook_receiver.url` (`ScenarioContext.webhook_url`).
    Tests of the `webhooks` capability get it started before the scenarios; where the target
    cannot reach 127.0.0.1 they are deselected with that reason."""
    return _fixture_run(request).ensure_receiver()


@pytest.fixture(scope="session")
def waiter(request: pytest.FixtureRequest) -> Waiter:
    """The one waiter: `wait(api, batch_id, until=None, timeout="terminal") -> Observation`,
    `wait_many(...)`; named timeouts from --wait-timeout, a log line before each wait."""
    return _fixture_run(request).ensure_waiter()


class TestBudget:
    """The run's request budget as tests see it (`bc_budget`)."""

    __test__ = False  # not a test class, despite the name

    def __init__(self, budget: Budget) -> None:
        self._budget = budget

    @property
    def limit(self) -> int | None:
        """The configured max_requests (None: unbounded)."""
        return self._budget.limit

    @property
    def spent(self) -> int:
        """Requests submitted so far in this run, scenarios included."""
        return self._budget.spent

    @property
    def remaining(self) -> int | None:
        """Requests left (None: unbounded)."""
        return self._budget.remaining

    def charge(self, requests: int, what: str) -> None:
        """Count `requests` input lines about to be submitted; skips the calling test when
        they do not fit."""
        from .scenarios import BudgetExceeded

        try:
            self._budget.charge(requests, what)
        except BudgetExceeded as exc:
            pytest.skip(str(exc))


@pytest.fixture(scope="session")
def bc_budget(request: pytest.FixtureRequest) -> TestBudget:
    """The run's request budget. A test that submits a batch of its own calls
    `bc_budget.charge(n, what)` first and is skipped when the budget is spent."""
    return TestBudget(_fixture_run(request).ensure_budget())


@pytest.fixture
def finished(request: pytest.FixtureRequest) -> Callable[[str], Finished]:
    """`finished(name) -> Finished`: the scenario's batch polled to a terminal status with
    its files downloaded and parsed. The test must declare the name with
    `@pytest.mark.scenarios(name)` (or a class/module pytestmark) so it is submitted up front;
    an undeclared name is an error."""
    from .scenarios import ScenarioError

    run = _fixture_run(request)
    declared = {name for mark in request.node.iter_markers("scenarios") for name in mark.args}

    def get(name: str) -> Finished:
        if name not in declared:
            raise ScenarioError(
                f"finished({name!r}): the test does not declare scenario {name!r}; add "
                f"@pytest.mark.scenarios({name!r}) to it (or to its class or module pytestmark) so that "
                "it is submitted before the tests run"
            )
        runner = run.ensure_runner()
        if name not in runner.outcomes:
            # Declared but not run up front: this test is outside the engaged selection
            # (no capability marker); submit it now rather than fail.
            runner.run([name])
        return runner.result(name)

    return get
