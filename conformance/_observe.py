"""`--observe FILE`: what a target showed where the profile only inferred, as a profile overlay.

Each deviation of the run whose check saw one value for its fact becomes a proposed fact of
an overlay of the run's profile: `{ value = <observed>, source = "observed on <target name>,
<date>", verified = true }`. A person reviews the file; `--profile FILE` then loads it on top
of its base (`extends`), and the inferred fact has become a verified one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ._checks import CombinedViolation
from ._contract import NOT_OBSERVED, ContractViolation

__all__ = ["Observations", "observe", "write"]


@dataclass
class Observations:
    """The facts an overlay proposes, and the deviations it could not use (with why)."""

    facts: list[tuple[str, object, str]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def observe(violations: Iterable[ContractViolation], *, target_name: str, day: date | None = None) -> Observations:
    """The observed facts behind `violations` (deviations), one per fact key."""
    source = f"observed on {target_name}, {(day or date.today()).isoformat()}"
    found = Observations()
    seen: dict[str, object] = {}
    for violation in _parts(violations):
        if violation.fact is None or violation.observed is NOT_OBSERVED:
            found.left_out.append(f"{violation.check}: no single observed value for {violation.inferred}")
            continue
        if violation.fact in seen:
            if seen[violation.fact] != violation.observed:
                found.left_out.append(
                    f"{violation.fact}: observed both {seen[violation.fact]!r} and {violation.observed!r}"
                )
            continue
        seen[violation.fact] = violation.observed
        found.facts.append((violation.fact, violation.observed, source))
    # A fact seen with two values is left for a person to decide.
    conflicting = {line.split(":", 1)[0] for line in found.left_out}
    found.facts = [fact for fact in found.facts if fact[0] not in conflicting]
    return found


def _parts(violations: Iterable[ContractViolation]) -> Iterable[ContractViolation]:
    for violation in violations:
        if isinstance(violation, CombinedViolation):
            yield from (part for part in violation.parts if part.inferred)
        else:
            yield violation


def write(path: Path, base: str, found: Observations) -> None:
    """Write the overlay of `found` extending profile `base` to `path`."""
    from schemas import overlay_text

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(overlay_text(base, found.facts), encoding="utf-8")
