"""The ScaiGrid native dialect: input inline (`input_file_base64`) or by URL
(`input_file_url`), counts as `total_count`/`completed_count`/`failed_count`, and one
results file behind `results_url` holding both outcomes, told apart by each record's
`status` word ("ok" with `response`, "error" with `error {code, message}`)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from .._contract import check_schema, violation
from ..client import ApiClient, ApiResponse
from ._base import (
    BatchParams,
    BatchView,
    Dialect,
    Input,
    RefRule,
    ResultRecord,
    Results,
    Staged,
    parse_records,
)

__all__ = ["ScaiGridDialect", "chunked_base64"]

_RESULTS = "results_url"
_COUNTS = ("total_count", "completed_count", "failed_count")
_HTTP_CODE = re.compile(r"http_(\d{3})")
#: The status words of result records ([scaigrid] Getting results).
OK, ERROR = "ok", "error"
_SOURCE = "[scaigrid] Getting results: {custom_id, status: 'ok', response} / {custom_id, status: 'error', error}"


class ScaiGridDialect(Dialect):
    """ScaiGrid's `/v1/inference/batch` API.

    A batch names no endpoint (each line carries its url); its window is
    `endpoint_completion_window`; a per-batch webhook is subscribed with the profile's
    `webhooks.subscribe_field`. `results_url` is set exactly when the batch has results
    (completed, or cancelled after processing started) and is fetched with the same key.
    """

    name: ClassVar[str] = "scaigrid"
    places: ClassVar[tuple[str, str]] = ("the results file (status ok)", "the results file (status error)")
    success_refs: ClassVar[tuple[str, ...]] = ("results_url",)
    errors_field: ClassVar[str] = "errors"
    records_source: ClassVar[str] = _SOURCE
    envelope_source: ClassVar[str] = "the dialect's error envelope {error: {code, message, param}} (scaigrid/error)"
    #: [output]: one results file; completed_count = ok records, failed_count = error records.
    counts_key: ClassVar[str | None] = "output"

    def create_fields(self) -> Mapping[str, str]:
        """input_file_base64, input_file_url, endpoint_completion_window and the webhook field."""
        fields = {
            "input": "input_file_base64",
            "input_url": "input_file_url",
            "window": "endpoint_completion_window",
        }
        webhook = self._webhook_field()
        if webhook:
            fields["webhook_url"] = webhook
        return fields

    def _webhook_field(self) -> str | None:
        rules = self.profile.webhooks
        return rules.subscribe_field if rules is not None and rules.subscribe_field else None

    def stage(self, api: ApiClient, content: bytes, *, filename: str | None = None) -> Staged:
        """Nothing to upload: the content goes inline."""
        return Staged(Input.of_content(content))

    def create_body(self, source: Input, params: BatchParams | None = None) -> dict[str, Any]:
        """`{input_file_base64 | input_file_url, endpoint_completion_window, webhook?, **extra}`;
        a stored file id becomes `scaigrid://file/{id}`."""
        params = params or BatchParams()
        body = self._head(source)
        body.update(self._tail(params))
        return body

    def _head(self, source: Input) -> dict[str, Any]:
        if source.content is not None:
            return {"input_file_base64": base64.b64encode(source.content).decode("ascii")}
        if source.url is not None:
            return {"input_file_url": source.url}
        return {"input_file_url": f"scaigrid://file/{source.file_id}"}

    def _tail(self, params: BatchParams) -> dict[str, Any]:
        body: dict[str, Any] = {"endpoint_completion_window": params.window or self.default_window()}
        if params.webhook_url is not None:
            webhook = self._webhook_field()
            if webhook is None:
                raise ValueError(f"profile {self.profile.name!r} names no per-batch webhook field (webhooks)")
            body[webhook] = params.webhook_url
        body.update(params.extra)
        return body

    def create_body_stream(self, content: Iterable[bytes], params: BatchParams | None = None) -> Iterator[bytes]:
        """The create body of inline `content` given chunk by chunk, as JSON bytes produced
        chunk by chunk: neither the input nor its base64 is ever held whole."""
        rest = json.dumps(self._tail(params or BatchParams()), separators=(",", ":"))
        yield b'{"input_file_base64":"'
        yield from chunked_base64(content)
        yield b'",' + rest[1:].encode("utf-8")

    def input_of(self, state: Mapping[str, Any]) -> Input | None:
        """The created batch's `input_file_url` (None for an inline input: it is not kept)."""
        url = state.get("input_file_url")
        return Input.of_url(url) if isinstance(url, str) else None

    def missing_input(self, seed: int, api: ApiClient | None = None) -> Input:
        """A stored-file reference nobody stored."""
        return Input.of_url(f"scaigrid://file/batchconf-missing-{seed}")

    def view(self, state: Mapping[str, Any]) -> BatchView:
        errors = state.get("errors")
        window = state.get("endpoint_completion_window")
        return BatchView(
            id=state.get("id"),
            status=state.get("status"),
            role=self.role(state),
            total=int(state.get("total_count") or 0),
            completed=int(state.get("completed_count") or 0),
            failed=int(state.get("failed_count") or 0),
            counts_body={name: state.get(name) for name in _COUNTS},
            refs={_RESULTS: state.get(_RESULTS)},
            errors=errors if isinstance(errors, list) else None,
            created_at=state.get("created_at"),
            expires_at=state.get("expires_at"),
            window=window if isinstance(window, str) else None,
            endpoint=None,
            raw=state,
        )

    def ref_rules(self, view: BatchView, *, started: bool) -> list[RefRule]:
        """`results_url` exactly when the batch has results: completed, or cancelled after
        processing started; null for a failed batch and one cancelled while pending."""
        status = view.status
        url = "the URL of the results file"
        if view.role == "completed":
            return [
                RefRule(
                    _RESULTS,
                    True,
                    "results-url",
                    f"status {status!r}: a completed batch has results",
                    url,
                    key="output.location",
                )
            ]
        if view.role == "cancelled" and started:
            return [
                RefRule(
                    _RESULTS,
                    True,
                    "results-url",
                    f"status {status!r} after processing started: the finished lines keep their results",
                    url,
                    key="output.unfinished_on_cancel",
                )
            ]
        if view.role == "cancelled":
            return [
                RefRule(
                    _RESULTS,
                    False,
                    "results-url",
                    f"status {status!r} before processing started: there are no results",
                    key="output.unfinished_on_cancel",
                )
            ]
        return [
            RefRule(
                _RESULTS,
                False,
                "results-url",
                f"status {status!r}: nothing ran, there are no results",
                key="output.location",
            )
        ]

    def stable_fields(self) -> tuple[str, ...]:
        return (
            *self.profile.lifecycle.timestamps.values(),
            "created_at",
            "expires_at",
            *_COUNTS,
            _RESULTS,
            "errors",
        )

    def download(self, api: ApiClient, ref_field: str, ref: str) -> ApiResponse:
        """GET `results_url` (absolute) with the same key."""
        return api.get_url(ref, operation="download_results")

    def parse_results(self, raw: Mapping[str, bytes | None]) -> Results:
        records, problems = parse_records(raw.get(_RESULTS), "results file")
        return Results(
            successes=tuple(r for r in records if r.get("status") == OK),
            failures=tuple(r for r in records if r.get("status") != OK),
            records=tuple(records),
            raw=dict(raw),
            problems=tuple(problems),
        )

    def record(self, line: Mapping[str, Any]) -> ResultRecord:
        error = line.get("error")
        code = error.get("code") if isinstance(error, Mapping) else None
        code = code if isinstance(code, str) else None
        match = _HTTP_CODE.fullmatch(code) if code is not None else None
        custom_id = line.get("custom_id")
        return ResultRecord(
            custom_id=custom_id if isinstance(custom_id, str) else None,
            ok=line.get("status") == OK and isinstance(line.get("response"), Mapping),
            http=match is not None,
            http_status=int(match.group(1)) if match else None,
            code=code,
            raw=line,
        )

    def check_records(self, successes: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]]) -> None:
        """Every record says `status` "ok" (with a `response` object and no error) or
        "error" (with `error {code, message}`), and validates against scaigrid/result_line."""
        profile = self.profile
        for want, lines in ((OK, successes), (ERROR, failures)):
            for line in lines:
                cid = line.get("custom_id")
                word = line.get("status")
                if word not in (OK, ERROR):
                    raise violation(
                        "records-status-word",
                        f"the result record of custom_id {cid!r} has status {word!r}",
                        received=line,
                        expected="status 'ok' (with response) or 'error' (with error {code, message})",
                        profile=profile,
                        key="output.line_format",
                    )
                if word != want:
                    raise violation(
                        "records-placement",
                        f"the result record of custom_id {cid!r} is counted as {want!r} but says {word!r}",
                        received=line,
                        expected=f"status {want!r}",
                        profile=profile,
                        key="output.line_format",
                    )
                if want == OK and (not isinstance(line.get("response"), Mapping) or line.get("error") is not None):
                    raise violation(
                        "records-placement",
                        f"the ok record of custom_id {cid!r} does not carry a response object (and no error)",
                        received=line,
                        expected="{custom_id, status: 'ok', response: {...}}",
                        profile=profile,
                        key="output.line_format",
                    )
                if want == ERROR and not isinstance(line.get("error"), Mapping):
                    raise violation(
                        "records-placement",
                        f"the error record of custom_id {cid!r} does not carry an error object",
                        received=line,
                        expected="{custom_id, status: 'error', error: {code, message}}",
                        profile=profile,
                        key="output.line_format",
                    )
                check_schema(profile, "result_line", line, f"the result record of custom_id {cid!r}")

    def http_error_code(self, status: int) -> str | None:
        """`http_<status>`: an endpoint's HTTP error becomes an error record with that code."""
        return f"http_{status}"

    def http_failure_example(self, status: int) -> Mapping[str, Any]:
        return {"status": ERROR, "error": {"code": f"http_{status}", "message": "..."}}


def chunked_base64(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 of the concatenated `chunks`, produced chunk by chunk (nothing is held whole)."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = len(data) - len(data) % 3
        carry = data[cut:]
        if cut:
            yield base64.b64encode(data[:cut])
    if carry:
        yield base64.b64encode(carry)
