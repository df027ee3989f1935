"""Outbound webhooks: the dispatcher against the real receiver over 127.0.0.1, and the receiver.

No HTTP is mocked: every delivery is a POST to a `WebhookReceiver` on loopback. Time is a
`VirtualClock`: a retry becomes due when the test advances the clock, never by waiting.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Iterator
from types import MappingProxyType

import orjson
import pytest

from conformance.receiver import MAX_BODY_BYTES, WebhookReceiver
from emulator import VirtualClock
from emulator._webhooks import WebhookDispatcher

T0 = 1_000_000.0
# Bounds every wait on the receiver; a passing test waits far less.
WAIT = 2.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def _payload(event_id: str = "evt_" + "a" * 24, event_type: str = "batch.completed") -> dict[str, object]:
    return {"id": event_id, "type": event_type, "created_at": int(T0), "data": {"id": "batch_1", "status": "completed"}}


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# -- delivery ----------------------------------------------------------------------------------


def test_delivered_once_with_headers_and_body(clock: VirtualClock, receiver: WebhookReceiver) -> None:
    """An event is POSTed once with the caller's headers, JSON content type and the payload as body."""
    d = WebhookDispatcher(clock=clock)
    payload = _payload()
    event = d.enqueue(
        receiver.url,
        "batch.completed",
        payload,
        "batch_1",
        headers={"X-ScaiGrid-Event": "batch.completed", "X-ScaiGrid-Delivery": str(payload["id"])},
    )
    assert event.id == payload["id"] and event.created_at == T0 and event.body == orjson.dumps(payload)
    assert d.pending() == 1

    assert d.deliver_due() == 1
    [hook] = receiver.received
    assert hook.path == "/hook" and hook.status == 204
    assert hook.body == event.body and hook.json == payload
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["x-scaigrid-event"] == "batch.completed"
    assert hook.headers["x-scaigrid-delivery"] == payload["id"]

    clock.advance(3600)
    assert d.deliver_due() == 0, "a delivered event must never be sent again"
    assert len(receiver.received) == 1 and d.pending() == 0
    [ev] = d.events()
    assert ev["state"] == "delivered" and ev["attempts"] == 1 and ev["next_attempt_at"] is None


def test_retries_follow_the_backoff_on_the_clock(clock: VirtualClock) -> None:
    """After each 500 the next attempt is due backoff[n-1] seconds later, with the same id and body."""
    d = WebhookDispatcher(clock=clock, backoff_seconds=(1, 2, 4, 8))
    with WebhookReceiver(fail_first=3) as receiver:
        event = d.enqueue(receiver.url, "batch.failed", _payload(event_type="batch.failed"), "batch_1")
        assert d.deliver_due() == 1  # at T0: 500
        for wait in (1.0, 2.0, 4.0):
            [ev] = d.events()
            assert ev["state"] == "pending" and ev["next_attempt_at"] == clock.now() + wait
            clock.advance(wait - 0.25)
            assert d.deliver_due() == 0, f"due before its backoff of {wait} s"
            clock.advance(0.25)
            assert d.deliver_due() == 1, f"not due after its backoff of {wait} s"
        clock.advance(100)
        assert d.deliver_due() == 0, "sent again after a 2xx"

        hooks = receiver.received
        assert [h.status for h in hooks] == [500, 500, 500, 204]
        assert {h.headers.get("content-type") for h in hooks} == {"application/json"}
        assert {h.body for h in hooks} == {event.body}
        assert list(receiver.by_event_id()) == [event.id]

    attempts = d.deliveries()
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["at"] for a in attempts] == [T0, T0 + 1, T0 + 3, T0 + 7]
    assert [a["delivered"] for a in attempts] == [False, False, False, True]
    assert [a["status_code"] for a in attempts] == [500, 500, 500, 204]
    assert attempts[0]["error"] and attempts[-1]["error"] is None
    assert d.events()[0]["state"] == "delivered" and d.pending() == 0


def test_gives_up_after_max_attempts(clock: VirtualClock) -> None:
    """After max_attempts failures the event is given up: no more attempts, however late."""
    d = WebhookDispatcher(clock=clock, max_attempts=3, backoff_seconds=(1,))
    with WebhookReceiver(fail_first=100) as receiver:
        d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")
        made = 0
        for _ in range(6):
            made += d.deliver_due()
            clock.advance(1)
        assert made == 3 and len(receiver.received) == 3
    [ev] = d.events()
    assert ev["state"] == "gave_up" and ev["attempts"] == 3 and ev["next_attempt_at"] is None
    assert d.pending() == 0


def test_connection_refused_is_a_failed_attempt(clock: VirtualClock) -> None:
    """A closed port fails the attempt (no status, an error) and schedules a retry."""
    d = WebhookDispatcher(clock=clock)
    d.enqueue(f"http://127.0.0.1:{_closed_port()}/hook", "batch.completed", _payload(), "batch_1")
    assert d.deliver_due() == 1
    [attempt] = d.deliveries()
    assert attempt["status_code"] is None and not attempt["delivered"]
    assert "ConnectError" in attempt["error"]
    [ev] = d.events()
    assert ev["state"] == "pending" and ev["next_attempt_at"] == T0 + 1


def test_a_redirect_is_not_followed(clock: VirtualClock) -> None:
    """A 3xx is a failed attempt: the dispatcher never follows it elsewhere."""
    d = WebhookDispatcher(clock=clock)
    with WebhookReceiver(status=307) as receiver:
        d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")
        assert d.deliver_due() == 1
    [attempt] = d.deliveries()
    assert attempt["status_code"] == 307 and not attempt["delivered"]
    assert "redirect" in attempt["error"]
    assert d.events()[0]["state"] == "pending"


def test_resend_delivers_the_same_event_again(clock: VirtualClock, receiver: WebhookReceiver) -> None:
    """resend() makes one more delivery of a delivered event, with the same id and body."""
    d = WebhookDispatcher(clock=clock)
    event = d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")
    assert d.deliver_due() == 1
    d.resend(event)
    assert d.pending() == 1
    assert d.deliver_due() == 1
    assert d.deliver_due() == 0
    [(event_id, hooks)] = receiver.by_event_id().items()
    assert event_id == event.id and len(hooks) == 2 and hooks[0].body == hooks[1].body
    [ev] = d.events()
    assert ev["state"] == "delivered" and ev["attempts"] == 2 and ev["times_delivered"] == 2
    assert [a["attempt"] for a in d.deliveries()] == [1, 2]


def test_resend_while_pending_waits_for_the_current_delivery(clock: VirtualClock) -> None:
    """A resend asked while the event is still retrying is one more delivery after it succeeds."""
    d = WebhookDispatcher(clock=clock)
    with WebhookReceiver(fail_first=1) as receiver:
        event = d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")
        assert d.deliver_due() == 1  # 500
        d.resend(event)
        clock.advance(1)
        assert d.deliver_due() == 1  # 204: delivered, the resend is now due
        assert d.deliver_due() == 1  # the resend
        assert d.deliver_due() == 0
        assert [h.status for h in receiver.received] == [500, 204, 204]
    assert d.events()[0]["times_delivered"] == 2


def test_concurrent_deliver_due_attempts_once(clock: VirtualClock, receiver: WebhookReceiver) -> None:
    """Several threads calling deliver_due at once make one attempt, not one each."""
    d = WebhookDispatcher(clock=clock)
    d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")
    barrier = threading.Barrier(8)
    made: list[int] = []

    def run() -> None:
        barrier.wait(WAIT)
        made.append(d.deliver_due())

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert sum(made) == 1 and len(receiver.received) == 1


def test_clear_forgets_events_and_deliveries(clock: VirtualClock, receiver: WebhookReceiver) -> None:
    d = WebhookDispatcher(clock=clock)
    d.enqueue(receiver.url, "batch.completed", _payload("evt_1"), "batch_1")
    d.enqueue(receiver.url, "batch.completed", _payload("evt_2"), "batch_2")
    assert d.deliver_due() == 2
    d.enqueue(receiver.url, "batch.completed", _payload("evt_3"), "batch_3")
    d.clear()
    assert d.events() == [] and d.deliveries() == [] and d.pending() == 0
    assert d.deliver_due() == 0


# -- events and their ids ----------------------------------------------------------------------


def test_event_ids(clock: VirtualClock) -> None:
    """The id is event_id, else the payload's id, else a new evt_<24 hex>; a conflict is refused."""
    d = WebhookDispatcher(clock=clock)
    url = "http://127.0.0.1:9/hook"
    assert d.enqueue(url, "t", {"id": "evt_x"}, "b").id == "evt_x"
    assert d.enqueue(url, "t", {"id": "evt_y"}, "b", event_id="evt_y").id == "evt_y"
    made = d.enqueue(url, "t", {"data": 1}, "b").id
    assert re.fullmatch(r"evt_[0-9a-f]{24}", made)
    frozen = d.enqueue(url, "t", MappingProxyType({"id": "evt_z", "n": 1}), "b")
    assert frozen.body == b'{"id":"evt_z","n":1}'
    with pytest.raises(ValueError, match="differs"):
        d.enqueue(url, "t", {"id": "evt_a"}, "b", event_id="evt_b")
    with pytest.raises(ValueError, match="already queued"):
        d.enqueue(url, "t", {"id": "evt_x"}, "b")


def test_event_headers(clock: VirtualClock) -> None:
    """The caller may set the content type; framing headers and header injection are refused."""
    d = WebhookDispatcher(clock=clock)
    url = "http://127.0.0.1:9/hook"
    event = d.enqueue(url, "t", {"id": "evt_1"}, "b", headers={"content-type": "application/cloudevents+json"})
    assert dict(event.headers) == {"content-type": "application/cloudevents+json"}
    for bad in ({"Host": "evil"}, {"Content-Length": "1"}, {"X-A": "v\r\nX-B: w"}, {"Bad Name": "v"}):
        with pytest.raises(ValueError, match="header"):
            d.enqueue(url, "t", {"data": 1}, "b", headers=bad)


# -- where deliveries may go ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/hook", "scheme must be http or https"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("127.0.0.1/hook", "scheme must be http or https"),
        ("http://user:secret@127.0.0.1/hook", "user info"),
        ("http://example.com/hook", "not an allowed host"),
        ("http://127.0.0.1.example.com/hook", "not an allowed host"),
        ("http://0.0.0.0:8000/hook", "not an allowed host"),
        ("http://127.0.0.1\\@evil.example/hook", "user info"),
        ("http://evil.example#@127.0.0.1/", "not an allowed host"),
        ("http://127.0.0.1:99999/hook", "out of range"),
        ("", "non-empty string"),
        ("http://127.0.0.1/" + "a" * 3000, "longer than"),
    ],
)
def test_check_url_refuses(clock: VirtualClock, url: str, reason: str) -> None:
    """check_url raises ValueError naming the URL and the reason."""
    with pytest.raises(ValueError, match="refused") as info:
        WebhookDispatcher(clock=clock).check_url(url)
    assert reason in str(info.value)
    assert repr(url[:64]) in str(info.value) or repr(url) in str(info.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/hook", "https://LOCALHOST/x?y=1", "http://[::1]:9/", "http://localhost"]
)
def test_check_url_accepts_loopback_by_default(clock: VirtualClock, url: str) -> None:
    WebhookDispatcher(clock=clock).check_url(url)


def test_allowed_hosts_are_exact_and_case_insensitive(clock: VirtualClock) -> None:
    d = WebhookDispatcher(clock=clock, allowed_hosts=["Hooks.Example"])
    d.check_url("https://hooks.example/x")
    with pytest.raises(ValueError, match="not an allowed host"):
        d.check_url("https://sub.hooks.example/x")
    with pytest.raises(ValueError, match="not an allowed host"):
        d.check_url("http://127.0.0.1/x")
    any_host = WebhookDispatcher(clock=clock, allowed_hosts=["*"])
    any_host.check_url("https://anything.example/x")
    with pytest.raises(ValueError, match="user info"):
        any_host.check_url("https://u:p@anything.example/x")


def test_a_refused_host_is_refused_at_delivery(clock: VirtualClock, receiver: WebhookReceiver) -> None:
    """The host is checked again before the attempt: a refused URL is never contacted, and not retried."""
    d = WebhookDispatcher(clock=clock, allowed_hosts=["localhost"])
    d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")  # 127.0.0.1: not allowed
    assert d.deliver_due() == 1
    assert receiver.received == []
    [attempt] = d.deliveries()
    assert attempt["status_code"] is None and not attempt["delivered"]
    assert "not an allowed host" in attempt["error"]
    assert d.events()[0]["state"] == "gave_up"
    clock.advance(100)
    assert d.deliver_due() == 0


def test_constructor_refuses_bad_settings(clock: VirtualClock) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        WebhookDispatcher(clock=clock, max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        WebhookDispatcher(clock=clock, backoff_seconds=(1, -1))
    with pytest.raises(ValueError, match="timeout"):
        WebhookDispatcher(clock=clock, timeout=0)
    with pytest.raises(TypeError, match="allowed_hosts"):
        WebhookDispatcher(clock=clock, allowed_hosts="localhost")


# -- the admin views -----------------------------------------------------------------------------


def test_deliveries_and_events_are_json_without_headers(clock: VirtualClock, receiver: WebhookReceiver) -> None:
    """deliveries() shows each attempt's id, URL, status, error, attempt and time: no request header."""
    d = WebhookDispatcher(clock=clock)
    d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1", headers={"X-Signature": "s3cr3t"})
    d.deliver_due()
    [attempt] = d.deliveries()
    assert set(attempt) == {
        "event_id",
        "type",
        "batch_id",
        "url",
        "attempt",
        "at",
        "status_code",
        "error",
        "delivered",
    }
    [event] = d.events()
    assert set(event) == {
        "id",
        "type",
        "batch_id",
        "url",
        "created_at",
        "state",
        "attempts",
        "times_delivered",
        "next_attempt_at",
    }
    dumped = orjson.dumps({"deliveries": d.deliveries(), "events": d.events()})
    assert b"s3cr3t" not in dumped


# -- the pump thread -----------------------------------------------------------------------------


def test_pump_delivers_without_explicit_calls(clock: VirtualClock, receiver: WebhookReceiver) -> None:
    """start() ticks and delivers in the background; a failing tick does not stop it; stop() is idempotent."""
    d = WebhookDispatcher(clock=clock)
    ticks = threading.Event()

    def tick() -> None:
        ticks.set()
        raise RuntimeError("a tick that fails every time")

    d.start(tick, interval=0.01)
    d.start(tick, interval=0.01)  # idempotent: still one pump
    try:
        assert [t.name for t in threading.enumerate()].count("batchconf-webhooks") == 1
        d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")
        assert len(receiver.wait_for(1, timeout=WAIT)) == 1
        assert ticks.is_set()
    finally:
        d.stop()
    d.stop()
    assert "batchconf-webhooks" not in [t.name for t in threading.enumerate()]
    d.enqueue(receiver.url, "batch.completed", _payload("evt_2"), "batch_2")
    assert d.pending() == 1, "a stopped pump delivers nothing"


def test_pump_retries_when_the_clock_advances(clock: VirtualClock) -> None:
    """With the pump running, advancing the virtual clock past the backoff makes the retry happen."""
    d = WebhookDispatcher(clock=clock)
    with WebhookReceiver(fail_first=1) as receiver:
        d.start(interval=0.01)
        try:
            d.enqueue(receiver.url, "batch.completed", _payload(), "batch_1")
            assert len(receiver.wait_for(1, timeout=WAIT)) == 1
            clock.advance(1)
            hooks = receiver.wait_for(2, timeout=WAIT)
        finally:
            d.stop()
    assert [h.status for h in hooks] == [500, 204]


# -- the receiver --------------------------------------------------------------------------------


def test_receiver_fails_first_then_answers_status() -> None:
    import httpx

    with WebhookReceiver(fail_first=2, status=200) as r, httpx.Client(trust_env=False) as client:
        codes = [client.post(r.url_for("a/b"), json={"id": "e1", "n": n}).status_code for n in range(3)]
        assert codes == [500, 500, 200]
        assert [h.status for h in r.received] == [500, 500, 200]
        assert {h.path for h in r.received} == {"/a/b"}
        assert [orjson.loads(h.body)["n"] for h in r.by_event_id()["e1"]] == [0, 1, 2]


def test_receiver_wait_for_returns_what_arrived_on_timeout() -> None:
    import httpx

    with WebhookReceiver() as r:
        httpx.post(r.url, content=b"not json", trust_env=False)
        got = r.wait_for(3, timeout=0.05)
    assert len(got) == 1 and got[0].json is None and got[0].body == b"not json"
    assert r.by_event_id() == {}


def test_receiver_handles_only_bounded_posts() -> None:
    """GET gets 405; a declared body over the limit gets 413 and is not recorded."""
    import httpx

    with WebhookReceiver() as r:
        response = httpx.get(r.url, trust_env=False)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        host, port = r.url.split("//")[1].split("/")[0].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
        try:
            conn.putrequest("POST", "/hook")
            conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
            conn.endheaders()
            assert conn.getresponse().status == 413
        finally:
            conn.close()
        assert r.received == []


def test_receiver_lifecycle() -> None:
    r = WebhookReceiver()
    with pytest.raises(RuntimeError, match="not started"):
        _ = r.url
    with r:
        assert r.url.startswith("http://127.0.0.1:") and r.url.endswith("/hook")
    r.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        r.start()
