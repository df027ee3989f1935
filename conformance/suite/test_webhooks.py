"""Webhooks: a batch subscribed at create is announced once, when it ends, to its URL.

The scenarios subscribe their batches to the run's receiver on 127.0.0.1 (started by the
plugin; targets that cannot reach it deselect these tests). On a target with controls the
suite waits, bounded, until the emulator shows no delivery pending (`GET /_emulator/webhooks`);
elsewhere it waits, bounded, for one delivery per ended batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .._target import Target
from .._waiter import Waiter
from ..receiver import ReceivedHook, WebhookReceiver
from ..scenarios import Finished
from . import _scenarios as sc

pytestmark = [
    pytest.mark.capability("webhooks"),
    pytest.mark.scenarios(*sc.WEBHOOK_SCENARIOS),
]


def _settled(
    request: pytest.FixtureRequest, receiver: WebhookReceiver, waiter: Waiter, target: Target, count: int
) -> list[ReceivedHook]:
    """Every hook received once the target has delivered what it owes (bounded)."""
    if target.controls:
        # The target delivers on its own (a background sender): watch, do not push. The
        # receiver records a hook before answering it, so once nothing is pending every
        # delivery made is in `received`.
        control = request.getfixturevalue("control")
        waiter.until(
            lambda: True if control.webhooks().get("pending") == 0 else None,
            what="no webhook delivery pending on the target (GET /_emulator/webhooks)",
            timeout="webhook",
        )
        return receiver.received
    return receiver.wait_for(count, timeout=waiter.timeout("webhook"))


def _about(hook: ReceivedHook) -> Any:
    data = hook.json.get("data") if isinstance(hook.json, Mapping) else None
    return data.get("id") if isinstance(data, Mapping) else None


def test_each_ended_batch_is_announced_exactly_once(
    request: pytest.FixtureRequest,
    finished: Callable[[str], Finished],
    webhook_receiver: WebhookReceiver,
    waiter: Waiter,
    bc_profile: Profile,
    bc_target: Target,
) -> None:
    """A batch created with a webhook URL MUST be announced to it exactly once when it ends
    (completed, failed, cancelled): one POST whose body validates against the dialect's
    webhook event schema, whose `type` is the event of the batch's ending
    (`webhooks.events`), whose `data` is the batch as retrieved (same id and status), and
    whose headers name the event type and the event id where the profile says so."""
    rules = bc_profile.webhooks
    assert rules is not None
    ended = {finished(name).batch_id: finished(name) for name in sc.WEBHOOK_SCENARIOS}
    hooks = _settled(request, webhook_receiver, waiter, bc_target, len(ended))
    for batch_id, done in ended.items():
        got = [hook for hook in hooks if _about(hook) == batch_id]
        status = str(done.final.get("status"))
        role = bc_profile.lifecycle.role(status) or status
        event = rules.events.get(role)
        if len(got) != 1:
            raise inv.violation(
                "webhook-once",
                f"batch {batch_id} ended {status!r} but was announced {len(got)} times",
                received=[hook.json for hook in got][:3],
                expected=f"exactly one POST of a {event!r} event to the subscribed URL",
                profile=bc_profile,
                key="webhooks",
            )
        hook = got[0]
        inv.check_schema(bc_profile, "webhook_event", hook.json, f"the webhook announcing batch {batch_id}")
        body = hook.json
        assert isinstance(body, Mapping)  # the schema says so
        data = body["data"]
        if body.get("type") != event or data.get("status") != status:
            raise inv.violation(
                "webhook-event",
                f"the webhook of batch {batch_id} does not announce how it ended",
                received={"type": body.get("type"), "data.status": data.get("status")},
                expected={"type": event, "data.status": status},
                profile=bc_profile,
                key=f"webhooks.events.{role}",
                observed=body.get("type") if data.get("status") == status else inv.NOT_OBSERVED,
            )
        inv.check_schema(bc_profile, "batch", data, f"the batch in the webhook announcing {batch_id}")
        for name, want, key in (
            (rules.event_header, event, "webhooks.event_header"),
            (rules.delivery_header, body.get("id"), "webhooks.delivery_header"),
        ):
            if name and hook.headers.get(name.lower()) != want:
                raise inv.violation(
                    "webhook-headers",
                    f"the webhook of batch {batch_id} does not carry header {name} as the profile says",
                    received={name: hook.headers.get(name.lower())},
                    expected={name: want},
                    profile=bc_profile,
                    key=key,
                )


def test_no_webhook_for_batches_without_a_subscription(
    request: pytest.FixtureRequest,
    finished: Callable[[str], Finished],
    webhook_receiver: WebhookReceiver,
    waiter: Waiter,
    bc_target: Target,
    bc_profile: Profile,
) -> None:
    """Only batches created with a webhook URL MUST be announced: every POST the receiver
    got names a batch subscribed to it."""
    subscribed = {finished(name).batch_id for name in sc.WEBHOOK_SCENARIOS}
    hooks = _settled(request, webhook_receiver, waiter, bc_target, len(subscribed))
    stray = [hook.json for hook in hooks if _about(hook) not in subscribed]
    if stray:
        raise inv.violation(
            "webhook-stray",
            "the receiver was sent webhooks about batches that did not subscribe to it",
            received=stray[:3],
            expected=f"webhooks about {sorted(subscribed)} only",
            profile=bc_profile,
            key="webhooks.subscribe_field",
        )
