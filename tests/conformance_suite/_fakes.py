"""Stand-ins for what the waiter observed and a finished batch, for invariant tests on
canned bodies (`ObservationLike` / `FinishedLike`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Obs:
    """Polled snapshots of one batch."""

    snapshots: list[dict[str, Any]]

    @property
    def final(self) -> dict[str, Any]:
        """The last snapshot."""
        return self.snapshots[-1]


@dataclass
class Done:
    """A finished batch with its parsed result records."""

    batch_id: str
    created: dict[str, Any]
    observation: Obs
    output_lines: list[dict[str, Any]]
    error_lines: list[dict[str, Any]]
    input_custom_ids: list[str] = field(default_factory=lambda: ["a", "b", "c"])

    @property
    def final(self) -> dict[str, Any]:
        """The last observed state."""
        return self.observation.final
