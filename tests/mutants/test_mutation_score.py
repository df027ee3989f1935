"""The suite proves its teeth: against each named mutation of the emulator it must fail.

This runs a representative subset, one mutation per check area of the suite; the whole
catalogue runs with `batchconf mutants` (CI runs that too).
"""

from __future__ import annotations

import pytest

from emulator import MUTATIONS
from emulator._mutants import MutantResult, format_table, run_mutant, run_mutants

# One per check area: lifecycle, timestamps, counts, records, files, validation, envelope,
# cancel, expiry, auth, isolation, schema, pagination.
SUBSET = (
    "skip_finalizing",
    "timestamps_out_of_order",
    "counts_disagree_with_files",
    "rewrite_custom_id",
    "accept_non_jsonl_upload",
    "accept_duplicate_custom_id",
    "error_envelope_missing_code",
    "cancel_loses_results",
    "expiry_loses_unfinished",
    "auth_not_enforced",
    "cross_key_visibility",
    "status_outside_enum",
    "list_ignores_after",
)


@pytest.fixture(scope="module")
def scored() -> tuple[MutantResult, dict[str, MutantResult]]:
    baseline, results = run_mutants(SUBSET, jobs=2)
    return baseline, {r.mutation or "": r for r in results}


def test_subset_is_in_the_catalogue() -> None:
    """The subset names real mutations, and the catalogue is at least 24 strong."""
    assert set(SUBSET) <= set(MUTATIONS)
    assert len(MUTATIONS) >= 24


def test_unmutated_emulator_is_conformant(scored: tuple[MutantResult, dict[str, MutantResult]]) -> None:
    """Without mutations the suite passes (exit 0, no failing check)."""
    baseline, _ = scored
    assert baseline.exit_code == 0 and not baseline.catchers, baseline.output_tail
    assert baseline.tests_run > 100


@pytest.mark.parametrize("mutation", SUBSET)
def test_suite_catches_mutation(mutation: str, scored: tuple[MutantResult, dict[str, MutantResult]]) -> None:
    """With the mutation on, the suite exits 1 and names the check that caught it."""
    result = scored[1][mutation]
    assert result.caught, f"{mutation} survived (exit {result.exit_code}):\n{result.output_tail}"
    assert all(c.startswith("conformance/suite/") for c in result.catchers), result.catchers


def test_score_table_names_catchers(scored: tuple[MutantResult, dict[str, MutantResult]]) -> None:
    """The printed table gives the score and each mutation's catching test."""
    baseline, results = scored
    table = format_table(baseline, list(results.values()))
    assert f"Mutation score: {len(SUBSET)}/{len(SUBSET)} caught (100%)." in table
    for name, result in results.items():
        assert f"`{name}`" in table and result.catchers[0].removeprefix("conformance/suite/") in table


def test_unknown_mutation_is_refused() -> None:
    """An unknown mutation name is an error naming the known ones, not a silent pass."""
    with pytest.raises(ValueError, match="unknown mutations"):
        run_mutants(["no_such_mutation"])
    result = run_mutant("no_such_mutation")
    assert result.exit_code == 2 and not result.caught


# ScaiGrid's own dialect: its wire, its one results file, its quota and its webhooks.
SCAIGRID_SUBSET = ("result_status_word", "results_url_missing", "quota_not_enforced", "webhook_sent_twice")


@pytest.mark.parametrize("mutation", SCAIGRID_SUBSET)
def test_suite_catches_scaigrid_mutation(mutation: str) -> None:
    """Against the scaigrid emulator with one of its own mutations on, the suite fails."""
    result = run_mutant(mutation, profile="scaigrid")
    assert result.caught, f"{mutation} survived (exit {result.exit_code}):\n{result.output_tail}"
