"""Several checks on one batch, each reported: a violation does not hide the next check.

```python
checks = Checks()
with checks:
    check_own_requirement(...)       # the test's own requirement, first
with checks:
    check_every_invariant(...)       # the shared invariants of the same batch
checks.raise_any()                   # one ContractViolation naming every broken rule
```

The combined violation rests on inferred facts only when every part does, so one verified
violation among deviations still fails the check (and a lone deviation stays a deviation).
"""

from __future__ import annotations

from types import TracebackType

from ._contract import ContractViolation

__all__ = ["Checks", "CombinedViolation", "combine"]


class Checks:
    """A context manager, entered once per check, that collects ContractViolations."""

    def __init__(self) -> None:
        self.violations: list[ContractViolation] = []

    def __enter__(self) -> Checks:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if isinstance(exc, ContractViolation):
            self.violations.append(exc)
            return True
        return False

    def raise_any(self) -> None:
        """Raise the one violation, or a violation combining several; nothing when all held."""
        if not self.violations:
            return
        if len(self.violations) == 1:
            raise self.violations[0]
        raise combine(self.violations)


class CombinedViolation(ContractViolation):
    """Several violations of one check, each kept in `parts`."""

    def __init__(self, parts: list[ContractViolation]) -> None:
        self.parts = parts
        #: Every broken rule; `check` is the first, the one the check was about.
        self.checks = tuple(dict.fromkeys(v.check for v in parts))
        told = "\n".join(f"({index}) {violation}" for index, violation in enumerate(parts, 1))
        inferred = [v.inferred for v in parts]
        super().__init__(
            parts[0].check,
            f"{len(parts)} rules broken ({', '.join(self.checks)}):\n{told}",
            inferred="; ".join(p for p in inferred if p) if all(inferred) else None,
        )


def combine(violations: list[ContractViolation]) -> ContractViolation:
    """One violation telling each of `violations` in turn."""
    return CombinedViolation(violations)
