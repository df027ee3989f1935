"""The OpenAI dialect: input uploaded through the Files API, results in an output file
(successes) and an error file (failures), counts in `request_counts`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._contract import SPEC_COUNTS, SPEC_ENVELOPE, SPEC_RECORDS, check_schema, violation
from ..client import ApiClient, ApiResponse
from ._base import (
    BatchParams,
    BatchView,
    Dialect,
    Input,
    RefRule,
    ResultRecord,
    Results,
    ResultsUnavailable,
    Staged,
    SubmitError,
    default_endpoint,
    parse_records,
)

__all__ = ["OpenAIDialect"]

_OUTPUT = "output_file_id"
_ERROR = "error_file_id"


class OpenAIDialect(Dialect):
    """OpenAI's Files + Batches dialect (OpenAI, Azure OpenAI, OVHcloud, gateways).

    Input: uploaded with the profile's batch purpose, referenced as `input_file_id` (a URL
    input goes there too; `ObjectStorageDialect` serves the object-storage profiles).
    Results: `output_file_id` holds the successes (`response.status_code` 2xx, `error`
    null), `error_file_id` the failures (an HTTP error status, or `response` null with
    `error {code, message}`).
    """

    name: ClassVar[str] = "openai"
    places: ClassVar[tuple[str, str]] = ("the output file", "the error file")
    success_refs: ClassVar[tuple[str, ...]] = ("output_file_id",)
    errors_field: ClassVar[str] = "errors.data"
    records_source: ClassVar[str] = SPEC_RECORDS
    envelope_source: ClassVar[str] = SPEC_ENVELOPE
    counts_source: ClassVar[str | None] = SPEC_COUNTS

    def create_fields(self) -> Mapping[str, str]:
        """input_file_id, completion_window, endpoint, metadata (no per-batch webhook field)."""
        return {
            "input": "input_file_id",
            "window": "completion_window",
            "endpoint": "endpoint",
            "metadata": "metadata",
        }

    def stage(self, api: ApiClient, content: bytes, *, filename: str | None = None) -> Staged:
        """Upload `content` with the profile's batch purpose; the file id is the input."""
        profile = self.profile
        if not profile.files.api:
            raise SubmitError(
                f"profile {profile.name!r} has no Files API (input: "
                f"{profile.storage.input_reference if profile.storage else 'unknown'}); this adapter uploads through "
                "the Files API only (object storage: ObjectStorageDialect, chosen by output.location)"
            )
        name = filename or f"batchconf-input{profile.files.batch_file_extension}"
        response = api.upload_file(content, name, profile.files.batch_purpose)
        file_id = response.json.get("id") if response.status == 200 and isinstance(response.json, dict) else None
        return Staged(Input.of_file(file_id) if isinstance(file_id, str) else None, response)

    def create_body(self, source: Input, params: BatchParams | None = None) -> dict[str, Any]:
        """`{input_file_id, endpoint, completion_window, **extra, metadata?}`."""
        params = params or BatchParams()
        reference = source.file_id if source.file_id is not None else source.url
        if reference is None:
            raise ValueError("the OpenAI dialect references its input by file id or URL: stage the content first")
        body: dict[str, Any] = {
            "input_file_id": reference,
            "endpoint": params.endpoint or default_endpoint(self.profile),
            "completion_window": params.window or self.default_window(),
            **params.extra,
        }
        if params.metadata is not None:
            body["metadata"] = dict(params.metadata)
        return body

    def input_of(self, state: Mapping[str, Any]) -> Input | None:
        """The created batch's `input_file_id`."""
        file_id = state.get("input_file_id")
        return Input.of_file(file_id) if isinstance(file_id, str) else None

    def missing_input(self, seed: int, api: ApiClient | None = None) -> Input:
        """A file id nobody uploaded."""
        return Input.of_file(f"{self.profile.ids.file}batchconf-missing-{seed}")

    def view(self, state: Mapping[str, Any]) -> BatchView:
        counts = state.get("request_counts") or {}
        errors = state.get("errors")
        data = errors.get("data") if isinstance(errors, Mapping) else None
        return BatchView(
            id=state.get("id"),
            status=state.get("status"),
            role=self.role(state),
            total=int(counts.get("total", 0)),
            completed=int(counts.get("completed", 0)),
            failed=int(counts.get("failed", 0)),
            counts_body={"request_counts": state.get("request_counts")},
            refs={_OUTPUT: state.get(_OUTPUT), _ERROR: state.get(_ERROR)},
            errors=data if isinstance(data, list) else None,
            created_at=state.get("created_at"),
            expires_at=state.get("expires_at"),
            window=_str_or_none(state.get("completion_window")),
            endpoint=_str_or_none(state.get("endpoint")),
            raw=state,
        )

    def ref_rules(self, view: BatchView, *, started: bool) -> list[RefRule]:
        """An output file exactly when a line succeeded, an error file exactly when one failed,
        unless the profile says an empty file is created (then: at completion, always); a
        failed batch's error file where the profile says it has one."""
        out = self.profile.output
        rules: list[RefRule] = []
        for ref_field, count, empty_ok, key in (
            (_OUTPUT, view.completed, out.empty_output_file, "output.empty_output_file"),
            (_ERROR, view.failed, out.empty_error_file, "output.empty_error_file"),
        ):
            status = view.status
            if ref_field == _ERROR and view.role == "failed" and out.failed_error_file:
                rules.append(
                    RefRule(
                        ref_field,
                        True,
                        "failed-error-file",
                        f"status {status!r}: the profile says a failed batch names an error file with its errors",
                        "a file id",
                        key="output.failed_error_file",
                    )
                )
                continue
            if count > 0:
                rules.append(
                    RefRule(
                        ref_field,
                        True,
                        "file-ids",
                        f"status {status!r} with {count} lines for {ref_field}",
                        "a file id",
                        source=SPEC_COUNTS,
                    )
                )
            elif not empty_ok:
                rules.append(
                    RefRule(
                        ref_field,
                        False,
                        "file-ids-empty",
                        f"status {status!r}: no line belongs in it, so {ref_field} must stay null",
                        key=key,
                    )
                )
            elif view.role == "completed":
                rules.append(
                    RefRule(
                        ref_field,
                        True,
                        "file-ids-empty",
                        f"status {status!r}: the profile says an empty file is still created for {ref_field}",
                        "a file id (of an empty file)",
                        key=key,
                    )
                )
            else:
                rules.append(RefRule(ref_field, None, "file-ids-empty", "an empty file may or may not exist", key=key))
        return rules

    def stable_fields(self) -> tuple[str, ...]:
        return (*self.profile.lifecycle.timestamps.values(), "request_counts", _OUTPUT, _ERROR)

    def download(self, api: ApiClient, ref_field: str, ref: str) -> ApiResponse:
        """The file's content through the Files API."""
        location = self.profile.output.location
        if location != "files_api":
            raise ResultsUnavailable(
                f"profile {self.profile.name!r} delivers results via {location!r}; this adapter fetches Files API "
                "results only (object storage: ObjectStorageDialect, chosen by output.location)"
            )
        return api.file_content(ref)

    def parse_results(self, raw: Mapping[str, bytes | None]) -> Results:
        output, out_problems = parse_records(raw.get(_OUTPUT), "output file")
        errors, err_problems = parse_records(raw.get(_ERROR), "error file")
        return Results(
            successes=tuple(output),
            failures=tuple(errors),
            records=(*output, *errors),
            raw=dict(raw),
            problems=(*out_problems, *err_problems),
        )

    def record(self, line: Mapping[str, Any]) -> ResultRecord:
        response = line.get("response")
        status = response.get("status_code") if isinstance(response, Mapping) else None
        error = line.get("error")
        code = error.get("code") if isinstance(error, Mapping) else None
        http_status = status if isinstance(status, int) and not isinstance(status, bool) else None
        return ResultRecord(
            custom_id=_str_or_none(line.get("custom_id")),
            ok=http_status is not None and 200 <= http_status < 300 and error is None,
            http=response is not None,
            http_status=http_status,
            code=code if isinstance(code, str) else None,
            raw=line,
        )

    def check_records(self, successes: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]]) -> None:
        """Output lines are successes and error lines failures, each valid against its schema."""
        profile = self.profile
        for number, line in enumerate(successes, start=1):
            response = line.get("response") if isinstance(line, Mapping) else None
            status = response.get("status_code") if isinstance(response, Mapping) else None
            if not isinstance(status, int) or not 200 <= status < 300 or line.get("error") is not None:
                raise violation(
                    "records-placement",
                    f"output file record #{number} is not a success (output order is not assumed: # is file order)",
                    received=line,
                    expected="response.status_code 2xx and error null; failures belong in the error file",
                    source=SPEC_RECORDS,
                )
            check_schema(profile, "output_line", line, f"output file record #{number}")
        for number, line in enumerate(failures, start=1):
            response = line.get("response") if isinstance(line, Mapping) else None
            status = response.get("status_code") if isinstance(response, Mapping) else None
            if isinstance(status, int) and 200 <= status < 300:
                raise violation(
                    "records-placement",
                    f"error file record #{number} is a success (HTTP {status})",
                    received=line,
                    expected="an HTTP status >= 400, or response null with error {code, message}",
                    source=SPEC_RECORDS,
                )
            check_schema(profile, "error_line", line, f"error file record #{number}")

    def http_error_code(self, status: int) -> str | None:
        """None: an HTTP failure carries the status in `response`, and `error` stays null."""
        return None

    def http_failure_example(self, status: int) -> Mapping[str, Any]:
        return {"response": {"status_code": status, "body": {"error": "..."}}, "error": None}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
