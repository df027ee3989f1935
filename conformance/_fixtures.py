"""The fixtures the suite's tests use: the target, clients per principal, the waiter, the
budget and `finished(name)` for scenario batches."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from ._run import get_run

if TYPE_CHECKING:
    from schemas import Profile

    from ._config import SuiteConfig
    from ._target import Target
    from ._waiter import Waiter
    from .client import ApiClient
    from .control import Control
    from .receiver import WebhookReceiver
    from .scenarios import Budget, Finished

__all__ = [
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


@pytest.fixture(scope="session")
def bc_config(request: pytest.FixtureRequest) -> SuiteConfig:
    """The run's resolved configuration (`conformance._config.SuiteConfig`)."""
    return get_run(request.config).suite()


@pytest.fixture(scope="session")
def bc_target(request: pytest.FixtureRequest) -> Target:
    """The target under test: kind, base_url, root_url, profile, controls, seed, second_key,
    api_key_env. Never holds the key."""
    return get_run(request.config).ensure_target()


@pytest.fixture(scope="session")
def bc_profile(request: pytest.FixtureRequest) -> Profile:
    """The provider profile the target is held to (builds no target)."""
    return get_run(request.config).suite().profile


@pytest.fixture(scope="session")
def api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API as the main principal (the configured key)."""
    run = get_run(request.config)
    assert run.credentials is not None
    return run.api_client(run.credentials.primary)


@pytest.fixture(scope="session")
def other_api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API as a second principal; skips the test when none is configured."""
    run = get_run(request.config)
    assert run.credentials is not None
    if run.credentials.secondary is None:
        suite = run.suite()
        pytest.skip(f"no second principal: set {suite.second_api_key_env} (or --second-api-key-env) to a second key")
    return run.api_client(run.credentials.secondary)


@pytest.fixture(scope="session")
def anon_api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API with no credentials at all."""
    return get_run(request.config).api_client(None)


@pytest.fixture(scope="session")
def bad_key_api(request: pytest.FixtureRequest, bc_target: Target) -> ApiClient:
    """The provider API with a well-formed key that belongs to nobody."""
    from ._target import BAD_KEY

    return get_run(request.config).api_client(BAD_KEY)


@pytest.fixture(scope="session")
def control(request: pytest.FixtureRequest, bc_target: Target) -> Control:
    """The emulator's admin routes; skips the test when the target has none."""
    client = get_run(request.config).control_client()
    if client is None:
        pytest.skip("the target has no admin routes (/_emulator); pass --target-controls if it does")
    return client


@pytest.fixture(scope="session")
def webhook_receiver(request: pytest.FixtureRequest) -> WebhookReceiver:
    """The run's webhook receiver on 127.0.0.1 (`conformance.receiver.WebhookReceiver`): the
    scenarios subscribe their batches to `webhook_receiver.url` (`ScenarioContext.webhook_url`).
    Tests of the `webhooks` capability get it started before the scenarios; where the target
    cannot reach 127.0.0.1 they are deselected with that reason."""
    return get_run(request.config).ensure_receiver()


@pytest.fixture(scope="session")
def waiter(request: pytest.FixtureRequest) -> Waiter:
    """The one waiter: `wait(api, batch_id, until=None, timeout="terminal") -> Observation`,
    `wait_many(...)`; named timeouts from --wait-timeout, a log line before each wait."""
    return get_run(request.config).ensure_waiter()


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
    return TestBudget(get_run(request.config).ensure_budget())


@pytest.fixture
def finished(request: pytest.FixtureRequest) -> Callable[[str], Finished]:
    """`finished(name) -> Finished`: the scenario's batch polled to a terminal status with
    its files downloaded and parsed. The test must declare the name with
    `@pytest.mark.scenarios(name)` (or a class/module pytestmark) so it is submitted up front;
    an undeclared name is an error."""
    from .scenarios import ScenarioError

    run = get_run(request.config)
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
