"""The waiter (`conformance._waiter`) against a scripted fake API: no target, no sleeping."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conformance._waiter import UnknownTimeoutError, Waiter, WaitError, WaitTimeout

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class _Response:
    status: int
    json: Any
    content: bytes


class ScriptedApi:
    """retrieve_batch answers from a per-batch script; the last answer repeats."""

    def __init__(self, **scripts: list[Any]) -> None:
        self.scripts = {bid: list(script) for bid, script in scripts.items()}
        self.calls: list[str] = []

    def retrieve_batch(self, batch_id: str) -> _Response:
        self.calls.append(batch_id)
        script = self.scripts.get(batch_id, [404])
        step = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, int):
            return _Response(step, {"error": {"message": "nope"}}, b'{"error": {"message": "nope"}}')
        body = {"id": batch_id, "status": step}
        return _Response(200, body, json.dumps(body).encode())


class FakeClock:
    def __init__(self, step: float = 1.0) -> None:
        self.now = 0.0
        self.step = step
        self.slept: list[float] = []

    def clock(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"the waiter slept {seconds}s with poll interval 0")


def _waiter(**kwargs: Any) -> Waiter:
    kwargs.setdefault("sleep", _never_sleep)
    return Waiter(terminal=TERMINAL, timeouts={"terminal": 30, "cancel": 5}, **kwargs)


def test_polls_until_terminal_and_records_every_snapshot() -> None:
    api = ScriptedApi(b1=["validating", "validating", "in_progress", "finalizing", "completed"])
    obs = _waiter().wait(api, "b1")
    assert [s["status"] for s in obs.snapshots] == [
        "validating",
        "validating",
        "in_progress",
        "finalizing",
        "completed",
    ]
    assert obs.statuses == ["validating", "in_progress", "finalizing", "completed"]
    assert obs.final["status"] == "completed"
    assert obs.polls == 5


def test_until_stops_early() -> None:
    api = ScriptedApi(b1=["validating", "in_progress", "finalizing", "completed"])

    def running(batch: dict[str, Any]) -> bool:
        return bool(batch["status"] == "in_progress")

    obs = _waiter().wait(api, "b1", until=running)
    assert obs.statuses == ["validating", "in_progress"]


def test_timeout_names_the_timeout_seconds_batch_and_last_status() -> None:
    api = ScriptedApi(b1=["validating", "in_progress"])
    clock = FakeClock(step=1.0)
    with pytest.raises(WaitTimeout) as info:
        _waiter(clock=clock.clock).wait(api, "b1", timeout="cancel")
    err = info.value
    assert isinstance(err, TimeoutError)
    assert (err.name, err.seconds, err.batch_id, err.last_status) == ("cancel", 5, "b1", "in_progress")
    assert "timeout 'cancel' = 5s" in str(err)
    assert "--wait-timeout cancel=SECONDS" in str(err)


def test_unknown_timeout_names_the_configured_ones() -> None:
    with pytest.raises(UnknownTimeoutError, match="configured timeouts: cancel, terminal"):
        _waiter().wait(ScriptedApi(b1=["completed"]), "b1", timeout="nap")


def test_poll_interval_sleeps_between_rounds_only() -> None:
    clock = FakeClock(step=0.0)
    api = ScriptedApi(b1=["validating", "in_progress", "completed"])
    _waiter(poll_interval=2.5, sleep=clock.sleep, clock=clock.clock).wait(api, "b1")
    assert clock.slept == [2.5, 2.5]


def test_wait_many_polls_round_robin_and_keeps_errors_per_batch() -> None:
    api = ScriptedApi(a=["validating", "completed"], b=["validating", "in_progress", "failed"], gone=[404])
    result = _waiter().wait_many(api, ["a", "b", "gone"], raise_errors=False)
    assert api.calls[:3] == ["a", "b", "gone"]
    assert result["a"].status == "completed"
    assert result["b"].status == "failed"
    assert isinstance(result["gone"].error, WaitError)
    assert "HTTP 404" in str(result["gone"].error)
    with pytest.raises(WaitError):
        _waiter().wait_many(ScriptedApi(a=["completed"], gone=[404]), ["a", "gone"])


def test_transient_failures_are_retried_then_reported() -> None:
    api = ScriptedApi(b1=[503, httpx.ConnectError("refused"), "completed"])
    assert _waiter().wait(api, "b1").status == "completed"
    with pytest.raises(WaitError, match="3 transient failures in a row"):
        _waiter(max_transient_errors=3).wait(ScriptedApi(b1=[429]), "b1")


def test_a_body_without_status_is_an_error_not_a_spin() -> None:
    class NoStatus(ScriptedApi):
        def retrieve_batch(self, batch_id: str) -> _Response:
            return _Response(200, {}, b"{}")

    with pytest.raises(WaitError, match="without a string 'status' field"):
        _waiter().wait(NoStatus(), "b1")


def test_a_log_line_announces_each_wait(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    with caplog.at_level(logging.INFO, logger="batchconf.waiter"):
        _waiter(announce=seen.append).wait(ScriptedApi(b1=["completed"]), "b1")
    assert "waiting up to 30s (timeout 'terminal') for 1 batch(es)" in caplog.text
    assert seen and "b1" in seen[0]


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import time

    monkeypatch.setattr(time, "sleep", _never_sleep)
    yield


def test_until_polls_a_probe_within_its_named_timeout() -> None:
    fake = FakeClock(step=1.0)
    waiter = Waiter(terminal=TERMINAL, timeouts={"webhook": 5.0}, poll_interval=2.0, sleep=fake.sleep, clock=fake.clock)
    answers = iter([None, None, "done"])
    assert waiter.until(lambda: next(answers), what="the thing", timeout="webhook") == "done"
    assert len(fake.slept) == 2 and all(0 < s <= 2.0 for s in fake.slept)
    with pytest.raises(TimeoutError, match=r"timeout 'webhook' \(5s\) passed before the other thing"):
        waiter.until(lambda: None, what="the other thing", timeout="webhook")
    with pytest.raises(UnknownTimeoutError):
        waiter.until(lambda: True, what="x", timeout="nope")
