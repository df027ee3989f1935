"""One pytest run of the suite: its configuration, target, clients, scenarios and reports."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from ._options import OPTIONS

if TYPE_CHECKING:
    from ._config import ConfigError, SuiteConfig
    from ._contract import ContractViolation
    from ._redact import Redactor
    from ._reports import ItemInfo, ResultsRecorder
    from ._target import Credentials, Target
    from ._waiter import Waiter
    from .client import ApiClient
    from .control import Control
    from .receiver import WebhookReceiver
    from .scenarios import Budget, ScenarioRunner

__all__ = ["EXIT_HARNESS", "RUN_KEY", "Run", "exit_harness", "get_run", "version"]

log = logging.getLogger("batchconf")

EXIT_HARNESS = 2

# -- per-run state ---------------------------------------------------------------------------


@dataclass
class Run:
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
    #: A fixture's exception (by identity) -> the test whose setup reported it first.
    setup_failures: dict[int, tuple[BaseException, str]] = field(default_factory=dict)
    #: Ids of every batch and file the run created or resumed: lists are judged on these only.
    owned: set[str] = field(default_factory=set)
    #: The URL target failed its preflight: the run has no verdict to record.
    preflight_failed: bool = False
    #: Per test, the scenarios it reads only if they finished (`scenarios(..., optional=True)`):
    #: their failure does not block it.
    optional: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Per deviating test, its node id and the violation: the summary and `--observe`.
    deviations: list[tuple[str, ContractViolation]] = field(default_factory=list)
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

        cli = {o.key: self.config.getoption(o.dest) for o in OPTIONS}
        names = {o.key: o.flag for o in OPTIONS}
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
            exit_harness(f"invalid configuration: {exc}")
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
                "harness": version(),
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
                user_agent=f"batchconf/{version()} (conformance)",
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
            from .invariants import results_settled

            self.waiter = Waiter(
                terminal=suite.profile.lifecycle.terminal,
                timeouts=suite.timeouts,
                poll_interval=suite.poll_interval,
                settled=results_settled(suite.profile),
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
        return ApiClient(
            target.http,
            target.profile,
            api_key=key,
            project=self.suite().project,
            storage=target.storage,
            owned=self.owned,
        )

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
            return suite.target_controls is not False
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
            f"batchconf {version()}: target {target}, profile {suite.profile_name} "
            f"({suite.profile.display_name}){_overlays(suite)}, seed {suite.seed}",
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


def _overlays(suite: SuiteConfig) -> str:
    overlays = suite.profile.overlays
    return f" with overlay {', '.join(p.name for p in overlays)}" if overlays else ""


RUN_KEY = pytest.StashKey[Run]()


def get_run(config: pytest.Config) -> Run:
    return config.stash[RUN_KEY]


def exit_harness(message: str) -> None:
    """End the run now with exit status 2 (harness or configuration error)."""
    pytest.exit(f"batchconf: {message}", returncode=EXIT_HARNESS)


def version() -> str:
    # Read from the distribution rather than `conformance.__version__`: the plugin must work
    # even where `conformance` resolves as a namespace package (a stale editable install).
    from importlib import metadata

    try:
        return metadata.version("batchconf")
    except metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "0+unknown"
