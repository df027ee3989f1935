"""Who is told when a batch ends: nobody, or a webhook the batch was created with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from schemas import Profile

from .._clock import Clock
from .._ids import IdFactory
from .._mutations import Mutations
from .._webhooks import WebhookDispatcher
from . import seams
from .records import BatchRecord

__all__ = ["EventRenderer", "NoNotifier", "Notifier", "WebhookNotifier"]

#: (batch, event id, event type, created_at) -> the event's JSON body, in the dialect's shape.
EventRenderer = Callable[[BatchRecord, str, str, int], dict[str, Any]]


class Notifier(Protocol):
    """Told once when a batch enters a terminal role (after its results are stored)."""

    def batch_ended(self, b: BatchRecord) -> None:
        """Announce the end of `b`."""
        ...


class NoNotifier:
    """For dialects without notifications."""

    def batch_ended(self, b: BatchRecord) -> None:
        """Nothing to do."""


class WebhookNotifier:
    """Queues one webhook event per ended batch that was created with a webhook URL."""

    def __init__(
        self,
        profile: Profile,
        *,
        dispatcher: WebhookDispatcher,
        render: EventRenderer,
        clock: Clock,
        ids: IdFactory,
        mutations: Mutations,
    ) -> None:
        if profile.webhooks is None:
            raise ValueError(f"profile {profile.name!r} has no [webhooks] table")
        self.rules = profile.webhooks
        self.dispatcher = dispatcher
        self.render = render
        self.clock = clock
        self.ids = ids
        self.mutations = mutations

    def batch_ended(self, b: BatchRecord) -> None:
        """Queue the event for `b` (its role decides the event type)."""
        if not b.webhook_url:
            return
        event_type = self.rules.events.get(b.role)
        if event_type is None:
            return
        event_id = "evt_" + self.ids.hex(12)
        created = int(self.clock.now())
        headers = {self.rules.event_header: event_type, self.rules.delivery_header: event_id}
        copies = self.mutations.apply(seams.NOTIFY_COPIES, 1)
        if copies < 1:
            return
        event = self.dispatcher.enqueue(
            b.webhook_url,
            event_type,
            self.render(b, event_id, event_type, created),
            b.id,
            headers=headers,
            event_id=event_id,
        )
        for _ in range(copies - 1):
            self.dispatcher.resend(event)
