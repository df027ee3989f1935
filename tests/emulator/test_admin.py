"""The admin surface under /_emulator: it works, and bad input gets a 400 envelope, never a 500.

The working routes run in-process and against `batchconf serve` (`sync_sdk`); the long lists
of bad inputs run in-process (the handlers are the same code behind both), and one test
sends a sample of them to the server. The response hook checks every error body against
openai/error and every response for x-request-id.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator import MUTATIONS, TimingModel
from tests.emulator._support import Harness, chat_line, poll, results, submit

BAD = object()  # marker: send a body that is not JSON


def _send(raw: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    if body is BAD:
        return raw.request(method, path, content=b"{nope", headers={"content-type": "application/json"})
    if body is None:
        return raw.request(method, path)
    return raw.request(method, path, json=body)


def _assert_400(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 400, f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text}"
    err: dict[str, Any] = resp.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    return err


def test_info(sync_sdk: Harness) -> None:
    """GET /_emulator/info names the emulator, profile, clock and timing, and no key."""
    resp = sync_sdk.raw(api_key="").get("/_emulator/info")
    info = resp.json()
    assert info["emulator"] == "batchconf"
    assert (info["profile"], info["dialect"], info["base_path"]) == ("openai", "openai", "/v1")
    assert info["keys"] == 2
    assert {"kind", "now"} <= info["clock"].keys()
    assert info["timing"]["progression"] == "per_poll"
    assert isinstance(info["version"], str) and info["version"]
    for key in sync_sdk.target.api_keys:
        assert key not in resp.text


def test_reset_forgets_everything(sync_sdk: Harness) -> None:
    """POST /_emulator/reset forgets files, batches, faults and mutations."""
    client = sync_sdk.client()
    raw = sync_sdk.raw()
    b = submit(client, [chat_line("a")])
    raw.post("/_emulator/faults", json={"status_code": 500})
    raw.put("/_emulator/mutations", json={"enabled": ["list_missing_has_more"]})
    resp = raw.post("/_emulator/reset")
    assert resp.status_code == 200 and resp.json()["emulator"] == "batchconf"
    assert client.batches.list().data == [] and client.files.list().data == []
    assert raw.get(f"/v1/batches/{b.id}").status_code == 404
    assert raw.get("/_emulator/faults").json() == {"data": []}
    assert raw.get("/_emulator/mutations").json()["enabled"] == []


def test_clock_advance(sync_sdk: Harness) -> None:
    """POST /_emulator/clock/advance moves the clock forward by at least the seconds given."""
    raw = sync_sdk.raw()
    before = raw.get("/_emulator/clock").json()["now"]
    after = raw.post("/_emulator/clock/advance", json={"seconds": 3600}).json()["now"]
    assert after - before >= 3600
    assert raw.post("/_emulator/clock/advance", json={"seconds": 0.5}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"seconds": -1}, {"seconds": "10"}, {"seconds": True}, {"seconds": None}, {}, [], [5], "5", None, BAD],
    ids=["negative", "string", "bool", "null", "empty", "list", "list-5", "json-string", "no-body", "not-json"],
)
def test_clock_advance_bad_input(local_sdk: Harness, body: Any) -> None:
    """Bad clock advances are 400s and leave the clock alone."""
    raw = local_sdk.raw()
    _assert_400(_send(raw, "POST", "/_emulator/clock/advance", body))


def test_timing_get_put(sync_sdk: Harness) -> None:
    """PUT /_emulator/timing changes only the keys given; GET shows the model in force."""
    raw = sync_sdk.raw()
    start = raw.get("/_emulator/timing").json()
    assert start["progression"] == "per_poll"
    new = raw.put("/_emulator/timing", json={"validation_seconds": 5, "concurrency": 3}).json()
    assert (new["validation_seconds"], new["concurrency"]) == (5, 3)
    assert {k: v for k, v in new.items() if k not in ("validation_seconds", "concurrency")} == {
        k: v for k, v in start.items() if k not in ("validation_seconds", "concurrency")
    }
    assert raw.get("/_emulator/timing").json() == new


@pytest.mark.parametrize(
    "body",
    [
        {"bogus": 1},
        {"progression": "warp"},
        {"progression": ["manual"]},
        {"request_seconds": -1},
        {"validation_seconds": "slow"},
        {"concurrency": 0},
        {"concurrency": 1.5},
        {"concurrency": "2"},
        [],
        "manual",
        None,
        BAD,
    ],
)
def test_timing_bad_input(local_sdk: Harness, body: Any) -> None:
    """Bad timing models are 400s and leave the model in force."""
    raw = local_sdk.raw()
    before = raw.get("/_emulator/timing").json()
    _assert_400(_send(raw, "PUT", "/_emulator/timing", body))
    assert raw.get("/_emulator/timing").json() == before


def test_faults_post_get_delete(sync_sdk: Harness) -> None:
    """Fault rules are added with ids, listed in match order, applied to lines, and cleared."""
    raw = sync_sdk.raw()
    client = sync_sdk.client()
    first = raw.post("/_emulator/faults", json={"custom_id": "x-*", "status_code": 503}).json()
    second = raw.post("/_emulator/faults", json={"error": {"code": "request_timeout", "message": "m"}}).json()
    assert first["id"] != second["id"]
    assert [f["id"] for f in raw.get("/_emulator/faults").json()["data"]] == [first["id"], second["id"]]
    done = poll(client, submit(client, [chat_line("x-1"), chat_line("y")]).id)[-1]
    _, err = results(client, done)
    by_id = {line["custom_id"]: line for line in err}
    assert by_id["x-1"]["response"]["status_code"] == 503
    assert by_id["y"]["error"]["code"] == "request_timeout"
    assert raw.delete("/_emulator/faults").json() == {"data": []}
    done = poll(client, submit(client, [chat_line("x-2")]).id)[-1]
    assert done.request_counts is not None and done.request_counts.failed == 0


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "500",
        {},
        {"status_code": 200},
        {"status_code": 600},
        {"status_code": "500"},
        {"status_code": True},
        {"status_code": 500, "error": {"code": "x"}},
        {"error": {"message": "no code"}},
        {"error": "timeout"},
        {"status_code": 500, "body": "oops"},
        {"status_code": 500, "custom_id": 7},
        {"status_code": 500, "colour": "red"},
        BAD,
    ],
)
def test_faults_bad_input(local_sdk: Harness, body: Any) -> None:
    """Bad fault rules are 400s and add nothing."""
    raw = local_sdk.raw()
    _assert_400(_send(raw, "POST", "/_emulator/faults", body))
    assert raw.get("/_emulator/faults").json() == {"data": []}


def test_mutations_get_put(sync_sdk: Harness) -> None:
    """PUT /_emulator/mutations switches named mutations on (they take effect) and off again."""
    raw = sync_sdk.raw()
    state = raw.get("/_emulator/mutations").json()
    assert state["enabled"] == [] and state["available"] == MUTATIONS
    resp = raw.put("/_emulator/mutations", json={"enabled": ["list_missing_has_more"]})
    assert resp.json()["enabled"] == ["list_missing_has_more"]
    with sync_sdk.checker.off():
        assert "has_more" not in raw.get("/v1/batches").json()
    raw.put("/_emulator/mutations", json={"enabled": []})
    assert raw.get("/v1/batches").json()["has_more"] is False


@pytest.mark.parametrize(
    "body",
    [{"enabled": ["no_such_mutation"]}, {"enabled": "list_missing_has_more"}, {"enabled": [1]}, {}, [], None, BAD],
)
def test_mutations_bad_input(local_sdk: Harness, body: Any) -> None:
    """Unknown mutation names or a malformed body are 400s and change nothing."""
    raw = local_sdk.raw()
    _assert_400(_send(raw, "PUT", "/_emulator/mutations", body))
    assert raw.get("/_emulator/mutations").json()["enabled"] == []


def test_step_route(sync_sdk: Harness) -> None:
    """POST /_emulator/batches/{id}/step moves a batch one status, or `lines` more lines."""
    raw = sync_sdk.raw()
    client = sync_sdk.client()
    raw.put("/_emulator/timing", json={"progression": "manual"})
    b = submit(client, [chat_line("a"), chat_line("b"), chat_line("c")])
    assert raw.post(f"/_emulator/batches/{b.id}/step").json()["status"] == "in_progress"
    stepped = raw.post(f"/_emulator/batches/{b.id}/step", json={"lines": 2}).json()
    assert (stepped["status"], stepped["request_counts"]["completed"]) == ("in_progress", 2)
    assert raw.post(f"/_emulator/batches/{b.id}/step", json={"lines": 0}).json()["request_counts"]["completed"] == 2
    assert raw.post(f"/_emulator/batches/{b.id}/step", json={"lines": 99}).json()["request_counts"]["completed"] == 3
    assert raw.post(f"/_emulator/batches/{b.id}/step", json={}).json()["status"] == "finalizing"
    assert raw.post(f"/_emulator/batches/{b.id}/step").json()["status"] == "completed"
    assert raw.post(f"/_emulator/batches/{b.id}/step").json()["status"] == "completed"


@pytest.mark.parametrize(
    "body",
    [{"lines": -1}, {"lines": "2"}, {"lines": True}, {"lines": 1.5}, {"lines": 1}, BAD],
    ids=["negative", "string", "bool", "float", "not-in-progress", "not-json"],
)
def test_step_bad_input(local_sdk: Harness, body: Any) -> None:
    """Bad step input (or lines while the batch is still validating) is a 400."""
    raw = local_sdk.raw()
    raw.put("/_emulator/timing", json={"progression": "manual"})
    b = submit(local_sdk.client(), [chat_line("a")])
    _assert_400(_send(raw, "POST", f"/_emulator/batches/{b.id}/step", body))
    assert raw.get(f"/v1/batches/{b.id}").json()["status"] == "validating"


def test_step_unknown_batch(sync_sdk: Harness) -> None:
    """Stepping an unknown batch is a 404 envelope."""
    resp = sync_sdk.raw().post("/_emulator/batches/batch_nope/step")
    assert resp.status_code == 404


def test_admin_wrong_method(sync_sdk: Harness) -> None:
    """A wrong method on an admin route is a 405 envelope."""
    resp = sync_sdk.raw().get("/_emulator/reset")
    assert resp.status_code == 405


def test_timed_progression_on_a_virtual_clock(local_sdk: Harness) -> None:
    """Timed progression follows the timing model as the virtual clock is advanced (admin routes only)."""
    raw = local_sdk.raw()
    client = local_sdk.client()
    raw.put(
        "/_emulator/timing",
        json={
            "progression": "timed",
            "validation_seconds": 10,
            "request_seconds": 1,
            "concurrency": 2,
            "finalization_seconds": 5,
        },
    )
    b = submit(client, [chat_line(f"r{i}") for i in range(5)])  # 3 waves of 1 s

    def advance(seconds: float) -> dict[str, Any]:
        raw.post("/_emulator/clock/advance", json={"seconds": seconds})
        snap: dict[str, Any] = raw.get(f"/v1/batches/{b.id}").json()
        return snap

    assert advance(9)["status"] == "validating"
    snap = advance(1)
    assert snap["status"] == "in_progress" and snap["in_progress_at"] == b.created_at + 10
    snap = advance(2)
    assert (snap["status"], snap["request_counts"]["completed"]) == ("in_progress", 4)
    snap = advance(1)
    assert snap["status"] == "finalizing" and snap["finalizing_at"] == b.created_at + 13
    snap = advance(5)
    assert snap["status"] == "completed" and snap["completed_at"] == b.created_at + 18
    assert snap["request_counts"] == {"total": 5, "completed": 5, "failed": 0}


def test_timed_progression_catches_up_in_one_look(local_sdk: Harness) -> None:
    """A timed batch looked at long after it was due shows every status it passed, stamped when due."""
    raw = local_sdk.raw()
    client = local_sdk.client()
    raw.put("/_emulator/timing", json={"progression": "timed", "validation_seconds": 3, "finalization_seconds": 4})
    b = submit(client, [chat_line("a")])
    raw.post("/_emulator/clock/advance", json={"seconds": 3600})
    done = client.batches.retrieve(b.id)
    assert done.status == "completed"
    assert (done.in_progress_at, done.finalizing_at, done.completed_at) == (
        b.created_at + 3,
        b.created_at + 3,
        b.created_at + 7,
    )


@pytest.mark.parametrize("body", [[2], "2", {"line": 2}], ids=["list", "json-string", "typo-key"])
def test_step_rejects_malformed_body(local_sdk: Harness, body: Any) -> None:
    """A step body that is not {"lines": n} (a list, a string, a misspelt key) is a 400 and moves nothing."""
    raw = local_sdk.raw()
    raw.put("/_emulator/timing", json={"progression": "manual"})
    b = submit(local_sdk.client(), [chat_line("a")])
    raw.post(f"/_emulator/batches/{b.id}/step")
    resp = raw.post(f"/_emulator/batches/{b.id}/step", json=body)
    status = raw.get(f"/v1/batches/{b.id}").json()["status"]
    assert (resp.status_code, status) == (400, "in_progress")


@pytest.mark.parametrize(
    "body",
    [{"shuffle": "yes"}, {"shuffle": None}, {"shuffle": [True]}, {"concurrency": True}, {"validation_seconds": True}],
    ids=["shuffle-string", "shuffle-null", "shuffle-list", "concurrency-bool", "seconds-bool"],
)
def test_timing_rejects_wrong_types(local_sdk: Harness, body: dict[str, Any]) -> None:
    """PUT /_emulator/timing with a non-boolean shuffle or a boolean number is a 400 and changes nothing."""
    raw = local_sdk.raw()
    before = raw.get("/_emulator/timing").json()
    resp = raw.put("/_emulator/timing", json=body)
    assert (resp.status_code, raw.get("/_emulator/timing").json()) == (400, before)


def test_bad_admin_input_on_server(server_sdk: Harness) -> None:
    """Behind uvicorn too, bad input on every admin route is a 400 envelope (a sample per route)."""
    raw = server_sdk.raw()
    b = submit(server_sdk.client(), [chat_line("a")])
    samples: list[tuple[str, str, Any]] = [
        ("POST", "/_emulator/clock/advance", {"seconds": -1}),
        ("POST", "/_emulator/clock/advance", BAD),
        ("PUT", "/_emulator/timing", {"bogus": 1}),
        ("PUT", "/_emulator/timing", BAD),
        ("POST", "/_emulator/faults", {"status_code": 200}),
        ("POST", "/_emulator/faults", None),
        ("PUT", "/_emulator/mutations", {"enabled": ["no_such_mutation"]}),
        ("POST", f"/_emulator/batches/{b.id}/step", {"lines": -1}),
        ("POST", f"/_emulator/batches/{b.id}/step", {"lines": 1}),
    ]
    for method, path, body in samples:
        _assert_400(_send(raw, method, path, body))
    assert raw.post("/_emulator/batches/batch_nope/step").status_code == 404


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(
        [
            ("POST", "/_emulator/clock/advance"),
            ("PUT", "/_emulator/timing"),
            ("POST", "/_emulator/faults"),
            ("PUT", "/_emulator/mutations"),
            ("POST", "/_emulator/batches/{id}/step"),
            ("POST", "/v1/batches"),
        ]
    ),
    body=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["seconds", "lines", "enabled", "status_code", "error", "progression", "concurrency"])
                | st.text(max_size=4),
                inner,
                max_size=4,
            )
        ),
        max_leaves=8,
    ),
)
def test_no_json_body_gives_a_500(local_sdk: Harness, route: tuple[str, str], body: Any) -> None:
    """Whatever JSON is sent to an admin route or to batch create, the answer is below 500."""
    raw = local_sdk.raw()
    method, path = route
    if "{id}" in path:
        path = path.replace("{id}", submit(local_sdk.client(), [chat_line("a")]).id)
    resp = raw.request(method, path, json=body)
    assert resp.status_code < 500, resp.text
    raw.put("/_emulator/timing", json=TimingModel().to_json())
    raw.post("/_emulator/reset")
