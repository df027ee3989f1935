"""The JSON Schemas of the wire objects and the validation API around them.

Three kinds of checks: each schema is a well-formed draft 2020-12 schema whose
``$ref``s resolve offline; the examples quoted in the provider documents and in
the OpenAPI text (fixtures/, each file naming its source) validate; hand-made
wrong objects fail with a message that names the field, the rule and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from schemas import load_profile
from schemas._validation import (
    SchemaValidationError,
    SchemaViolation,
    UnknownSchemaError,
    get_validator,
    load_schema,
    schema_names,
    validate,
)

FIXTURES = Path(__file__).parent / "fixtures"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:batchconf:schema:"
SOURCE_DOCUMENTS = (
    "openai-batch-spec.md",
    "openai-openapi-batch.yaml",
    "peers.md",
    "scaleway-how-to.txt",
    "scaleway-api-reference.txt",
    "ovhcloud-batch-mode.txt",
    "scaigrid-batch-inference.txt",
)
REQUIRED_NAMES = (
    "openai/batch",
    "openai/batch_list",
    "openai/error",
    "openai/error_line",
    "openai/file",
    "openai/file_deleted",
    "openai/file_list",
    "openai/input_line",
    "openai/output_line",
    "openai/result_line",
    "scaigrid/batch",
    "scaigrid/batch_list",
    "scaigrid/error",
    "scaigrid/input_line",
    "scaigrid/result_line",
    "scaigrid/webhook_event",
)
NAMES = schema_names()


def _fixtures() -> list[tuple[str, dict[str, Any]]]:
    return [(path.stem, json.loads(path.read_text(encoding="utf-8"))) for path in sorted(FIXTURES.glob("*.json"))]


FIXTURE_FILES = _fixtures()
EXAMPLES = [
    pytest.param(schema, example, id=f"{stem}[{index}]-{schema}")
    for stem, fixture in FIXTURE_FILES
    for schema in fixture["schemas"]
    for index, example in enumerate(fixture["examples"])
]


def _walk(node: object) -> Iterator[tuple[str, object]]:
    """Yield every (key, value) pair of every object nested in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


# --- the schema files -------------------------------------------------------------


def test_schema_names_are_sorted_and_complete() -> None:
    assert tuple(sorted(NAMES)) == NAMES
    assert set(REQUIRED_NAMES) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_against_its_metaschema(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == DRAFT_2020_12
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", NAMES)
def test_schema_has_id_title_and_sourced_description(name: str) -> None:
    schema = load_schema(name)
    assert schema["$id"] == ID_PREFIX + name
    assert isinstance(schema["title"], str)
    assert schema["title"].strip()
    description = schema["description"]
    assert isinstance(description, str)
    assert any(document in description for document in SOURCE_DOCUMENTS), (
        f"{name}: the description must name its source document"
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_ref_resolves_offline(name: str) -> None:
    registry: Registry[Any] = Registry().with_resources(
        (ID_PREFIX + other, DRAFT202012.create_resource(dict(load_schema(other)))) for other in NAMES
    )
    resolver = registry.resolver(base_uri=ID_PREFIX + name)
    refs = [value for key, value in _walk(load_schema(name)) if key == "$ref"]
    for ref in refs:
        assert isinstance(ref, str)
        assert ref.startswith(("#", ID_PREFIX)), f"{name}: $ref {ref!r} is neither local nor ours"
        resolved = resolver.lookup(ref)
        assert isinstance(resolved.contents, dict)


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_open_to_unknown_fields(name: str) -> None:
    """Providers add fields: no schema may close an object with additionalProperties: false."""
    closed = [value for key, value in _walk(load_schema(name)) if key == "additionalProperties"]
    assert False not in closed


def test_load_schema_returns_an_independent_copy() -> None:
    first = load_schema("openai/batch")
    assert isinstance(first, dict)
    first["title"] = "changed"
    assert load_schema("openai/batch")["title"] != "changed"


# --- real examples validate --------------------------------------------------------


@pytest.mark.parametrize(("stem", "fixture"), FIXTURE_FILES, ids=[s for s, _ in FIXTURE_FILES])
def test_fixture_names_its_source(stem: str, fixture: dict[str, Any]) -> None:
    assert any(document in fixture["source"] for document in SOURCE_DOCUMENTS), stem
    assert fixture["note"].strip()
    assert fixture["examples"]
    assert set(fixture["schemas"]) <= set(NAMES)


def test_every_schema_has_a_positive_example() -> None:
    covered = {schema for _, fixture in FIXTURE_FILES for schema in fixture["schemas"]}
    assert covered == set(NAMES)


@pytest.mark.parametrize(("schema", "example"), EXAMPLES)
def test_documented_example_validates(schema: str, example: object) -> None:
    validate(schema, example)


@pytest.mark.parametrize(("schema", "example"), EXAMPLES)
def test_documented_example_with_an_unknown_field_still_validates(schema: str, example: dict[str, Any]) -> None:
    extended = {**example, "x_provider_extension": {"anything": [1, None]}}
    assert get_validator(schema).errors(extended) == []


def test_openapi_create_example_needs_the_added_nulls() -> None:
    """The createBatch example has null in eleven fields the OpenAPI types as non-null (spec §2.1)."""
    (fixture,) = [f for stem, f in FIXTURE_FILES if stem == "openapi_batches"]
    created = fixture["examples"][0]
    assert created["status"] == "validating"
    nulls = {key for key, value in created.items() if value is None}
    timestamps = {f"{event}_at" for event in ("in_progress", "expires", "finalizing", "completed", "failed")}
    timestamps |= {"expired_at", "cancelling_at", "cancelled_at"}
    assert nulls == {"errors", "output_file_id", "error_file_id"} | timestamps
    validate("openai/batch", created)


def test_scaleway_style_batch_with_uuid_ids_and_url_files_validates() -> None:
    batch = _batch(
        id="3a0e7b6e-4f4c-4b8e-9d3a-5c0f1e2d3b4a",
        input_file_id="https://my-bucket.s3.fr-par.scw.cloud/input.jsonl",
        output_file_id="https://my-bucket.s3.fr-par.scw.cloud/input_output.jsonl",
        output_file_url="https://my-bucket.s3.fr-par.scw.cloud/input_output.jsonl",
        status="completed",
    )
    validate("openai/batch", batch)


# --- the ScaiGrid schemas agree with the ScaiGrid profile ---------------------------

SCAIGRID_BATCH_FIELDS = (
    "id",
    "object",
    "status",
    "endpoint_completion_window",
    "input_file_url",
    "webhook_url",
    "total_count",
    "completed_count",
    "failed_count",
    "results_url",
    "errors",
    "created_at",
    "expires_at",
)


def test_scaigrid_batch_requires_every_field_of_the_contract() -> None:
    schema = load_schema("scaigrid/batch")
    assert set(schema["required"]) == set(SCAIGRID_BATCH_FIELDS)
    assert set(schema["properties"]) == set(SCAIGRID_BATCH_FIELDS)
    profile = load_profile("scaigrid")
    assert schema["properties"]["status"]["enum"] == list(profile.lifecycle.statuses)
    assert set(schema["properties"]["endpoint_completion_window"]["enum"]) == set(profile.windows)


@pytest.mark.parametrize("status", ["pending", "processing", "completed", "failed", "cancelled"])
def test_scaigrid_batch_in_every_status_validates(status: str) -> None:
    validate("scaigrid/batch", _scaigrid_batch(status))


def test_scaigrid_batch_cancelled_while_pending_has_no_results_url() -> None:
    validate("scaigrid/batch", _scaigrid_batch("cancelled", results_url=None, total_count=0))


def test_every_scaigrid_catalogue_error_fits_the_envelope() -> None:
    for name, spec in load_profile("scaigrid").errors.items():
        rendered = spec.render(param="p", value="v", reason="r", id="i", status="s", size=1, max=2)
        body = {"error": {"code": rendered.code, "message": rendered.message, "param": rendered.param}}
        assert get_validator("scaigrid/error").errors(body) == [], name


def test_every_scaigrid_validation_error_fits_a_failed_batch() -> None:
    entries = []
    for entry in load_profile("scaigrid").validation.values():
        code, message, param = entry.render(param="body.model", value="v", id="s3://b/k", count=1, max=2, min=1)
        entries.append({"code": code, "message": message, "line": 1 if entry.line else None, "param": param})
    validate("scaigrid/batch", _scaigrid_batch("failed", errors=entries))


def test_scaigrid_webhook_event_types_are_the_profiles() -> None:
    hooks = load_profile("scaigrid").webhooks
    assert hooks is not None
    schema = load_schema("scaigrid/webhook_event")
    assert set(schema["properties"]["type"]["enum"]) == set(hooks.events.values())


# --- wrong objects fail, and say why -----------------------------------------------


_DROP = object()


def _batch(**changes: object) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "id": "batch_abc123",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-abc123",
        "completion_window": "24h",
        "status": "in_progress",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": 1711471533,
        "in_progress_at": 1711471538,
        "expires_at": 1711557933,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 3, "completed": 1, "failed": 0},
        "usage": None,
        "metadata": None,
    }
    batch.update(changes)
    return batch


_SCAIGRID_ID = "3f2b6c1e-8a4d-4e2f-9b7a-1c5d0e9f2a3b"
_SCAIGRID_RESULTS = f"http://127.0.0.1:8000/v1/inference/batch/{_SCAIGRID_ID}/results"


def _scaigrid_batch(status: str = "processing", **changes: object) -> dict[str, Any]:
    """A ScaiGrid batch in `status` that follows the contract, then `changes`."""
    batch: dict[str, Any] = {
        "id": _SCAIGRID_ID,
        "object": "batch",
        "status": status,
        "endpoint_completion_window": "24h",
        "input_file_url": "s3://my-bucket/input.jsonl",
        "webhook_url": None,
        "total_count": 0 if status == "pending" else 3,
        "completed_count": 0 if status == "pending" else 2,
        "failed_count": 0 if status == "pending" else 1,
        "results_url": _SCAIGRID_RESULTS if status in ("completed", "cancelled") else None,
        "errors": None,
        "created_at": 1764300000,
        "expires_at": 1764386400,
    }
    if status == "failed":
        batch["errors"] = [{"code": "INVALID_JSON_LINE", "message": "m", "line": 2, "param": None}]
    batch.update(changes)
    return batch


def _scaigrid_event(**changes: object) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": "evt_0123456789abcdef01234567",
        "type": "batch.completed",
        "created_at": 1764303000,
        "data": _scaigrid_batch("completed"),
    }
    event.update(changes)
    return event


def _input_line(**changes: object) -> dict[str, Any]:
    line: dict[str, Any] = {
        "custom_id": "request-1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "2+2?"}]},
    }
    line.update(changes)
    return line


def _output_line(status_code: int = 200, **changes: object) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": "batch_req_123",
        "custom_id": "request-1",
        "response": {"status_code": status_code, "request_id": "req_123", "body": {"id": "x"}},
        "error": None,
    }
    line.update(changes)
    return line


def _http_error_line(status_code: int = 400) -> dict[str, Any]:
    body = {"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}}
    return _output_line(status_code, response={"status_code": status_code, "request_id": "req_1", "body": body})


def _error(**inner: object) -> dict[str, Any]:
    error: dict[str, Any] = {"message": "m", "type": "invalid_request_error", "param": None, "code": None}
    error.update(inner)
    return {"error": {key: value for key, value in error.items() if value is not _DROP}}


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in keys}


_UPPER_STATUS = "VALIDATING"
_FILE = {
    "id": "file-abc123",
    "object": "file",
    "bytes": 120,
    "created_at": 1677610602,
    "filename": "batch.jsonl",
    "purpose": "batch",
}

WRONG = [
    pytest.param(
        "openai/input_line",
        _without(_input_line(), "custom_id"),
        "$",
        ["'custom_id' is a required property"],
        "required",
        id="input-missing-custom_id",
    ),
    pytest.param(
        "openai/input_line",
        _input_line(method="GET"),
        "$.method",
        ["'POST' was expected", "got 'GET'"],
        "const",
        id="input-method-get",
    ),
    pytest.param(
        "openai/input_line",
        _input_line(body="{}"),
        "$.body",
        ["'{}' is not of type 'object'"],
        "type",
        id="input-body-string",
    ),
    pytest.param(
        "openai/input_line",
        _input_line(url="v1/chat/completions"),
        "$.url",
        ["'v1/chat/completions' does not match"],
        "pattern",
        id="input-url-relative",
    ),
    pytest.param(
        "openai/batch",
        _batch(status="weird"),
        "$.status",
        ["'weird' is not one of ['validating'"],
        "enum",
        id="batch-status-weird",
    ),
    pytest.param(
        "openai/batch",
        _batch(status=_UPPER_STATUS),
        "$.status",
        ["'VALIDATING' is not one of"],
        "enum",
        id="batch-status-peer-dialect",
    ),
    pytest.param(
        "openai/batch",
        _batch(request_counts={"total": "3", "completed": 0, "failed": 0}),
        "$.request_counts.total",
        ["'3' is not of type 'integer'"],
        "type",
        id="batch-counts-total-string",
    ),
    pytest.param(
        "openai/batch",
        _batch(request_counts={"total": 3, "completed": 0}),
        "$.request_counts",
        ["'failed' is a required property"],
        "required",
        id="batch-counts-missing-failed",
    ),
    pytest.param(
        "openai/batch",
        _batch(request_counts={"total": 3, "completed": -1, "failed": 0}),
        "$.request_counts.completed",
        ["-1 is less than the minimum of 0"],
        "minimum",
        id="batch-counts-negative",
    ),
    pytest.param(
        "openai/batch",
        _batch(request_counts=[3, 0, 0]),
        "$.request_counts",
        ["[3, 0, 0] is not valid under any of the given schemas", "is not of type 'object'"],
        "anyOf",
        id="batch-counts-array",
    ),
    pytest.param(
        "openai/batch",
        _batch(created_at=None),
        "$.created_at",
        ["None is not of type 'integer'"],
        "type",
        id="batch-created_at-null",
    ),
    pytest.param(
        "openai/batch",
        _batch(in_progress_at="2024-03-26T16:45:38Z"),
        "$.in_progress_at",
        ["'2024-03-26T16:45:38Z' is not of type 'integer', 'null'"],
        "type",
        id="batch-timestamp-iso-string",
    ),
    pytest.param(
        "openai/batch",
        _without(_batch(), "input_file_id"),
        "$",
        ["'input_file_id' is a required property"],
        "required",
        id="batch-missing-input",
    ),
    pytest.param(
        "openai/batch",
        _batch(object="batch_job"),
        "$.object",
        ["'batch' was expected", "got 'batch_job'"],
        "const",
        id="batch-object",
    ),
    pytest.param(
        "openai/batch",
        _batch(metadata={f"k{i}": "v" for i in range(17)}),
        "$.metadata",
        ["has too many properties (17 properties, at most 16)"],
        "maxProperties",
        id="batch-metadata-17",
    ),
    pytest.param(
        "openai/batch",
        _batch(metadata={"tags": ["a", "b"]}),
        "$.metadata.tags",
        ["['a', 'b'] is not of type 'string'"],
        "type",
        id="batch-metadata-array-value",
    ),
    pytest.param(
        "openai/batch",
        _batch(metadata={"k": "v" * 513}),
        "$.metadata.k",
        ["is too long (513 characters, at most 512)"],
        "maxLength",
        id="batch-metadata-long-value",
    ),
    pytest.param(
        "openai/batch",
        _batch(metadata={"k" * 65: "v"}),
        "$.metadata",
        ["property name 'kkk", "(65 characters, at most 64)"],
        "maxLength",
        id="batch-metadata-long-key",
    ),
    pytest.param(
        "openai/batch",
        _batch(status="failed", errors={"object": "list", "data": [{"code": "x", "message": "m", "line": 0}]}),
        "$.errors.data[0].line",
        ["0 is less than the minimum of 1"],
        "minimum",
        id="batch-error-line-zero",
    ),
    pytest.param(
        "openai/batch",
        _batch(status="failed", errors={"object": "dict", "data": []}),
        "$.errors.object",
        ["'list' was expected", "got 'dict'"],
        "const",
        id="batch-errors-object-not-list",
    ),
    pytest.param(
        "openai/batch",
        _batch(usage={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}),
        "$.usage",
        ["'input_tokens_details' is a required property"],
        "required",
        id="batch-usage-incomplete",
    ),
    pytest.param(
        "openai/batch_list",
        {"object": "list", "data": [_batch(status="weird")], "has_more": False},
        "$.data[0].status",
        ["'weird' is not one of"],
        "enum",
        id="batch-list-item-status",
    ),
    pytest.param(
        "openai/batch_list",
        {
            "object": "list",
            "data": [_batch(request_counts={"total": "3", "completed": 0, "failed": 0})],
            "has_more": False,
        },
        "$.data[0].request_counts.total",
        ["'3' is not of type 'integer'"],
        "type",
        id="batch-list-item-counts",
    ),
    pytest.param(
        "openai/batch_list",
        {"object": "list", "data": []},
        "$",
        ["'has_more' is a required property"],
        "required",
        id="batch-list-no-has_more",
    ),
    pytest.param(
        "openai/error",
        _error(type=_DROP),
        "$.error",
        ["'type' is a required property"],
        "required",
        id="error-missing-type",
    ),
    pytest.param(
        "openai/error",
        _error(param=_DROP),
        "$.error",
        ["'param' is a required property"],
        "required",
        id="error-missing-param",
    ),
    pytest.param(
        "openai/error",
        {"message": "m", "type": "t", "param": None, "code": None},
        "$",
        ["'error' is a required property"],
        "required",
        id="error-not-enveloped",
    ),
    pytest.param(
        "openai/error",
        _error(code=400),
        "$.error.code",
        ["400 is not of type 'string', 'null'"],
        "type",
        id="error-integer-code",
    ),
    pytest.param(
        "openai/output_line",
        _output_line(500),
        "$.response.status_code",
        ["500 is greater than the maximum of 299"],
        "maximum",
        id="output-status-500",
    ),
    pytest.param(
        "openai/output_line",
        _output_line(error={"code": "x", "message": "m"}),
        "$.error",
        ["is not of type 'null'"],
        "type",
        id="output-error-set",
    ),
    pytest.param(
        "openai/output_line",
        _output_line(response=None),
        "$.response",
        ["None is not of type 'object'"],
        "type",
        id="output-response-null",
    ),
    pytest.param(
        "openai/output_line",
        _without(_output_line(), "custom_id"),
        "$",
        ["'custom_id' is a required property"],
        "required",
        id="output-missing-custom_id",
    ),
    pytest.param(
        "openai/error_line",
        _output_line(200),
        "$.response.status_code",
        ["200 is less than the minimum of 400"],
        "minimum",
        id="error-line-status-200",
    ),
    pytest.param(
        "openai/error_line",
        _output_line(404, response={"status_code": 404, "body": {"detail": "x"}}),
        "$.response.body",
        ["'error' is a required property"],
        "required",
        id="error-line-body-not-enveloped",
    ),
    pytest.param(
        "openai/error_line",
        _output_line(response=None, error={"code": "batch_expired"}),
        "$.error",
        ["'message' is a required property"],
        "required",
        id="error-line-non-http-missing-message",
    ),
    pytest.param(
        "openai/error_line",
        _output_line(response=None, error=None),
        "$.error",
        ["None is not of type 'object'"],
        "type",
        id="error-line-nothing-set",
    ),
    pytest.param(
        "openai/error_line",
        _without(_output_line(), "response", "error"),
        "$",
        ["'error' is a required property"],
        "required",
        id="error-line-neither-key",
    ),
    pytest.param(
        "openai/error_line",
        {**_http_error_line(), "error": {"code": "x", "message": "m"}},
        "$.error",
        ["is not of type 'null'"],
        "type",
        id="error-line-both-set",
    ),
    pytest.param(
        "openai/result_line",
        _output_line(302),
        "$",
        [
            "302 is greater than the maximum of 299",
            "302 is less than the minimum of 400",
            "openai/output_line",
            "openai/error_line",
        ],
        "anyOf",
        id="result-line-status-302",
    ),
    pytest.param(
        "openai/file",
        {**_FILE, "purpose": "batch-api"},
        "$.purpose",
        ["'batch-api' is not one of"],
        "enum",
        id="file-purpose",
    ),
    pytest.param(
        "openai/file",
        {**_FILE, "bytes": "120"},
        "$.bytes",
        ["'120' is not of type 'integer'"],
        "type",
        id="file-bytes-string",
    ),
    pytest.param(
        "openai/file",
        {**_FILE, "status": "done"},
        "$.status",
        ["'done' is not one of"],
        "enum",
        id="file-status",
    ),
    pytest.param(
        "openai/file",
        _without(_FILE, "filename"),
        "$",
        ["'filename' is a required property"],
        "required",
        id="file-missing-filename",
    ),
    pytest.param(
        "openai/file_list",
        {"object": "list", "data": [_FILE, {**_FILE, "object": "batch"}], "has_more": False},
        "$.data[1].object",
        ["'file' was expected", "got 'batch'"],
        "const",
        id="file-list-item",
    ),
    pytest.param(
        "openai/file_deleted",
        {"id": "file-abc123", "object": "file", "deleted": "true"},
        "$.deleted",
        ["'true' is not of type 'boolean'"],
        "type",
        id="file-deleted-string",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch(status="in_progress"),
        "$.status",
        ["'in_progress' is not one of ['pending'"],
        "enum",
        id="scaigrid-batch-openai-status",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch("completed", failed_count="1"),
        "$.failed_count",
        ["'1' is not of type 'integer'"],
        "type",
        id="scaigrid-failed-count",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch(total_count=-1),
        "$.total_count",
        ["-1 is less than the minimum of 0"],
        "minimum",
        id="scaigrid-negative-count",
    ),
    pytest.param(
        "scaigrid/batch",
        _without(_scaigrid_batch("pending"), "results_url"),
        "$",
        ["'results_url' is a required property"],
        "required",
        id="scaigrid-results-url-absent",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch("completed", results_url=None),
        "$.results_url",
        ["None is not of type 'string'"],
        "type",
        id="scaigrid-completed-without-results-url",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch("processing", results_url=_SCAIGRID_RESULTS),
        "$.results_url",
        ["is not of type 'null'"],
        "type",
        id="scaigrid-results-url-while-processing",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch("failed", errors=None),
        "$.errors",
        ["None is not of type 'array'"],
        "type",
        id="scaigrid-failed-without-errors",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch("failed", errors=[{"code": "INVALID_JSON_LINE", "message": "m", "param": None}]),
        "$.errors[0]",
        ["'line' is a required property"],
        "required",
        id="scaigrid-error-entry-without-line",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch("pending", endpoint_completion_window="2h"),
        "$.endpoint_completion_window",
        ["'2h' is not one of ['24h', '4h', '1h']"],
        "enum",
        id="scaigrid-window",
    ),
    pytest.param(
        "scaigrid/batch",
        _scaigrid_batch("pending", total_count=3),
        "$.total_count",
        ["0 was expected, got 3"],
        "const",
        id="scaigrid-pending-with-counts",
    ),
    pytest.param(
        "scaigrid/batch_list",
        {"object": "list", "data": [_scaigrid_batch()]},
        "$",
        ["'has_more' is a required property"],
        "required",
        id="scaigrid-list-without-has-more",
    ),
    pytest.param(
        "scaigrid/batch_list",
        {"object": "list", "data": [_scaigrid_batch(status="queued")], "has_more": False},
        "$.data[0].status",
        ["'queued' is not one of ['pending'"],
        "enum",
        id="scaigrid-list-item",
    ),
    pytest.param(
        "scaigrid/error",
        {"error": {"code": "quota_exceeded", "message": "m", "param": None}},
        "$.error.code",
        ["'quota_exceeded' does not match"],
        "pattern",
        id="scaigrid-error-lower-case-code",
    ),
    pytest.param(
        "scaigrid/error",
        {"error": {"code": "QUOTA_EXCEEDED", "param": None}},
        "$.error",
        ["'message' is a required property"],
        "required",
        id="scaigrid-error-without-message",
    ),
    pytest.param(
        "scaigrid/error",
        _error(),
        "$.error.code",
        ["None is not of type 'string'"],
        "type",
        id="scaigrid-error-openai-envelope",
    ),
    pytest.param(
        "scaigrid/webhook_event",
        _scaigrid_event(id="evt_123"),
        "$.id",
        ["'evt_123' does not match"],
        "pattern",
        id="scaigrid-event-id",
    ),
    pytest.param(
        "scaigrid/webhook_event",
        _scaigrid_event(type="batch.failed"),
        "$.data.status",
        ["'failed' was expected, got 'completed'"],
        "const",
        id="scaigrid-event-type-against-status",
    ),
    pytest.param(
        "scaigrid/webhook_event",
        _scaigrid_event(type="batch.expired"),
        "$.type",
        ["'batch.expired' is not one of"],
        "enum",
        id="scaigrid-event-openai-type",
    ),
    pytest.param(
        "scaigrid/webhook_event",
        _scaigrid_event(data={"id": _SCAIGRID_ID}),
        "$.data",
        ["'object' is a required property"],
        "required",
        id="scaigrid-event-data-not-a-batch",
    ),
    pytest.param(
        "scaigrid/input_line",
        _input_line(),
        "$.url",
        ["'/v1/chat/completions' does not match '^/v1/inference/'"],
        "pattern",
        id="scaigrid-input-openai-url",
    ),
    pytest.param(
        "scaigrid/input_line",
        _without(_input_line(url="/v1/inference/chat"), "custom_id"),
        "$",
        ["'custom_id' is a required property"],
        "required",
        id="scaigrid-input-no-custom_id",
    ),
    pytest.param(
        "scaigrid/result_line",
        {"custom_id": "req-1", "status": "ok"},
        "$",
        ["'response' is a required property"],
        "required",
        id="scaigrid-ok-no-response",
    ),
    pytest.param(
        "scaigrid/result_line",
        {"custom_id": "req-3", "status": "error"},
        "$",
        ["'error' is a required property"],
        "required",
        id="scaigrid-error-no-error",
    ),
    pytest.param(
        "scaigrid/result_line",
        {"custom_id": "req-1", "status": "failed", "error": {"code": "c", "message": "m"}},
        "$.status",
        ["'failed' is not one of ['ok', 'error']"],
        "enum",
        id="scaigrid-status",
    ),
]


@pytest.mark.parametrize(("schema", "instance", "path", "fragments", "keyword"), WRONG)
def test_wrong_object_fails_with_a_useful_message(
    schema: str, instance: object, path: str, fragments: list[str], keyword: str
) -> None:
    with pytest.raises(SchemaValidationError) as caught:
        validate(schema, instance)
    error = caught.value
    assert error.schema == schema
    assert error.path == path
    first = error.violations[0]
    assert first.path == path
    assert first.validator == keyword
    headline = str(error).splitlines()[0]
    assert headline.startswith(f"{schema}: {path}: ")
    for fragment in fragments:
        assert fragment in headline
    assert not get_validator(schema).is_valid(instance)


def test_error_line_with_http_500_is_an_error_line_not_an_output_line() -> None:
    line = _http_error_line(500)
    assert not get_validator("openai/output_line").is_valid(line)
    validate("openai/error_line", line)
    validate("openai/result_line", line)


def test_success_line_is_not_an_error_line() -> None:
    line = _output_line(200)
    validate("openai/output_line", line)
    validate("openai/result_line", line)
    assert not get_validator("openai/error_line").is_valid(line)


@pytest.mark.parametrize("code", ["batch_expired", "batch_cancelled", "request_timeout"])
def test_non_http_error_line_validates(code: str) -> None:
    line = _output_line(response=None, error={"code": code, "message": "not executed"})
    validate("openai/error_line", line)
    validate("openai/result_line", line)


# --- no stricter than the contract ----------------------------------------------------
# Each case is a shape the OpenAPI text and the spec digest allow (a key whose value may be
# null left out, an optional object null), which an earlier schema refused.

RELAXED = [
    pytest.param("openai/batch", _batch(request_counts=None), id="batch-counts-null-while-validating"),
    pytest.param("openai/batch", _without(_batch(), "request_counts"), id="batch-counts-absent"),
    pytest.param("openai/batch", _batch(status="failed", errors={"data": []}), id="batch-errors-without-object"),
    pytest.param("openai/batch", _batch(status="failed", errors={"object": "list"}), id="batch-errors-without-data"),
    pytest.param(
        "openai/batch",
        _batch(status="failed", errors={"object": "list", "data": [{"code": "invalid_json_line", "line": 2}]}),
        id="batch-error-without-message",
    ),
    pytest.param("openai/output_line", _without(_output_line(), "error"), id="output-line-without-error-key"),
    pytest.param("openai/error_line", _without(_http_error_line(), "error"), id="http-failure-without-error-key"),
    pytest.param(
        "openai/error_line",
        _without(_output_line(error={"code": "batch_expired", "message": "m"}), "response"),
        id="non-http-failure-without-response-key",
    ),
    pytest.param("openai/result_line", _without(_output_line(), "error"), id="result-line-without-error-key"),
]


@pytest.mark.parametrize(("schema", "instance"), RELAXED)
def test_shapes_the_contract_allows_validate(schema: str, instance: object) -> None:
    assert get_validator(schema).errors(instance) == []


def test_a_success_without_error_key_is_still_no_error_line() -> None:
    """Relaxing `error` on output lines must not let a success pass as a failure, nor a
    failure as a success."""
    success = _without(_output_line(), "error")
    assert not get_validator("openai/error_line").is_valid(success)
    failure = _without(_http_error_line(), "error")
    assert not get_validator("openai/output_line").is_valid(failure)


def _rule_nodes(node: object, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema that states rules of its own: the root, each named property, each $defs
    entry and each allOf item (whose if/then states one rule; a bare `$ref` states none: its
    target does)."""
    if not isinstance(node, dict):
        return
    if set(node) - {"$ref", "description"}:
        yield where, node
    for keyword in ("properties", "$defs"):
        for name, child in (node.get(keyword) or {}).items():
            yield from _rule_nodes(child, f"{where}/{keyword}/{name}")
    for index, child in enumerate(node.get("allOf") or []):
        yield f"{where}/allOf/{index}", child
    items = node.get("items")
    if isinstance(items, dict):
        for name, child in (items.get("properties") or {}).items():
            yield from _rule_nodes(child, f"{where}/items/properties/{name}")


RULE_SOURCES = ("openapi", "VERIFIED", "INFERRED", "schemas/profiles/", *SOURCE_DOCUMENTS)


@pytest.mark.parametrize("name", NAMES)
def test_every_rule_states_its_source(name: str) -> None:
    """Each schema stating rules carries a `$comment` naming where the contract says them."""
    nodes = list(_rule_nodes(load_schema(name)))
    assert nodes
    for where, node in nodes:
        comment = node.get("$comment")
        assert isinstance(comment, str), f"{name}{where} states rules without a $comment naming their source"
        assert any(mark in comment for mark in RULE_SOURCES), f"{name}{where}: $comment names no source: {comment!r}"


@pytest.mark.parametrize(("schema", "instance", "path", "fragments", "keyword"), WRONG)
def test_each_violation_cites_its_rules_source(
    schema: str, instance: object, path: str, fragments: list[str], keyword: str
) -> None:
    first = get_validator(schema).errors(instance)[0]
    assert any(mark in first.source for mark in RULE_SOURCES), first
    doc, _, pointer = first.rule.partition("#")
    assert doc in NAMES
    node: Any = load_schema(doc)
    for token in pointer.split("/")[1:]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    assert first.source in (node.get("$comment"), node.get("description"))


def test_source_is_the_innermost_comment_on_the_path_refs_followed() -> None:
    (status,) = get_validator("openai/batch").errors(_batch(status="weird"))
    assert status.rule == "openai/batch#/$defs/status"
    assert "openapi: Batch.status" in status.source
    assert status.received == "weird"
    (counts,) = get_validator("openai/batch").errors(_batch(request_counts={"total": 1, "completed": "1", "failed": 0}))
    assert counts.rule == "openai/batch#/$defs/request_counts/properties/completed"
    # A list item reaches the batch schema through its urn $ref.
    page = {"object": "list", "data": [_batch(status="weird")], "has_more": False}
    (item,) = get_validator("openai/batch_list").errors(page)
    assert item.rule == "openai/batch#/$defs/status"
    (required,) = get_validator("openai/batch").errors(_without(_batch(), "status"))
    assert required.rule == "openai/batch#" and "Batch.required" in required.source


def test_relaxed_rules_say_why() -> None:
    batch = load_schema("openai/batch")
    assert "not in Batch.required" in batch["properties"]["request_counts"]["$comment"]
    assert "required" not in batch["$defs"]["errors"]
    assert "required" not in batch["$defs"]["batch_error"]
    assert "error" not in load_schema("openai/output_line")["required"]
    assert {"response", "error"}.isdisjoint(load_schema("openai/error_line")["required"])


# --- the validation API -------------------------------------------------------------


def test_message_names_schema_path_rule_and_received_value() -> None:
    with pytest.raises(SchemaValidationError) as caught:
        validate("openai/batch", _batch(status="weird"))
    assert str(caught.value) == (
        "openai/batch: $.status: 'weird' is not one of ['validating', 'failed', 'in_progress', "
        "'finalizing', 'completed', 'expired', 'cancelling', 'cancelled']"
    )


def test_all_violations_are_reported() -> None:
    instance = _batch(status="weird", request_counts={"total": "3", "completed": 0, "failed": 0})
    with pytest.raises(SchemaValidationError) as caught:
        validate("openai/batch", instance)
    error = caught.value
    assert isinstance(error, ValueError)
    assert {v.path for v in error.violations} == {"$.status", "$.request_counts.total"}
    assert "(1 more)" in str(error)
    assert get_validator("openai/batch").errors(instance) == error.violations


def test_long_received_values_are_shortened_in_messages() -> None:
    line = _output_line(302)
    line["response"]["body"] = {"content": "x" * 10_000}
    (violation,) = get_validator("openai/result_line").errors(line)
    assert len(violation.message) < 1_000
    assert "302 is greater than the maximum of 299" in violation.message


def test_non_object_instance_fails_at_the_root() -> None:
    with pytest.raises(SchemaValidationError) as caught:
        validate("openai/input_line", ["custom_id"])
    assert caught.value.path == "$"
    assert "is not of type 'object'" in str(caught.value)


def test_valid_instance_has_no_violations() -> None:
    validator = get_validator("openai/batch")
    assert validator.name == "openai/batch"
    assert validator.errors(_batch()) == []
    assert validator.is_valid(_batch())
    validator.validate(_batch())


def test_validator_is_built_once() -> None:
    assert get_validator("openai/batch") is get_validator("openai/batch")


def test_validation_does_not_modify_the_instance() -> None:
    instance = _batch(status="weird")
    before = copy.deepcopy(instance)
    get_validator("openai/batch").errors(instance)
    assert instance == before


def test_violation_is_frozen() -> None:
    violation = SchemaViolation(path="$", message="m", validator="type")
    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.path = "$.x"  # type: ignore[misc]
    assert str(violation) == "$: m"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: get_validator("openai/batches"), id="get_validator"),
        pytest.param(lambda: load_schema("openai/batches"), id="load_schema"),
        pytest.param(lambda: validate("openai/batches", {}), id="validate"),
    ],
)
def test_unknown_schema_names_the_known_ones(call: Any) -> None:
    with pytest.raises(UnknownSchemaError) as caught:
        call()
    assert isinstance(caught.value, KeyError)
    message = str(caught.value)
    assert "'openai/batches'" in message
    for name in NAMES:
        assert name in message
