"""Eventual-consistency faults through the official SDK: `completed` before `output_file_id`
for N polls, and a batch stuck in validation until its window passes and it expires."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import Emulator, TimingModel
from emulator.model.consistency import ConsistencyFault
from tests.emulator._support import chat_line, submit

IDS = [f"req-{i}" for i in range(4)]


def _create(emu: Emulator) -> Any:
    return submit(emu.openai_client(), [chat_line(cid, "hi") for cid in IDS])


def _polls(emu: Emulator, batch_id: str, n: int) -> list[Any]:
    client = emu.openai_client()
    return [client.batches.retrieve(batch_id) for _ in range(n)]


@pytest.mark.parametrize("polls", [1, 3])
def test_late_output_file_hides_the_output_id_for_n_polls_after_completion(polls: int) -> None:
    """The first N polls that show `completed` have `output_file_id` null (counts already
    final); the next has the id, of a file holding every line once, and it stays."""
    with Emulator() as emu:
        emu.consistency.add(kind="late_output_file", polls=polls)
        batch = _create(emu)
        seen = _polls(emu, batch.id, 2 + polls + 2)  # in_progress, finalizing, then completed
        done = [b for b in seen if b.status == "completed"]
        assert [b.output_file_id is None for b in done] == [True] * polls + [False, False]
        assert all(b.request_counts.completed == len(IDS) and b.completed_at == done[0].completed_at for b in done)
        text = emu.openai_client().files.content(done[-1].output_file_id).text
        assert sorted(json.loads(x)["custom_id"] for x in text.splitlines()) == IDS


def test_late_output_file_with_count_affects_only_that_many_batches() -> None:
    """`count=1`: the first batch lags, the second has its id at completion."""
    with Emulator() as emu:
        emu.consistency.add(kind="late_output_file", polls=2, count=1)
        first, second = _create(emu), _create(emu)
        lagging = [b for b in _polls(emu, first.id, 4) if b.status == "completed"]
        prompt = [b for b in _polls(emu, second.id, 4) if b.status == "completed"]
        assert lagging and lagging[0].output_file_id is None
        assert prompt and prompt[0].output_file_id is not None
        assert emu.consistency.rules()[0].hits == 1


def test_stuck_validating_batch_expires_when_its_window_passes() -> None:
    """A stuck batch stays validating on every poll and under steps, then expires at the
    window with no in_progress_at, no lines and no files; the next batch runs normally."""
    with Emulator() as emu:
        emu.consistency.add(kind="stuck_validating", count=1)
        stuck, free = _create(emu), _create(emu)
        assert {b.status for b in _polls(emu, stuck.id, 5)} == {"validating"}
        assert emu.step(stuck.id)["status"] == "validating"
        assert _polls(emu, free.id, 4)[-1].status == "completed"
        emu.clock.advance(86_400)
        ended = _polls(emu, stuck.id, 1)[0]
        assert ended.status == "expired" and ended.expired_at == ended.expires_at
        assert ended.in_progress_at is None and ended.output_file_id is None and ended.error_file_id is None
        assert (ended.request_counts.total, ended.request_counts.completed) == (0, 0)


def test_stuck_validating_under_timed_progression_expires_without_polls_in_between() -> None:
    """Timed progression: the stuck batch does not validate when its validation is due, and
    one look after the window finds it expired."""
    with Emulator(timing=TimingModel(progression="timed", validation_seconds=5)) as emu:
        emu.consistency.add(kind="stuck_validating")
        batch = _create(emu)
        emu.clock.advance(60)
        assert _polls(emu, batch.id, 1)[0].status == "validating"
        emu.clock.advance(86_400)
        assert _polls(emu, batch.id, 1)[0].status == "expired"


def test_stuck_validating_is_refused_where_the_profile_never_expires_a_validating_batch() -> None:
    """ScaiGrid's expiry takes only running batches: a stuck batch would never end there."""
    with Emulator(profile="scaigrid") as emu, pytest.raises(ValueError, match="never expires a validating batch"):
        emu.consistency.add(kind="stuck_validating")


def test_admin_routes_add_list_and_clear_consistency_faults() -> None:
    """POST, GET and DELETE /_emulator/consistency; bad rules are 400s naming the problem."""
    with Emulator() as emu, emu.http_client() as http:
        made = http.post("/_emulator/consistency", json={"kind": "late_output_file", "polls": 2})
        assert made.status_code == 200 and made.json() == {
            "id": 1,
            "kind": "late_output_file",
            "polls": 2,
            "count": None,
            "hits": 0,
        }
        assert [r["kind"] for r in http.get("/_emulator/consistency").json()["data"]] == ["late_output_file"]
        bad = http.post("/_emulator/consistency", json={"kind": "late_output_file"})
        assert bad.status_code == 400 and "needs polls" in bad.text
        assert http.post("/_emulator/consistency", json={"kind": "eventual"}).status_code == 400
        assert http.post("/_emulator/consistency", json={"kind": "stuck_validating", "polls": 1}).status_code == 400
        assert http.delete("/_emulator/consistency").json()["data"] == []
        emu.consistency.add(kind="stuck_validating")
        emu.reset()
        assert not emu.consistency


@pytest.mark.parametrize(
    "fields",
    [{"kind": "late_output_file", "polls": 0}, {"kind": "stuck_validating", "count": 0}, {"kind": "nope"}],
)
def test_bad_rules_are_refused(fields: dict[str, Any]) -> None:
    """Each field is checked when the rule is made."""
    with pytest.raises(ValueError):
        ConsistencyFault(**fields)
