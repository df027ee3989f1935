"""Each scenario the run submits is a check of its own: `batchconf::scenario[NAME]`.

A scenario that cannot be submitted, polled to a terminal status or downloaded fails once,
in its own item, with its cause; the tests that read it are skipped as *blocked*, naming
that item, instead of each erroring with the same message. A scenario still running when a
URL target's wait ran out is skipped as pending (no verdict), and the run ends with
`EXIT_PENDING` and says how to resume it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest

from ._run import get_run

if TYPE_CHECKING:
    from ._run import Run

__all__ = ["EXIT_PENDING", "ScenarioFailed", "ScenarioItem", "ScenarioItems", "nodeid_of"]

#: The run's exit status when scenario batches were still pending (sysexits' EX_TEMPFAIL:
#: nothing is wrong yet; try again later, resuming with --state-file).
EXIT_PENDING = 75


def nodeid_of(name: str) -> str:
    """The node id of scenario `name`'s own check."""
    return f"batchconf::scenario[{name}]"


class ScenarioFailed(Exception):
    """The scenario's batch could not be submitted, finished or downloaded."""


class ScenarioItem(pytest.Item):
    """The check that scenario `scenario` ran: it fails with the scenario's cause."""

    def __init__(self, *, scenario: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        """Fail with the scenario's cause, skip when it is still pending, pass otherwise."""
        runner = get_run(self.config).runner
        outcome = runner.outcomes.get(self.scenario) if runner is not None else None
        if outcome is None:
            pytest.skip(f"scenario {self.scenario!r} was not run")
        if outcome.pending:
            pytest.skip(f"pending: {outcome.error}")
        if outcome.error is not None:
            raise ScenarioFailed(outcome.error)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The scenario's cause, without a traceback of the harness."""
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        """Where the scenario is, as pytest's reports name it."""
        return str(self.path), None, f"scenario {self.scenario}"


class ScenarioItems:
    """Adds one ScenarioItem per scenario that the selected tests declare, in front of them.

    A plugin object rather than a module hook: it must run after pytest's own -k/-m
    deselection (trylast), which batchconf's selection hook precedes.
    """

    def __init__(self, run: Run) -> None:
        self.run = run

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        """Put the scenario checks first, for the scenarios the kept tests need."""
        run = self.run
        if not run.active or run.recorder is None:
            return
        from ._reports import ItemInfo
        from .scenarios import registered

        specs = registered()
        names = _declared(run, items)
        added: list[pytest.Item] = []
        for name in names:
            item = ScenarioItem.from_parent(session, name=f"scenario[{name}]", nodeid=nodeid_of(name), scenario=name)
            run.infos[item.nodeid] = ItemInfo(item.nodeid, f"scenario[{name}]", specs[name].capability, (name,))
            added.append(item)
        items[:0] = added


def _declared(run: Run, items: Iterable[pytest.Item]) -> list[str]:
    names: list[str] = []
    for item in items:
        info = run.infos.get(item.nodeid)
        if info is not None:
            names += [n for n in info.scenarios if n not in names]
    return names
