"""Validation of a batch's input: every line against the profile's line rules, then limits.

The scan streams the input object line by line and keeps only where each valid line sits
(a `LinePlan`), never the parsed lines. Errors are the profile's `[validation]` entries,
rendered with their line numbers; a mutation may let one pass (`seams.VALIDATION_ERROR`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas import Profile

from .._jsonl import iter_lines
from .._mutations import Mutations
from .._storage import ObjectStore
from . import seams
from .records import InputObject, LinePlan

__all__ = ["InputValidator", "Verdict"]

_MAX_REPORTED_ERRORS = 1000


@dataclass
class _ScanState:
    """What validation remembers across the lines of one input file."""

    seen: set[str] = field(default_factory=set)
    first_model: str | None = None
    first_url: str | None = None
    embedding_inputs: int = 0


@dataclass
class Verdict:
    """The outcome of a scan: the plan of valid lines, or the errors that fail the batch."""

    plan: LinePlan
    errors: list[dict[str, Any]]
    #: The custom_id of each reported broken line that has one, by 1-based line number.
    custom_ids: dict[int, str] = field(default_factory=dict)


class InputValidator:
    """Checks input files for one profile."""

    def __init__(self, profile: Profile, *, store: ObjectStore, mutations: Mutations) -> None:
        self.profile = profile
        self.store = store
        self.mutations = mutations

    def scan(self, source: InputObject, endpoint: str) -> Verdict:
        """Read every line of `source` (batch endpoint `endpoint`, '' when lines name their own)."""
        plan = LinePlan(source)
        errors: list[dict[str, Any]] = []
        custom_ids: dict[int, str] = {}
        state = _ScanState()
        bad_lines = 0
        line_no = 0
        chunks = self.store.iter_chunks(source.key, parts=source.parts, bucket=source.bucket)
        for offset, raw in iter_lines(chunks):
            line_no += 1
            if not raw.strip():
                continue
            problem = self._check_line(raw, line_no, endpoint, state)
            if problem is not None:
                bad_lines += 1
                if len(errors) < _MAX_REPORTED_ERRORS:
                    errors.append(problem)
                    custom_id = _custom_id(raw)
                    if custom_id is not None:
                        custom_ids[line_no] = custom_id
                continue
            plan.offsets.append(offset)
            plan.lengths.append(len(raw))
        count = len(plan) + bad_lines
        limits = self.profile.limits
        if (
            limits.max_requests
            and count > limits.max_requests
            and limits.enforced_at.get("max_requests", "validation") == "validation"
        ):
            self._add(errors, self._batch_error("too_many_requests", count=count, max=limits.max_requests))
        if count < limits.min_requests:
            self._add(errors, self._batch_error("too_few_requests", count=count, min=limits.min_requests))
        if (
            limits.max_embedding_inputs
            and endpoint.endswith("/embeddings")
            and state.embedding_inputs > limits.max_embedding_inputs
        ):
            self._add(
                errors,
                self._batch_error(
                    "too_many_embedding_inputs", count=state.embedding_inputs, max=limits.max_embedding_inputs
                ),
            )
        plan.model = state.first_model
        for entry in errors:
            entry.pop("name", None)
        return Verdict(plan, errors, custom_ids)

    def batch_error(self, name: str, **fields: object) -> dict[str, Any]:
        """A file-level validation error entry (no line)."""
        code, message, param = self.profile.validation[name].render(**fields)
        return {"code": code, "message": message, "param": param, "line": None}

    @staticmethod
    def _add(errors: list[dict[str, Any]], entry: dict[str, Any] | None) -> None:
        if entry is not None:
            errors.append(entry)

    def _check_line(self, raw: bytes, line_no: int, endpoint: str, state: _ScanState) -> dict[str, Any] | None:
        """An error entry for a bad line, or None for a good one (recorded in `state`)."""
        rules = self.profile.line_rules
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._line_error("invalid_json_line", line_no)
        if not isinstance(obj, dict):
            return self._line_error("invalid_json_line", line_no)
        for name in rules.required_fields:
            if name not in obj or obj[name] is None:
                return self._line_error("missing_field", line_no, param=name)
        custom_id = obj.get("custom_id")
        if (
            not isinstance(custom_id, str)
            or not custom_id
            or (rules.custom_id_max_chars and len(custom_id) > rules.custom_id_max_chars)
        ):
            return self._line_error("custom_id_invalid", line_no, value=custom_id)
        method = obj.get("method", "POST")
        if method not in rules.methods:
            return self._line_error("invalid_method", line_no, value=method)
        url = obj.get("url", endpoint)
        if rules.mixed_endpoints:
            if url not in self.profile.endpoints and (err := self._line_error("invalid_url", line_no, value=url)):
                return err
        else:
            if (
                rules.url_must_match_endpoint
                and url != endpoint
                and (err := self._line_error("invalid_url", line_no, value=url))
            ):
                return err
            # Lines must all share one url (the first line's) even where it need not equal
            # the create-time endpoint (Azure's `/chat/completions` form).
            if state.first_url is None:
                state.first_url = url
            if url != state.first_url and (err := self._line_error("invalid_url", line_no, value=url)):
                return err
        body = obj.get("body")
        if not isinstance(body, dict):
            return self._line_error("invalid_body", line_no)
        model = body.get("model")
        if rules.model_required and not (isinstance(model, str) and model):
            return self._line_error("missing_model", line_no)
        if not rules.stream_allowed and body.get("stream") is True:
            return self._line_error("streaming_unsupported", line_no)
        if rules.custom_id_unique:
            if custom_id in state.seen and (err := self._line_error("duplicate_custom_id", line_no, value=custom_id)):
                return err
            state.seen.add(custom_id)
        if rules.one_model_per_file and state.first_model is not None and model != state.first_model:
            return self._line_error("mixed_models", line_no, value=model)
        if state.first_model is None and isinstance(model, str):
            state.first_model = model
        if isinstance(url, str) and url.endswith("/embeddings"):
            value = body.get("input")
            state.embedding_inputs += len(value) if isinstance(value, list) else 1
        return None

    def _line_error(self, name: str, line_no: int, **fields: object) -> dict[str, Any] | None:
        spec = self.profile.validation[name]
        code, message, param = spec.render(line=line_no, **fields)
        entry = {"code": code, "message": message, "param": param, "line": line_no if spec.line else None}
        entry["name"] = name
        result: dict[str, Any] | None = self.mutations.apply(seams.VALIDATION_ERROR, entry)
        if result is not None:
            result.pop("name", None)
        return result

    def _batch_error(self, name: str, **fields: object) -> dict[str, Any] | None:
        code, message, param = self.profile.validation[name].render(**fields)
        entry: dict[str, Any] = {"code": code, "message": message, "param": param, "line": None, "name": name}
        result: dict[str, Any] | None = self.mutations.apply(seams.VALIDATION_ERROR, entry)
        return result


def _custom_id(raw: bytes) -> str | None:
    """The string custom_id of a broken line, if it parses far enough to have one."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = obj.get("custom_id") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None
