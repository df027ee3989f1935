"""Several checks on one batch: each broken rule is reported, none hides another."""

from __future__ import annotations

import pytest

from conformance._checks import CombinedViolation
from conformance.invariants import Checks, ContractViolation


def _broken(check: str, inferred: str | None = None) -> ContractViolation:
    return ContractViolation(check, f"{check} is broken", inferred=inferred)


def test_every_violation_is_reported_in_order() -> None:
    checks = Checks()
    with checks:
        raise _broken("cancel-final")
    with checks:
        pass
    with checks:
        raise _broken("schema:batch")
    with pytest.raises(ContractViolation) as caught:
        checks.raise_any()
    text = str(caught.value)
    assert isinstance(caught.value, CombinedViolation)
    assert caught.value.check == "cancel-final" and caught.value.checks == ("cancel-final", "schema:batch")
    assert "2 rules broken (cancel-final, schema:batch)" in text
    assert text.index("(1) [cancel-final]") < text.index("(2) [schema:batch]")
    assert caught.value.inferred is None


def test_a_lone_violation_is_raised_as_it_is() -> None:
    checks = Checks()
    alone = _broken("list-order", inferred="batches.list_order (source: x)")
    with checks:
        raise alone
    with pytest.raises(ContractViolation) as caught:
        checks.raise_any()
    assert caught.value is alone


def test_the_combination_is_a_deviation_only_when_every_part_is() -> None:
    both = Checks()
    for name in ("a", "b"):
        with both:
            raise _broken(name, inferred=f"fact.{name} (source: s)")
    with pytest.raises(ContractViolation) as caught:
        both.raise_any()
    assert caught.value.inferred == "fact.a (source: s); fact.b (source: s)"

    mixed = Checks()
    with mixed:
        raise _broken("a", inferred="fact.a (source: s)")
    with mixed:
        raise _broken("b")
    with pytest.raises(ContractViolation) as caught:
        mixed.raise_any()
    assert caught.value.inferred is None


def test_nothing_is_raised_when_every_check_held_and_other_errors_pass_through() -> None:
    checks = Checks()
    with checks:
        pass
    checks.raise_any()
    with pytest.raises(KeyError), checks:
        raise KeyError("a harness bug is not a verdict")
    assert checks.violations == []
