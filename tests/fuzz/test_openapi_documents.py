"""The OpenAPI documents the fuzz run is held to: the overlay and the bundling that build
them, and their agreement with the profiles and the JSON Schemas they are written from."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from schemas import load_profile, validate

from ._openapi import OverlayError, apply_overlay, bundle, load_document, operations, resolve_pointer

OPENAI = load_document("openai-openapi-batch.overlay.yaml")
SCAIGRID = load_document("scaigrid-batch.yaml")
JSON_DIR = Path(__file__).parents[2] / "schemas" / "json"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_overlay_updates_merge_append_and_replace() -> None:
    """An overlay update MUST merge objects key by key, append to arrays and replace other values."""
    doc = {"a": {"b": 1, "c": [1], "d": {"e": "x"}}}
    out = apply_overlay(doc, {"actions": [{"target": "$.a", "update": {"b": 2, "c": [2], "d": {"f": "y"}}}]})
    assert out == {"a": {"b": 2, "c": [1, 2], "d": {"e": "x", "f": "y"}}}
    assert doc == {"a": {"b": 1, "c": [1], "d": {"e": "x"}}}, "the base document must be left as it was"


def test_overlay_removes_and_takes_bracketed_names() -> None:
    """`remove: true` MUST delete the target; `['/x/{id}']` MUST name a key with slashes."""
    doc = {"paths": {"/x/{id}": {"get": {"responses": {"200": {}}}}}, "keep": 1}
    actions = [
        {"target": "$.paths['/x/{id}'].get.responses", "update": {"404": {"description": "gone"}}},
        {"target": "$.keep", "remove": True},
    ]
    out = apply_overlay(doc, {"actions": actions})
    assert out == {"paths": {"/x/{id}": {"get": {"responses": {"200": {}, "404": {"description": "gone"}}}}}}


@pytest.mark.parametrize("target", ["$.nowhere", "$.a[0]", "a.b", "$.a.*"])
def test_overlay_refuses_targets_it_cannot_follow(target: str) -> None:
    """A target that names no node, or uses JSONPath beyond member names, MUST be refused."""
    with pytest.raises(OverlayError):
        apply_overlay({"a": {"b": 1}}, {"actions": [{"target": target, "update": {"x": 1}}]})


def test_documents_are_self_contained() -> None:
    """Every `$ref` of both documents MUST point inside the document and resolve."""
    for doc in (OPENAI, SCAIGRID):
        refs = _refs(doc)
        assert refs
        for ref in refs:
            assert ref.startswith("#/"), ref
            assert resolve_pointer(doc, ref) is not None, ref


def test_bundled_schemas_are_the_json_schemas_the_suite_uses() -> None:
    """A bundled schema MUST be our JSON Schema file, but for its ids and its local refs."""
    raw = json.loads((JSON_DIR / "scaigrid" / "batch.schema.json").read_text(encoding="utf-8"))
    bundled = SCAIGRID["components"]["schemas"]["batchconf.scaigrid.batch"]
    assert "$id" not in bundled
    assert bundled["required"] == raw["required"]
    assert (
        bundled["properties"]["created_at"]["$ref"] == "#/components/schemas/batchconf.scaigrid.batch/$defs/unix_time"
    )
    lst = SCAIGRID["components"]["schemas"]["batchconf.scaigrid.batch_list"]
    assert lst["properties"]["data"]["items"]["$ref"] == "#/components/schemas/batchconf.scaigrid.batch"


def test_bundle_refuses_references_to_other_files() -> None:
    """Only our JSON Schemas are bundled: any other external `$ref` MUST be refused."""
    with pytest.raises(ValueError, match="only our JSON Schemas"):
        bundle({"openapi": "3.1.0", "components": {"schemas": {"X": {"$ref": "other.yaml#/X"}}}})


@pytest.mark.parametrize(("doc", "profile"), [(OPENAI, "openai"), (SCAIGRID, "scaigrid")], ids=["openai", "scaigrid"])
def test_document_operations_are_the_profiles(doc: dict[str, Any], profile: str) -> None:
    """A document MUST describe exactly the operations its profile serves, at the same paths."""
    p = load_profile(profile)
    served = {route for op in p.http.operations if (route := p.http.route(op))}
    described = {(method, p.http.base_path + path) for method, path in operations(doc)}
    assert described == served


def test_scaleway_operations_are_in_the_openai_document() -> None:
    """Scaleway's OpenAI-compatible operations MUST all be in the OpenAI document (the fuzz
    run takes them from it)."""
    p = load_profile("scaleway")
    described = {(method, "/v1" + path) for method, path in operations(OPENAI)}
    assert {route for op in p.http.operations if (route := p.http.route(op))} <= described


def _accepts_null(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    return Draft202012Validator({**schema, "components": doc["components"]}).is_valid(None)


@pytest.mark.parametrize(
    ("component", "ours"),
    [
        ("Batch", "batch"),
        ("OpenAIFile", "file"),
        ("ListBatchesResponse", "batch_list"),
        ("ListFilesResponse", "file_list"),
    ],
)
def test_overlay_nulls_are_those_of_our_schemas(component: str, ours: str) -> None:
    """A field of the overlaid document MUST accept null exactly where our JSON Schema of that
    object does (openai-batch-spec.md §2.1: the official text omits them)."""
    props = OPENAI["components"]["schemas"][component]["properties"]
    raw = json.loads((JSON_DIR / "openai" / f"{ours}.schema.json").read_text(encoding="utf-8"))
    theirs = {k: v for k, v in raw["properties"].items()}
    for name in sorted(set(props) & set(theirs)):
        mine = _accepts_null(OPENAI, props[name])
        expected = Draft202012Validator({**theirs[name], "$defs": raw.get("$defs", {})}).is_valid(None)
        assert mine == expected, f"{component}.{name}: overlay null={mine}, {ours}.schema.json null={expected}"


@pytest.mark.parametrize(("doc", "envelope"), [(OPENAI, "openai"), (SCAIGRID, "scaigrid")], ids=["openai", "scaigrid"])
def test_every_error_response_is_our_envelope(doc: dict[str, Any], envelope: str) -> None:
    """Every operation MUST document 401 and its other 4xx statuses, each with the dialect's
    error envelope (schemas/json/<dialect>/error.schema.json)."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            errors = {code: r for code, r in op["responses"].items() if code.startswith("4")}
            assert "401" in errors, f"{method.upper()} {path}"
            for code, response in errors.items():
                if "$ref" in response:
                    response = resolve_pointer(doc, response["$ref"])
                schema = response["content"]["application/json"]["schema"]
                while "$ref" in schema and not schema["$ref"].endswith(f"batchconf.{envelope}.error"):
                    schema = resolve_pointer(doc, schema["$ref"])
                assert schema["$ref"] == f"#/components/schemas/batchconf.{envelope}.error", (method, path, code)


def test_overlaid_batch_takes_a_batch_the_official_text_refuses() -> None:
    """The overlay MUST make a freshly created batch (nulls everywhere) valid, which the
    official text alone refuses (openai-batch-spec.md §2.1)."""
    batch = {
        "id": "batch_abc123",
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": None,
        "input_file_id": "file-abc123",
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "created_at": 1711471533,
        "in_progress_at": None,
        "request_counts": None,
        "metadata": None,
    }
    validate("openai/batch", batch)
    official = load_document("openai-openapi-batch.yaml")
    for doc, ok in ((official, False), (OPENAI, True)):
        schema = {"$ref": "#/components/schemas/Batch", "components": doc["components"]}
        assert Draft202012Validator(schema).is_valid(batch) is ok


def test_scaigrid_example_input_is_valid_input() -> None:
    """The create example of the ScaiGrid document MUST carry input lines our input-line
    schema accepts (it is what the fuzz run's examples phase sends)."""
    op = SCAIGRID["paths"]["/inference/batch"]["post"]
    example = op["requestBody"]["content"]["application/json"]["examples"]["inline"]["value"]
    lines = base64.b64decode(example["input_file_base64"]).decode().splitlines()
    assert len(lines) == 2
    for line in lines:
        validate("scaigrid/input_line", json.loads(line))
