"""The model layer's named mutations: violations of access, validation, lifecycle and results.

Every dialect gets those its profile can show (a mutation of the error file needs a dialect
with one); wire mutations live with their dialect. See `emulator._mutations`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from schemas import Profile

from .._mutations import Mutation, constant
from . import seams
from .records import BatchRecord
from .results import keys_beside
from .seams import ResultLines, StorePlan

__all__ = ["model_mutations"]


def _accept(name: str) -> Callable[..., Any]:
    """Validation lets the error `name` pass (the line is accepted)."""
    return lambda entry, **_: None if entry is not None and entry.get("name") == name else entry


def _without_line(entry: dict[str, Any] | None, **_: Any) -> dict[str, Any] | None:
    return None if entry is None else {**entry, "line": None}


def _drop_first(lines: ResultLines, **_: Any) -> ResultLines:
    lines.output = lines.output[1:]
    return lines


def _duplicate_first(lines: ResultLines, **_: Any) -> ResultLines:
    lines.output = lines.output[:1] + lines.output
    return lines


def _rewrite_custom_id(lines: ResultLines, **_: Any) -> ResultLines:
    if lines.output:
        first = orjson.loads(lines.output[0])
        first["custom_id"] = "batchconf-rewritten-" + str(first.get("custom_id"))
        lines.output[0] = orjson.dumps(first, option=orjson.OPT_APPEND_NEWLINE)
    return lines


def _http_errors_in_output(lines: ResultLines, **_: Any) -> ResultLines:
    # Records that got an HTTP answer (a `response`) move to the output file; the counts
    # follow the files, as an implementation that routes by "has a response" would report.
    moved = [line for line in lines.errors if orjson.loads(line).get("response") is not None]
    if moved:
        keep = [line for line in lines.errors if orjson.loads(line).get("response") is None]
        lines.output = lines.output + moved
        lines.errors = keep
        lines.completed += len(moved)
        lines.failed -= len(moved)
    return lines


def _without_request_id(line: bytes) -> bytes:
    record = orjson.loads(line)
    response = record.get("response")
    if not isinstance(response, dict) or "request_id" not in response:
        return line
    del response["request_id"]
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def _drop_request_ids(lines: ResultLines, **_: Any) -> ResultLines:
    lines.output = [_without_request_id(line) for line in lines.output]
    lines.errors = [_without_request_id(line) for line in lines.errors]
    return lines


def _success_in_errors(lines: ResultLines, **_: Any) -> ResultLines:
    if lines.output:
        lines.errors = [lines.output[0], *lines.errors]
        lines.output = lines.output[1:]
        lines.completed -= 1
        lines.failed += 1
    return lines


def _expiry_drops_finished(lines: ResultLines, **_: Any) -> ResultLines:
    if lines.ending == "expired":
        lines.output = []
    return lines


def _cancel_loses_results(lines: ResultLines, **_: Any) -> ResultLines:
    if lines.ending == "cancelled":
        lines.output = []
        lines.completed = 0
    return lines


def _expiry_loses_unfinished(policy: str, *, ending: str, **_: Any) -> str:
    return "drop" if ending == "expired" else policy


def _plan(**changes: bool) -> Callable[..., StorePlan]:
    def bend(plan: StorePlan, **_: Any) -> StorePlan:
        for name, value in changes.items():
            setattr(plan, name, value)
        return plan

    return bend


def _alternative_naming(templates: tuple[str, str]) -> Callable[..., tuple[str, str]]:
    """Results named with the alternative templates (Scaleway's API reference: `-output`)."""

    def bend(keys: tuple[str, str], *, batch: BatchRecord, **_: Any) -> tuple[str, str]:
        source = batch.plan.source if batch.plan is not None else None
        return keys if source is None else keys_beside(templates, source.key, batch.id)

    return bend


def _outside_input_folder(keys: tuple[str, str], **_: Any) -> tuple[str, str]:
    """Results at the bucket's root when the input sits in a folder (else in `results/`)."""
    out, err = keys
    moved = [key.rpartition("/")[2] if "/" in key else f"results/{key}" for key in (out, err)]
    return moved[0], moved[1]


def model_mutations(profile: Profile) -> list[Mutation]:
    """The model-layer mutations that `profile` can show, in catalogue order."""
    two_files = profile.output.location == "files_api"
    life = profile.lifecycle
    out: list[Mutation] = []

    def add(name: str, description: str, point: str, apply: Callable[..., Any], when: bool = True) -> None:
        if when:
            out.append(Mutation(name, description, point, apply))

    # lifecycle
    add(
        "leave_terminal_state",
        "a completed batch moves to cancelling when cancelled (cancel accepted)",
        seams.CANCEL_REFUSED,
        constant("force:cancelling"),
        life.status("cancelling") is not None,
    )
    add(
        "skip_finalizing",
        "in_progress jumps straight to completed although the profile requires finalizing",
        seams.AFTER_WORK,
        constant("completed"),
        life.status("finalizing") is not None,
    )
    add(
        "completed_without_output_id",
        "completed is reported with output_file_id null although lines succeeded",
        seams.RESULTS_STORE,
        _plan(publish_output=False),
        two_files,
    )
    add(
        "cancel_completed_accepted",
        "cancel of a completed batch is answered 200",
        seams.CANCEL_REFUSED,
        constant("accept"),
        profile.has("cancel"),
    )
    # records
    add("drop_output_line", "one successful line is missing from the results", seams.RESULTS_LINES, _drop_first)
    add("duplicate_output_line", "one successful line is written twice", seams.RESULTS_LINES, _duplicate_first)
    add(
        "rewrite_custom_id",
        "one result line carries a custom_id that was never in the input",
        seams.RESULTS_LINES,
        _rewrite_custom_id,
    )
    add(
        "http_error_in_output_file",
        "lines that got an HTTP error are written to the output file",
        seams.RESULTS_LINES,
        _http_errors_in_output,
        two_files,
    )
    add(
        "request_id_missing",
        "result records that got a response omit response.request_id although the profile requires it",
        seams.RESULTS_LINES,
        _drop_request_ids,
        profile.output.request_id_required,
    )
    add(
        "success_in_error_file",
        "one successful line is written to the error file",
        seams.RESULTS_LINES,
        _success_in_errors,
        two_files,
    )
    add(
        "empty_output_file_when_none_succeeded",
        "output_file_id points at an empty file when nothing succeeded",
        seams.RESULTS_STORE,
        _plan(write_output=True),
        two_files and not profile.output.empty_output_file,
    )
    add(
        "missing_error_file",
        "error_file_id stays null although lines failed",
        seams.RESULTS_STORE,
        _plan(write_errors=False),
        two_files,
    )
    # validation
    add(
        "accept_duplicate_custom_id",
        "duplicate custom_ids pass validation",
        seams.VALIDATION_ERROR,
        _accept("duplicate_custom_id"),
        profile.line_rules.custom_id_unique,
    )
    add(
        "accept_wrong_url",
        "a line whose url does not match the endpoint passes validation",
        seams.VALIDATION_ERROR,
        _accept("invalid_url"),
        not profile.line_rules.mixed_endpoints,
    )
    add(
        "accept_too_many_requests",
        "more requests than the limit pass validation",
        seams.VALIDATION_ERROR,
        _accept("too_many_requests"),
        two_files and profile.limits.max_requests > 0,
    )
    add(
        "accept_non_jsonl_upload",
        "a non-JSONL batch upload is accepted",
        seams.UPLOAD_JSONL_CHECK,
        constant(False),
        # Only where an upload is checked at all (by its name or its first line).
        profile.files.api and (profile.files.require_jsonl_extension or profile.files.check_first_line_is_json),
    )
    add(
        "validation_error_without_line",
        "validation errors omit the line number",
        seams.VALIDATION_ERROR,
        _without_line,
    )
    # expiry and cancel
    add(
        "expiry_drops_finished_lines",
        "an expired batch writes no output, losing finished lines",
        seams.RESULTS_LINES,
        _expiry_drops_finished,
        profile.has("expiry") and two_files,
    )
    add(
        "expiry_loses_unfinished",
        "unfinished lines of a batch whose window ended are written nowhere",
        seams.RESULTS_UNFINISHED,
        _expiry_loses_unfinished,
        profile.has("expiry") and profile.output.unfinished_on_expiry == "error_file",
    )
    add(
        "cancel_loses_results",
        "a cancelled batch loses the results of lines finished before the cancel",
        seams.RESULTS_LINES,
        _cancel_loses_results,
        profile.has("cancel"),
    )
    # auth and isolation
    add("auth_not_enforced", "requests without a valid key are served", seams.ACCESS_REQUIRE_KEY, constant(False))
    add(
        "cross_key_visibility",
        "one key sees and reads another key's batches and files",
        seams.ACCESS_ISOLATE,
        constant(False),
    )
    add(
        "list_ignores_after",
        "list ignores the 'after' cursor",
        seams.LIST_AFTER,
        constant(None),
        profile.has("pagination"),
    )
    # object storage: input by object URL, results beside it in the user's bucket
    storage = profile.storage if profile.output.location == "object_storage" else None
    if storage is not None:
        alternative = (
            (storage.alternative_output_keys[0], storage.alternative_error_keys[0])
            if storage.alternative_output_keys and storage.alternative_error_keys
            else None
        )
        add(
            "output_naming_hyphen",
            "results are named with the documents' alternative naming (-output) where the profile declares the "
            "primary one (_output)",
            seams.RESULTS_KEYS,
            _alternative_naming(alternative) if alternative is not None else constant(None),
            alternative is not None,
        )
        add(
            "results_outside_input_folder",
            "the output and error objects are written outside the input's folder",
            seams.RESULTS_KEYS,
            _outside_input_folder,
        )
        add(
            "presigned_url_accepted",
            "a pre-signed input URL (with query parameters) is accepted at create",
            seams.INPUT_PRESIGNED,
            constant(True),
            not storage.presigned_urls,
        )
        add(
            "bucket_policy_ignored",
            "a bucket policy that does not allow the batch principal is ignored: the batch runs",
            seams.INPUT_POLICY_DENIES,
            constant([]),
            bool(storage.batch_principal and storage.principal_actions),
        )
        add(
            "mixed_models_accepted",
            "lines naming another model than the first pass validation",
            seams.VALIDATION_ERROR,
            _accept("mixed_models"),
            profile.line_rules.one_model_per_file,
        )
    return out
