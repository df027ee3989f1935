"""Named violations of the OpenAI wire: batch bodies, list pages, error envelopes, result lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from schemas import Profile

from ..._clock import Clock
from ..._mutations import Mutation, constant
from ...model import seams
from ...model.records import BatchRecord
from .._handlers import status_goes_backwards
from .serialize import WIRE_BATCH, WIRE_ERROR, WIRE_LIST

__all__ = ["openai_mutations"]

Wire = dict[str, Any]


def _status_outside_enum(out: Wire, *, batch: BatchRecord, **_: Any) -> Wire:
    if batch.role == "in_progress":
        out["status"] = "running"
    return out


def _timestamp_changes(out: Wire, *, batch: BatchRecord, clock: Clock, **_: Any) -> Wire:
    if out.get("in_progress_at") is not None:
        polls = batch.extra.setdefault("polls", 0)
        out["in_progress_at"] = int(clock.now()) + len(batch.history) + polls
        batch.extra["polls"] = polls + 1
    return out


def _timestamps_out_of_order(out: Wire, **_: Any) -> Wire:
    if out.get("completed_at") is not None and out.get("finalizing_at") is not None:
        out["completed_at"] = out["finalizing_at"] - 1
    return out


def _counts(change: Callable[[dict[str, int]], None], terminal_only: bool = True) -> Callable[..., Wire]:
    def bend(out: Wire, *, batch: BatchRecord, **_: Any) -> Wire:
        if batch.terminal or not terminal_only:
            counts = dict(out["request_counts"])
            change(counts)
            out["request_counts"] = counts
        return out

    return bend


def _wrong_expires_at(out: Wire, **_: Any) -> Wire:
    if out.get("expires_at") is not None:
        out["expires_at"] += 3600
    return out


def _created_at_as_string(out: Wire, **_: Any) -> Wire:
    out["created_at"] = str(out.get("created_at"))
    return out


def _without_has_more(out: Wire, **_: Any) -> Wire:
    out.pop("has_more", None)
    return out


def _envelope_without(key: str) -> Callable[..., seams.WireError]:
    def bend(err: seams.WireError, **_: Any) -> seams.WireError:
        inner = err.body.get("error")
        if isinstance(inner, dict):
            err.body = {"error": {k: v for k, v in inner.items() if k != key}}
        return err

    return bend


def _wrong_error_status(err: seams.WireError, **_: Any) -> seams.WireError:
    if err.status == 400:
        err.status = 422
    return err


def _not_found_is_200(err: seams.WireError, **_: Any) -> seams.WireError:
    if err.name == "batch_not_found":
        err.status, err.body = 200, {}
    return err


def _status_code_as_string(lines: seams.ResultLines, **_: Any) -> seams.ResultLines:
    bent = []
    for raw in lines.output:
        line = orjson.loads(raw)
        if isinstance(line.get("response"), dict):
            line["response"]["status_code"] = str(line["response"]["status_code"])
        bent.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    lines.output = bent
    return lines


def _inc_completed(c: dict[str, int]) -> None:
    c["completed"] += 1


def _zero_completed(c: dict[str, int]) -> None:
    c["completed"] = 0


def _zero_failed(c: dict[str, int]) -> None:
    c["failed"] = 0


def openai_mutations(profile: Profile) -> list[Mutation]:
    """The OpenAI wire's mutations that `profile` can show."""
    life = profile.lifecycle
    out = [
        status_goes_backwards(WIRE_BATCH),
        Mutation("timestamp_changes", "in_progress_at is re-stamped on every poll", WIRE_BATCH, _timestamp_changes),
        Mutation(
            "wrong_expires_at", "expires_at is not created_at + the completion window", WIRE_BATCH, _wrong_expires_at
        ),
        Mutation(
            "counts_dont_add_up",
            "request_counts.completed + failed exceeds total",
            WIRE_BATCH,
            _counts(_inc_completed),
        ),
        Mutation(
            "counts_decrease",
            "request_counts.completed drops back to 0 after finishing",
            WIRE_BATCH,
            _counts(_zero_completed),
        ),
        Mutation(
            "counts_disagree_with_files",
            "request_counts.failed is reported as 0 although lines failed",
            WIRE_BATCH,
            _counts(_zero_failed, terminal_only=False),
        ),
        Mutation(
            "output_line_bad_shape",
            "output lines have response.status_code as a string",
            seams.RESULTS_LINES,
            _status_code_as_string,
        ),
        Mutation(
            "error_envelope_missing_type", "error envelopes lack the 'type' key", WIRE_ERROR, _envelope_without("type")
        ),
        Mutation(
            "error_envelope_missing_code", "error envelopes lack the 'code' key", WIRE_ERROR, _envelope_without("code")
        ),
        Mutation(
            "wrong_error_status", "a bad create request is answered 422 instead of 400", WIRE_ERROR, _wrong_error_status
        ),
        Mutation(
            "not_found_returns_200",
            "an unknown batch id is answered 200 with an empty object",
            WIRE_ERROR,
            _not_found_is_200,
        ),
        Mutation("batch_field_wrong_type", "created_at is sent as a string", WIRE_BATCH, _created_at_as_string),
        Mutation("status_outside_enum", "a running batch reports status 'running'", WIRE_BATCH, _status_outside_enum),
    ]
    if life.timestamps.get(life.status("completed") or "") and life.status("finalizing"):
        out.append(
            Mutation(
                "timestamps_out_of_order",
                "completed_at is stamped before finalizing_at",
                WIRE_BATCH,
                _timestamps_out_of_order,
            )
        )
    if profile.has("pagination"):
        out.append(Mutation("list_missing_has_more", "list responses omit has_more", WIRE_LIST, _without_has_more))
    return out + provider_mutations(profile)


# -- Gateways and OpenAI-compatible providers ---------------------------------------------------
# Each acts where the profile states the fact it breaks, so a profile without the fact (OpenAI
# itself) offers none of them.


def _no_error_file_when_failed(plan: seams.StorePlan, *, batch: BatchRecord | None = None, **_: Any) -> seams.StorePlan:
    if batch is not None and batch.errors is not None:
        plan.write_errors = False
    return plan


def _accept_too_few(entry: dict[str, Any] | None, **_: Any) -> dict[str, Any] | None:
    return None if entry is not None and entry.get("name") == "too_few_requests" else entry


def provider_mutations(profile: Profile) -> list[Mutation]:
    """Violations of what a gateway's or an OpenAI-compatible provider's own documents add to
    OpenAI's contract: a required provider header, statuses a backend never shows, a failed
    batch's error file, a minimum batch size, Azure's pre-v1 routes and api-key header, a
    model catalogue, a default completion window."""
    http = profile.http
    life = profile.lifecycle
    out: list[Mutation] = []
    if http.required_headers:
        names = ", ".join(http.required_headers)
        out.append(
            Mutation(
                "provider_header_not_required",
                f"requests without the {names} header are served (the gateway cannot know where to route them)",
                seams.HTTP_REQUIRED_HEADERS,
                constant(()),
            )
        )
    if "finalizing" in life.never_entered:
        out.append(
            Mutation(
                "finalizing_shown_behind_backend",
                "a batch passes through finalizing, which this backend never shows (lifecycle.never_entered)",
                seams.AFTER_WORK,
                constant("finalizing"),
            )
        )
    if profile.output.failed_error_file:
        out.append(
            Mutation(
                "failed_batch_without_error_file",
                "a failed batch names no error file with its errors (error_file_id stays null)",
                seams.RESULTS_STORE,
                _no_error_file_when_failed,
            )
        )
    if profile.limits.min_requests > 1 and "too_few_requests" in profile.validation:
        out.append(
            Mutation(
                "accept_too_few_requests",
                f"a file of fewer than {profile.limits.min_requests} requests passes validation",
                seams.VALIDATION_ERROR,
                _accept_too_few,
            )
        )
    if http.base_path_aliases and http.alias_required_query:
        out.append(
            Mutation(
                "api_version_form_refused",
                f"the {', '.join(http.base_path_aliases)} routes with ?{http.alias_required_query}= answer 404",
                seams.HTTP_ALIAS_SERVED,
                constant(False),
            )
        )
    if http.auth_header.lower() != "authorization":
        out.append(
            Mutation(
                "auth_header_ignored",
                f"the {http.auth_header} header is not read: only Authorization: Bearer authenticates",
                seams.ACCESS_AUTH_HEADER,
                constant(("Authorization", "Bearer")),
            )
        )
    if profile.models.catalogue:
        out.append(
            Mutation(
                "model_catalogue_ignored",
                "a line naming a model outside the catalogue is served as if the model existed",
                seams.BACKEND_CATALOGUE,
                constant(None),
            )
        )
    default = profile.batches.default_window
    other = next((w for w in profile.windows if w != default), None)
    if default and other and "completion_window" not in profile.batches.create_required:
        out.append(
            Mutation(
                "wrong_default_window",
                f"a create without completion_window gets {other} instead of the default {default}",
                seams.CREATE_DEFAULT_WINDOW,
                constant(other),
            )
        )
    return out
