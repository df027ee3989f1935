"""The object-storage adapter and the suite's bucket on canned bodies: inputs put in the
run's bucket and named by URL, results read from the objects the file ids name, the keys the
profile names, and how URLs map back to bucket and key (moto in this process)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from conformance._storage import ObjectStorage, StorageError, bucket_name_problem, connect, region_of
from conformance.client import ApiClient
from conformance.dialects import (
    BatchParams,
    Input,
    ObjectStorageDialect,
    OpenAIDialect,
    ResultsUnavailable,
    SubmitError,
    adapter_for,
)
from schemas import load_profile

SCALEWAY = load_profile("scaleway")
SCW_FORM = "https://{bucket}.s3.{region}.scw.cloud/{key}"


@pytest.fixture
def storage() -> Iterator[ObjectStorage]:
    """A fresh suite bucket in an in-process moto store, as in-process runs get it."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        yield connect(endpoint_url=None, bucket=None, prefix="team/", run="abc123", client=client)


def _api(storage: ObjectStorage | None) -> ApiClient:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    http = httpx.Client(base_url="http://t", transport=httpx.MockTransport(refuse))
    return ApiClient(http, SCALEWAY, api_key="sk-1", storage=storage)


def _dialect() -> ObjectStorageDialect:
    dialect = adapter_for(SCALEWAY)
    assert isinstance(dialect, ObjectStorageDialect)
    return dialect


def test_object_storage_profiles_get_the_object_adapter() -> None:
    assert isinstance(adapter_for(SCALEWAY), ObjectStorageDialect)
    assert type(adapter_for(load_profile("openai"))) is OpenAIDialect
    files_api = dataclasses.replace(SCALEWAY, output=dataclasses.replace(SCALEWAY.output, location="files_api"))
    assert type(adapter_for(files_api)) is OpenAIDialect
    assert _dialect().forms() == (SCW_FORM, "s3://{bucket}/{key}")
    assert _dialect().places == ("the output object", "the error object")


def test_stage_puts_the_input_in_a_folder_of_its_own(storage: ObjectStorage) -> None:
    """Each staged input gets a fresh folder under {prefix}batchconf-{run}/ (so two batches'
    results never meet) and is named in the profile's first URL form."""
    api = _api(storage)
    first = _dialect().stage(api, b'{"a": 1}\n', filename="in.jsonl")
    second = _dialect().stage(api, b'{"b": 2}\n', filename="in.jsonl")
    assert first.response is None and first.input is not None and second.input is not None
    bucket = storage.bucket
    assert bucket.startswith("batchconf-suite-abc123")
    assert first.input.url == f"https://{bucket}.s3.us-east-1.scw.cloud/team/batchconf-abc123/0001-input/in.jsonl"
    assert second.input.url is not None and "/0002-input/in.jsonl" in second.input.url
    assert storage.get("team/batchconf-abc123/0001-input/in.jsonl") == b'{"a": 1}\n'
    assert sorted(storage.keys()) == [
        "team/batchconf-abc123/0001-input/in.jsonl",
        "team/batchconf-abc123/0002-input/in.jsonl",
    ]


def test_put_input_in_another_form_and_the_create_body(storage: ObjectStorage) -> None:
    api = _api(storage)
    source = _dialect().put_input(api, b"{}\n", "team/x/in.jsonl", form="s3://{bucket}/{key}")
    assert source == Input.of_url(f"s3://{storage.bucket}/team/x/in.jsonl")
    body = _dialect().create_body(source, BatchParams())
    assert body == {
        "input_file_id": f"s3://{storage.bucket}/team/x/in.jsonl",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    assert _dialect().input_of(body) == source


def test_without_a_bucket_staging_is_a_harness_error_naming_the_options() -> None:
    with pytest.raises(SubmitError, match="--s3-endpoint-url"):
        _dialect().stage(_api(None), b"{}\n")


def test_missing_input_names_an_object_nobody_wrote(storage: ObjectStorage) -> None:
    url = _dialect().missing_input(7, _api(storage)).url
    assert url == f"https://{storage.bucket}.s3.us-east-1.scw.cloud/team/batchconf-abc123/batchconf-missing-7.jsonl"
    assert _dialect().missing_input(7).url == "s3://batchconf-missing-7/batchconf-missing-7.jsonl"


def _lines(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


OK = {"id": "r1", "custom_id": "a", "response": {"status_code": 200, "request_id": "q", "body": {}}, "error": None}
BAD = {"id": "r2", "custom_id": "b", "response": {"status_code": 400, "request_id": "q", "body": {}}, "error": None}


def test_results_are_read_from_the_objects_the_file_ids_name(storage: ObjectStorage) -> None:
    """Output and error file ids are object URLs, in any of the profile's forms."""
    storage.put("team/d/in_output.jsonl", _lines(OK))
    storage.put("team/d/in_error.jsonl", _lines(BAD))
    state = {
        "id": "5f0c0000-0000-4000-8000-000000000001",
        "request_counts": {"total": 2, "completed": 1, "failed": 1},
        "output_file_id": f"https://{storage.bucket}.s3.fr-par.scw.cloud/team/d/in_output.jsonl",
        "error_file_id": f"s3://{storage.bucket}/team/d/in_error.jsonl",
    }
    results = _dialect().fetch_results(_api(storage), state)
    assert [r["custom_id"] for r in results.successes] == ["a"]
    assert [r["custom_id"] for r in results.failures] == ["b"]
    assert results.raw == {"output_file_id": _lines(OK), "error_file_id": _lines(BAD)}


def test_a_missing_result_object_names_the_key_and_the_fact(storage: ObjectStorage) -> None:
    state = {"id": "b", "output_file_id": f"s3://{storage.bucket}/team/d/none_output.jsonl", "error_file_id": None}
    with pytest.raises(ResultsUnavailable) as info:
        _dialect().fetch_results(_api(storage), state)
    message = str(info.value)
    assert "no such object" in message and "team/d/none_output.jsonl" in message
    assert "storage.output_key" in message and "[scw-howto]" in message


def test_a_result_url_elsewhere_is_not_fetched(storage: ObjectStorage) -> None:
    state = {"id": "b", "output_file_id": "https://files.example.com/out.jsonl", "error_file_id": None}
    with pytest.raises(ResultsUnavailable, match="not an object URL"):
        _dialect().fetch_results(_api(storage), state)


def test_result_keys_are_the_profiles_templates_beside_the_input() -> None:
    keys = _dialect().result_keys("a/b/input.jsonl", "batch-1")
    assert keys == {
        "primary": ("a/b/input_output.jsonl", "a/b/input_error.jsonl"),
        "alternative": ("a/b/input-output.jsonl", "a/b/input-error.jsonl"),
    }
    assert _dialect().result_keys("input.jsonl", "b")["primary"] == ("input_output.jsonl", "input_error.jsonl")


# -- The bucket --------------------------------------------------------------------------------


def test_urls_map_back_to_bucket_and_key(storage: ObjectStorage) -> None:
    forms = _dialect().forms()
    assert storage.address("s3://b/k/x.jsonl", forms) == ("b", "k/x.jsonl")
    assert storage.address("https://my-bucket.s3.nl-ams.scw.cloud/dir/in%20put.jsonl", forms) == (
        "my-bucket",
        "dir/in put.jsonl",
    )
    # In-process, path-style URLs are AWS's own host (moto answers them).
    assert storage.address("https://s3.us-east-1.amazonaws.com/b/k", forms) == ("b", "k")
    assert storage.address("https://example.com/b/k", forms) is None
    assert storage.address("s3://b", forms) is None
    assert storage.url("k", "") == f"https://s3.us-east-1.amazonaws.com/{storage.bucket}/k"
    presigned = storage.presigned_url("team/x.jsonl")
    assert "?" in presigned


def test_a_served_endpoint_names_path_style_urls() -> None:
    served = ObjectStorage(client=None, bucket="b", endpoint_url="http://127.0.0.1:5000")  # type: ignore[arg-type]
    assert served.url("d/k.jsonl", "") == "http://127.0.0.1:5000/b/d/k.jsonl"
    assert served.address("http://127.0.0.1:5000/b/d/k.jsonl") == ("b", "d/k.jsonl")
    assert served.address("http://127.0.0.1:5001/b/d/k.jsonl") is None


def test_connect_uses_a_given_bucket_or_creates_its_own() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        with pytest.raises(StorageError, match=r"'users-bucket' \(s3_bucket\) cannot be reached"):
            connect(endpoint_url=None, bucket="users-bucket", prefix="", run="r1", client=client)
        client.create_bucket(Bucket="users-bucket")
        given = connect(endpoint_url=None, bucket="users-bucket", prefix="", run="r1", client=client)
        assert (given.bucket, given.created) == ("users-bucket", False)
        with pytest.raises(StorageError, match="may not create buckets"):
            given.create_bucket("another")
        # On the emulator's endpoint a named bucket is created when missing.
        mine = connect(endpoint_url=None, bucket="fresh-bucket", prefix="", run="r1", client=client, emulator=True)
        assert mine.created and "fresh-bucket" in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_bucket_policies_on_a_bucket_of_the_suite(storage: ObjectStorage) -> None:
    storage.create_bucket("batchconf-policy-x")
    storage.put_policy("batchconf-policy-x", json.dumps({"Version": "2012-10-17", "Statement": []}))
    storage.put("k", b"x", bucket="batchconf-policy-x")
    assert storage.get("k", bucket="batchconf-policy-x") == b"x"
    storage.remove_bucket("batchconf-policy-x")
    assert storage.get("k", bucket="batchconf-policy-x") is None


def test_bucket_names_and_regions() -> None:
    assert bucket_name_problem("batchconf-suite-0a1b") is None
    assert bucket_name_problem("Bad_Name") is not None
    assert bucket_name_problem("192.168.0.1") is not None
    assert region_of("https://s3.fr-par.scw.cloud") == "fr-par"
    assert region_of("https://s3.eu-west-3.amazonaws.com") == "eu-west-3"
    assert region_of("http://127.0.0.1:5000") is None
    assert region_of(None) is None
