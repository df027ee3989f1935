"""Named mutations: deliberate contract violations, off by default.

Each one is a bug that real implementations have shipped. The conformance suite must fail
on every one of them (that is how the suite proves its teeth). Switch them on from Python
(`Emulator.mutations.enable("drop_output_line")`) or `PUT /_emulator/mutations`.
"""

from __future__ import annotations

import threading

__all__ = ["CATALOGUE", "Mutations"]

CATALOGUE: dict[str, str] = {
    # lifecycle
    "status_goes_backwards": "a finished batch reports in_progress again on a later poll",
    "leave_terminal_state": "a completed batch moves to cancelling when cancelled (cancel accepted)",
    "skip_finalizing": "in_progress jumps straight to completed although the profile requires finalizing",
    "completed_without_output_id": "completed is reported with output_file_id null although lines succeeded",
    "timestamp_changes": "in_progress_at is re-stamped on every poll",
    "timestamps_out_of_order": "completed_at is stamped before finalizing_at",
    "wrong_expires_at": "expires_at is not created_at + the completion window",
    # counts
    "counts_dont_add_up": "request_counts.completed + failed exceeds total",
    "counts_decrease": "request_counts.completed drops back to 0 after finishing",
    "counts_disagree_with_files": "request_counts.failed is reported as 0 although lines failed",
    # records
    "drop_output_line": "one successful line is missing from the output file",
    "duplicate_output_line": "one successful line is written twice",
    "rewrite_custom_id": "one output line carries a custom_id that was never in the input",
    "http_error_in_output_file": "lines that got an HTTP error are written to the output file",
    "success_in_error_file": "one successful line is written to the error file",
    "empty_output_file_when_none_succeeded": "output_file_id points at an empty file when nothing succeeded",
    "missing_error_file": "error_file_id stays null although lines failed",
    "output_line_bad_shape": "output lines have response.status_code as a string",
    # validation
    "accept_duplicate_custom_id": "duplicate custom_ids pass validation",
    "accept_wrong_url": "a line whose url does not match the endpoint passes validation",
    "accept_too_many_requests": "more requests than the limit pass validation",
    "accept_non_jsonl_upload": "a non-JSONL batch upload is accepted",
    "validation_error_without_line": "validation errors omit the line number",
    # errors and envelopes
    "error_envelope_missing_type": "error envelopes lack the 'type' key",
    "error_envelope_missing_code": "error envelopes lack the 'code' key",
    "wrong_error_status": "a bad create request is answered 422 instead of 400",
    "not_found_returns_200": "an unknown batch id is answered 200 with an empty object",
    "cancel_completed_accepted": "cancel of a completed batch is answered 200",
    # expiry and cancel
    "expiry_drops_finished_lines": "an expired batch writes no output file, losing finished lines",
    "expiry_loses_unfinished": "unfinished lines of an expired batch are written nowhere",
    "cancel_loses_results": "a cancelled batch loses the results of lines finished before the cancel",
    # auth and isolation
    "auth_not_enforced": "requests without a valid key are served",
    "cross_key_visibility": "one key sees and reads another key's batches and files",
    # schema
    "batch_field_wrong_type": "created_at is sent as a string",
    "status_outside_enum": "a running batch reports status 'running'",
    "list_ignores_after": "list ignores the 'after' cursor",
    "list_missing_has_more": "list responses omit has_more",
}


class Mutations:
    """The set of active mutations."""

    def __init__(self) -> None:
        self._on: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def on(self, name: str) -> bool:
        """Whether mutation `name` is active (cheap: called on hot paths)."""
        return name in self._on

    def enable(self, *names: str) -> None:
        """Switch mutations on; unknown names raise ValueError listing the known ones."""
        self.set(self._on | set(names))

    def disable(self, *names: str) -> None:
        """Switch mutations off."""
        self.set(self._on - set(names))

    def set(self, names: set[str] | frozenset[str] | list[str]) -> None:
        """Make exactly `names` active."""
        unknown = sorted(set(names) - set(CATALOGUE))
        if unknown:
            raise ValueError(f"unknown mutations {unknown}; known: {sorted(CATALOGUE)}")
        with self._lock:
            self._on = frozenset(names)

    def clear(self) -> None:
        """Switch every mutation off."""
        self.set(frozenset())

    @property
    def enabled(self) -> list[str]:
        """The active mutations, sorted."""
        return sorted(self._on)
