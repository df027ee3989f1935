"""Backend faults for a share of lines: a `fraction` rule fails that seeded share of the
matching lines with a timeout, 429 or 5xx; with retries each line is written and counted
once, with its last answer."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import Emulator, TimingModel
from emulator._faults import Fault
from tests.emulator._support import chat_line, read_lines, submit

IDS = [f"line-{i:03d}" for i in range(200)]


def _run(emu: Emulator) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    client = emu.openai_client()
    batch = submit(client, [chat_line(cid, "hello") for cid in IDS])
    for _ in range(6):
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    output = read_lines(client, batch.output_file_id) if batch.output_file_id else []
    errors = read_lines(client, batch.error_file_id) if batch.error_file_id else []
    return batch, output, errors


@pytest.mark.parametrize(
    "fault",
    [{"status_code": 429}, {"status_code": 503}, {"error_code": "request_timeout"}],
    ids=["429", "503", "timeout"],
)
def test_a_fraction_of_lines_fails_without_retries(fault: dict[str, Any]) -> None:
    """fraction=0.25 without retries: about a quarter of the lines fail (the same ones on
    every run), the rest succeed, each custom_id once and the counts equal the files."""
    failed_sets = []
    for _ in range(2):
        with Emulator() as emu:
            emu.faults.add("line-*", fraction=0.25, **fault)
            batch, out, err = _run(emu)
            assert 30 <= len(err) <= 70
            assert sorted(r["custom_id"] for r in out + err) == IDS
            assert (batch.request_counts.completed, batch.request_counts.failed) == (len(out), len(err))
            failed_sets.append({r["custom_id"] for r in err})
    assert failed_sets[0] == failed_sets[1]


def test_a_transient_fraction_is_retried_and_every_line_is_counted_once() -> None:
    """fraction=0.5, times=2, three attempts: every line succeeds, written once, counted once."""
    with Emulator(timing=TimingModel(backend_attempts=3)) as emu:
        emu.faults.add("line-*", status_code=503, times=2, fraction=0.5)
        batch, out, err = _run(emu)
        assert err == [] and sorted(r["custom_id"] for r in out) == IDS
        assert (batch.request_counts.total, batch.request_counts.completed) == (len(IDS), len(IDS))


def test_a_fraction_rule_that_does_not_pick_a_line_lets_the_next_rule_match() -> None:
    """First match wins among the rules that pick the line: lines a fraction rule skips fall
    through to the next rule."""
    with Emulator() as emu:
        emu.faults.add("line-*", status_code=500, fraction=0.5)
        emu.faults.add("line-*", status_code=429)
        _, out, err = _run(emu)
        codes = {r["response"]["status_code"] for r in err}
        assert out == [] and codes == {500, 429}


def test_fraction_in_the_admin_route_and_its_checks() -> None:
    """The admin route takes and shows `fraction`; a fraction outside (0, 1] is a 400."""
    with Emulator() as emu, emu.http_client() as http:
        made = http.post("/_emulator/faults", json={"custom_id": "x-*", "status_code": 503, "fraction": 0.2})
        assert made.status_code == 200 and made.json()["fraction"] == 0.2
        assert http.post("/_emulator/faults", json={"status_code": 503, "fraction": 0}).status_code == 400
    with pytest.raises(ValueError):
        Fault(status_code=500, fraction=2)
