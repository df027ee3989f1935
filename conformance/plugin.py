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

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._fixtures import (
    TestBudget,
    anon_api,
    api,
    bad_key_api,
    bc_budget,
    bc_config,
    bc_profile,
    bc_target,
    control,
    finished,
    other_api,
    waiter,
    webhook_receiver,
)
from ._options import MARKERS, NO_CONTROLS, OPTIONS, add_option
from ._outcomes import make_blocked, make_deviation, shorten_failure, teststatus
from ._run import EXIT_HARNESS, RUN_KEY, Run, exit_harness, get_run, version
from ._scenario_items import EXIT_PENDING, ScenarioItem, ScenarioItems, nodeid_of
from ._selection import (
    ALWAYS_ON,
    CAPABILITY_MAP,
    KNOWN_CAPABILITIES,
    PACKAGE_DIR,
    apply_deviations,
    in_package,
    item_info,
    lack,
    needs_receiver,
    receiver_unreachable,
)

if TYPE_CHECKING:
    from ._reports import ItemInfo

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


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the batchconf options, all in the "batchconf" group. Values are strings
    validated by the plugin (not by argparse), so a bad value gets batchconf's message and
    exit status 2."""
    group = parser.getgroup("batchconf", "batchconf conformance suite")
    for option in (*OPTIONS, NO_CONTROLS):
        add_option(group, option)


def _requested(config: pytest.Config) -> bool:
    """A batchconf option on the command line, or an argument inside the conformance package."""
    if any(config.getoption(o.dest) is not None for o in (*OPTIONS, NO_CONTROLS)):
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
        if path == PACKAGE_DIR or PACKAGE_DIR in path.parents:
            return True
    return False


_REPORT_HOOKS = "batchconf-reports"
_SCENARIO_ITEMS = "batchconf-scenario-items"
_BLOCKED_KEY = pytest.StashKey[str]()


# -- hooks ---------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and the run's state; reads nothing else (cheap by design)."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    run = Run(config=config, requested=_requested(config))
    config.stash[RUN_KEY] = run
    config.pluginmanager.register(_ReportHooks(run), _REPORT_HOOKS)
    config.pluginmanager.register(ScenarioItems(run), _SCENARIO_ITEMS)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Release the target and the logging redaction."""
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()
    for name in (_REPORT_HOOKS, _SCENARIO_ITEMS):
        hooks = config.pluginmanager.get_plugin(name)
        if hooks is not None:
            config.pluginmanager.unregister(hooks)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The report header: target, profile, seed, harness version (when engaged)."""
    run = config.stash.get(RUN_KEY, None)
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
    """Validate the configuration up front when the run asked for batchconf, and probe a
    URL target once (the preflight) before anything is collected."""
    run = get_run(session.config)
    if run.requested:
        suite = run.suite_or_exit()
        if suite.target_url is not None and not session.config.option.collectonly:
            run.activate()
            _preflight(run)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Select by capability, scenario capability and controls; apply known deviations."""
    run = get_run(config)
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
            if in_package(item):
                errors.append(f"{item.nodeid}: has no @pytest.mark.capability(...) marker")
            continue
        info, problems = item_info(item, marker, specs)
        errors += problems
        infos[item.nodeid] = (item, info)
        optional = {n for mark in item.iter_markers("scenarios") if mark.kwargs.get("optional") for n in mark.args}
        if optional:
            run.optional[item.nodeid] = frozenset(optional)
    for name in sorted({n for _, info in infos.values() for n in info.scenarios}):
        spec = specs[name]
        if spec.capability not in KNOWN_CAPABILITIES:
            errors.append(f"scenario {name!r}: unknown capability {spec.capability!r}")
        if spec.timeout not in suite.timeouts:
            errors.append(f"scenario {name!r}: unknown timeout {spec.timeout!r} (known: {', '.join(suite.timeouts)})")
    if errors:
        exit_harness("the suite is malformed:\n  " + "\n  ".join(errors))
    run.infos = {nodeid: info for nodeid, (_, info) in infos.items()}
    _junit_properties(config, run)

    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    needs_controls = any(item.get_closest_marker("needs_control") for item, _ in infos.values())
    controls = run.targets_controls(suite) if needs_controls else True
    unreachable = receiver_unreachable(suite.target_url)
    for item in items:
        entry = infos.get(item.nodeid)
        if entry is None:
            keep.append(item)
            continue
        reason = lack(item, entry[1], profile, specs, controls, unreachable)
        if reason is None:
            keep.append(item)
            continue
        run.deselected[item.nodeid] = reason
        assert run.recorder is not None
        run.recorder.deselected(entry[1], *reason)
        dropped.append(item)
    apply_deviations(run.notes, profile, [item for item, _ in infos.values()])
    if dropped:
        items[:] = keep
        config.hook.pytest_deselected(items=dropped)


def _preflight(run: Run) -> None:
    """A URL target must answer, under its base path, to the configured keys: else exit 2
    with what failed, before anything is selected, submitted or recorded as a verdict."""
    from ._preflight import PreflightError, preflight

    assert run.credentials is not None and run.redactor is not None
    try:
        preflight(run.suite(), run.credentials, user_agent=f"batchconf/{version()} (preflight)", redact=run.redactor)
    except PreflightError as exc:
        run.preflight_failed = True
        exit_harness(f"preflight: {exc}")


def _junit_properties(config: pytest.Config, run: Run) -> None:
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
        ("batchconf_version", version()),
    ):
        xml.add_global_property(name, value)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Record tests deselected by -k/-m (or another plugin) in the results."""
    if not items:
        return
    run = get_run(items[0].config)
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
    run = get_run(config)
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
    run = get_run(session.config)
    collection_failed = session.testsfailed and not session.config.option.continue_on_collection_errors
    if run.active and session.items and not session.config.option.collectonly and not collection_failed:
        _prepare(run, session)
    return (yield)


def _prepare(run: Run, session: pytest.Session) -> None:
    from ._config import ConfigError
    from ._target import TargetError
    from .scenarios import BudgetExceeded, StateFileError, registered

    try:
        run.ensure_target()
    except (TargetError, ConfigError) as exc:
        exit_harness(str(exc))
    needed: list[str] = []
    receiver = False
    specs = registered()
    for item in session.items:
        info = run.infos.get(item.nodeid)
        if info is not None:
            needed += [n for n in info.scenarios if n not in needed]
            caps = [info.capability] + [m.args[0] for m in item.iter_markers("capability") if len(m.args) == 1]
            receiver = receiver or needs_receiver([c for c in caps if isinstance(c, str)], info, specs)
    if receiver:
        run.ensure_receiver()
    if not needed:
        return
    try:
        runner = run.ensure_runner()
        runner.pending_on_timeout = run.ensure_target().kind == "url"
        waiter = run.ensure_waiter()
        waiter_announce, waiter._announce = waiter._announce, run.announce
        try:
            runner.run(needed)
        finally:
            waiter._announce = waiter_announce
    except (BudgetExceeded, StateFileError) as exc:
        exit_harness(str(exc))
    pending = runner.pending()
    failed = [name for name in needed if runner.failure(name) and name not in pending]
    if failed:
        run.announce(
            f"{len(failed)} scenario(s) failed: {', '.join(failed)}; each is reported once as "
            f"{nodeid_of('NAME')}, and the tests reading it are blocked"
        )
    if pending:
        run.announce(f"{len(pending)} scenario(s) still pending when their wait ran out: {', '.join(pending)}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test whose declared scenario failed (or is still pending) is skipped here as
    blocked, naming the scenario's own check, where the cause is reported once."""
    run = get_run(item.config)
    if not run.active or isinstance(item, ScenarioItem):
        return
    info = run.infos.get(item.nodeid)
    if info is None or not info.scenarios or run.runner is None:
        return
    optional = run.optional.get(item.nodeid, frozenset())
    for name in info.scenarios:
        if name in optional or not run.runner.failure(name):
            continue
        item.stash[_BLOCKED_KEY] = name
        state = "still pending" if name in run.runner.pending() else "failed"
        pytest.skip(f"blocked: scenario {name!r} {state}; see {nodeid_of(name)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """batchconf's outcomes (`conformance._outcomes`): a check that failed only on a fact the
    profile marks unverified is a deviation (unless the run is strict); a test skipped for a
    failed scenario is blocked; a failure reads as the violation, not as a traceback."""
    report = yield
    run = item.config.stash.get(RUN_KEY, None)
    if run is None or not run.engaged:
        return report
    if report.when == "setup" and report.skipped and _BLOCKED_KEY in item.stash:
        make_blocked(item, report)
        return report
    if not report.failed or call.excinfo is None or isinstance(item, ScenarioItem):
        return report
    from ._contract import ContractViolation

    exc = call.excinfo.value
    if (
        report.when == "call"
        and isinstance(exc, ContractViolation)
        and exc.inferred
        and in_package(item)
        and not run.suite().strict
    ):
        make_deviation(item, report, exc.inferred, str(exc))
        run.deviations.append((item.nodeid, exc))
        return report
    if report.when == "setup" and item.nodeid in run.infos:
        # A shared fixture that fails (an upload the target refuses) fails every test using
        # it with the same exception: the first reports it, the others are blocked by it.
        # The exception is kept with its id, so that the id is never reused by another.
        _, first = run.setup_failures.setdefault(id(exc), (exc, item.nodeid))
        if first != item.nodeid:
            path, lineno = report.location[0], (report.location[1] or 0) + 1
            report.outcome = "skipped"
            report.longrepr = (path, lineno, f"blocked: the setup failure reported by {first}")
            make_blocked(item, report)
            return report
    if _short_tracebacks(item.config):
        shorten_failure(report, call.excinfo)
    return report


def _short_tracebacks(config: pytest.Config) -> bool:
    """pytest's default traceback style (`--tb=auto`), not asked for in full."""
    return config.getoption("tbstyle", "auto") == "auto" and not config.getoption("fulltrace", False)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """Deviations and blocked tests have their own word, letter and count on the terminal."""
    return teststatus(report)


class _ReportHooks:
    """Hooks that receive a report but not the config: registered per run, so each nested
    pytest run (pytester) scrubs with its own keys."""

    def __init__(self, run: Run) -> None:
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
    run = get_run(session.config)
    if not run.engaged:
        return
    status = int(session.exitstatus)
    if run.recorder is not None and not run.preflight_failed:
        run.recorder.flush()
        suite = run.suite_config
        if suite is not None and suite.results is not None:
            try:
                run.recorder.write(suite.results)
            except OSError as exc:
                run.exit_reason = f"cannot write the results file {suite.results}: {exc}"
                status = EXIT_HARNESS
    if run.suite_config is not None and run.suite_config.observe is not None and not run.preflight_failed:
        status = _write_observations(run, run.suite_config.observe, status)
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        run.exit_reason = "no tests selected" + _deselection_hint(run)
        status = EXIT_HARNESS
    elif status in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        run.exit_reason = run.exit_reason or f"pytest ended with {pytest.ExitCode(status).name}"
        status = EXIT_HARNESS
    elif status == pytest.ExitCode.OK and run.runner is not None and run.runner.pending():
        # Nothing failed, but some checks have no verdict yet: not conformant, not a pass.
        status = EXIT_PENDING
    if run.runner is not None and run.runner.pending():
        run.notes.append(_resume_hint(run, session.config))
    session.exitstatus = status


def _write_observations(run: Run, path: Path, status: int) -> int:
    """`--observe FILE`: the run's deviations as a proposed overlay of its profile."""
    from ._observe import observe, write

    suite = run.suite()
    name = str(run.recorder.meta.get("target_name")) if run.recorder is not None else suite.profile_name
    found = observe((exc for _, exc in run.deviations), target_name=name)
    for why in dict.fromkeys(found.left_out):
        run.notes.append(f"observe: left out {why}")
    if not found.facts:
        run.notes.append(f"observe: no deviation with an observed value; {path} not written")
        return status
    try:
        # On top of what the run was held to: the last overlay file it loaded, else its profile.
        overlays = suite.profile.overlays
        write(path, str(overlays[-1]) if overlays else suite.profile_name, found)
    except (OSError, ValueError) as exc:
        run.exit_reason = f"cannot write the observations to {path}: {exc}"
        return EXIT_HARNESS
    run.notes.append(
        f"observe: {len(found.facts)} observed fact(s) written to {path}; review them, then use --profile {path}"
    )
    return status


def _resume_hint(run: Run, config: pytest.Config) -> str:
    """Where the pending batches are recorded, and the command line that resumes them."""
    from .scenarios import StateFile

    assert run.runner is not None
    suite = run.suite()
    pending = run.runner.pending()
    path = suite.state_file
    if path is None:
        # Record the run's batches now, so that resuming polls them instead of paying again.
        path = config.invocation_params.dir / "batchconf-state.json"
        target = run.target.base_url if run.target is not None else str(suite.target_url)
        state = StateFile(path, target, suite.profile_name)
        try:
            for name, submitted in run.runner.submitted.items():
                state.record(name, submitted)
        except OSError as exc:
            return f"pending: {', '.join(pending)}; their batch ids could not be recorded in {path}: {exc}"
    ids = ", ".join(
        f"{name} ({run.runner.submitted[name].batch_id})" for name in pending if name in run.runner.submitted
    )
    return (
        f"pending (exit status {EXIT_PENDING}): {ids}; run the same command again with "
        f"--state-file {path} to resume polling them (and raise --wait-timeout terminal=SECONDS if they need longer)"
    )


def _deselection_hint(run: Run) -> str:
    if not run.deselected:
        return ""
    return f" ({len(run.deselected)} deselected; see the reasons above)"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """A "batchconf" section: scenario failures, budget, notes, results file, verdict."""
    run = get_run(config)
    if not run.engaged or run.suite_config is None:
        return
    lines: list[str] = []
    if run.runner is not None:
        for name, outcome in run.runner.outcomes.items():
            if outcome.error and not outcome.pending:
                lines.append(f"scenario {name} failed (reported once as {nodeid_of(name)}; its tests are blocked)")
    for nodeid, exc in run.deviations:
        what = str(exc).splitlines()[0]
        lines.append(f"deviation: {nodeid.rsplit('/', 1)[-1]}: {what} (rests only on {exc.inferred})")
    if run.deviations:
        lines.append(
            f"{len(run.deviations)} deviation(s) from inferred expectations: reported, not failed "
            "(--strict fails them; --observe FILE proposes profile facts from them)"
        )
    if run.budget is not None and run.budget.spent:
        limit = "unlimited" if run.budget.limit is None else str(run.budget.limit)
        lines.append(f"requests submitted: {run.budget.spent} (budget {limit})")
    lines += run.notes
    if run.suite_config.results is not None and run.recorder is not None and not run.preflight_failed:
        lines.append(f"results: {run.suite_config.results} ({len(run.recorder.lines)} lines)")
    if run.exit_reason:
        lines.append(f"harness error: {run.exit_reason} (exit status 2)")
    if lines:
        terminalreporter.section("batchconf")
        for line in lines:
            terminalreporter.write_line(line)
