"""Synchronous HTTP errors: create-time 400s, unknown ids (404), bad uploads, bad queries.

The SDK must raise the class its status maps to, with `.code`, `.param` and `.type` read
from the OpenAI envelope; every error body is also schema-checked as openai/error by the
response hook. Requests the SDK cannot express go through a raw httpx client.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import openai
import pytest

from emulator import Emulator
from schemas import load_profile
from tests.emulator._support import CHAT, Harness, chat_line, check, to_jsonl, upload

ENVELOPE_KEYS = {"message", "type", "param", "code"}


def _create(client: openai.OpenAI, file_id: str, **overrides: Any) -> openai.types.Batch:
    params: dict[str, Any] = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h", **overrides}
    return client.batches.create(**params)


def _bad_request(exc: pytest.ExceptionInfo[openai.BadRequestError]) -> tuple[str | None, str | None, str]:
    err = exc.value
    assert err.status_code == 400
    assert err.type == "invalid_request_error"
    assert isinstance(err.body, dict) and set(err.body) == ENVELOPE_KEYS
    assert err.request_id and err.request_id.startswith("req_")
    return err.code, err.param, str(err.body["message"])


def test_bad_endpoint(sdk: Harness) -> None:
    """An endpoint outside the profile's list is a 400 invalid_value on param endpoint, naming the value."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    with pytest.raises(openai.BadRequestError) as exc:
        _create(client, f.id, endpoint="/v1/invalid/endpoint")
    code, param, message = _bad_request(exc)
    assert (code, param) == ("invalid_value", "endpoint")
    assert "'/v1/invalid/endpoint'" in message and "'/v1/chat/completions'" in message


def test_bad_completion_window(sdk: Harness, subtests: pytest.Subtests) -> None:
    """Any completion_window but 24h (1h, 48h, invalid, empty) is a 400 on param completion_window."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    for window in ("1h", "48h", "invalid", ""):
        with subtests.test(window=window):
            with pytest.raises(openai.BadRequestError) as exc:
                _create(client, f.id, completion_window=window)
            code, param, message = _bad_request(exc)
            assert (code, param) == ("invalid_value", "completion_window")
            assert f"'{window}'" in message and "'24h'" in message


BAD_METADATA: dict[str, tuple[dict[str, Any], str, str]] = {
    "17-pairs": ({f"k{i}": "v" for i in range(17)}, "object_above_max_properties", "metadata"),
    "key-65": ({"k" * 65: "v"}, "string_above_max_length", "metadata"),
    "value-513": ({"key": "v" * 513}, "string_above_max_length", "metadata.key"),
    "array-value": ({"tags": ["a", "b"]}, "invalid_type", "metadata.tags"),
    "number-value": ({"n": 3}, "invalid_type", "metadata.n"),
    "null-value": ({"n": None}, "invalid_type", "metadata.n"),
}


def test_bad_metadata(sdk: Harness, subtests: pytest.Subtests) -> None:
    """Metadata over 16 pairs, 64-char keys, 512-char values, or with non-string values is a 400."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    for case, (metadata, code, param) in BAD_METADATA.items():
        with subtests.test(case=case):
            with pytest.raises(openai.BadRequestError) as exc:
                _create(client, f.id, metadata=metadata)
            assert _bad_request(exc)[:2] == (code, param)
    assert client.batches.list().data == []


def test_metadata_at_the_limits(sdk: Harness) -> None:
    """16 pairs, a 64-char key and a 512-char value are accepted and echoed."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    meta = {f"k{i}": "v" for i in range(15)} | {"k" * 64: "v" * 512}
    assert _create(client, f.id, metadata=meta).metadata == meta
    assert _create(client, f.id, metadata=None).metadata is None


def test_metadata_type_message(sdk: Harness) -> None:
    """The wrong-type message follows the observed text: expected a string, but got an array instead."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    with pytest.raises(openai.BadRequestError) as exc:
        _create(client, f.id, metadata={"tags": ["x"]})
    assert _bad_request(exc)[2] == "Invalid type for 'metadata.tags': expected a string, but got an array instead."


def test_missing_create_parameter(sdk: Harness, subtests: pytest.Subtests) -> None:
    """A create body without a required field (sent raw) is a 400 missing_required_parameter naming it."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    raw = sdk.raw()
    for missing in ("input_file_id", "endpoint", "completion_window"):
        with subtests.test(missing=missing):
            body = {"input_file_id": f.id, "endpoint": CHAT, "completion_window": "24h"}
            del body[missing]
            resp = raw.post("/v1/batches", json=body)
            assert resp.status_code == 400
            assert resp.json()["error"] == {
                "message": f"Missing required parameter: '{missing}'.",
                "type": "invalid_request_error",
                "param": missing,
                "code": "missing_required_parameter",
            }


_BASE = b'"input_file_id": "f", "endpoint": "/v1/chat/completions", "completion_window": "24h"'


MALFORMED_CREATE: dict[str, tuple[bytes, str | None]] = {
    "not-json": (b"{not json", None),
    "not-an-object": (b"[1, 2]", None),
    "id-not-string": (
        b'{"input_file_id": 7, "endpoint": "/v1/chat/completions", "completion_window": "24h"}',
        "input_file_id",
    ),
    "metadata-not-object": (b"{" + _BASE + b', "metadata": "x"}', "metadata"),
    "expiry-too-short": (
        b"{" + _BASE + b', "output_expires_after": {"anchor": "created_at", "seconds": 10}}',
        "output_expires_after.seconds",
    ),
    "expiry-bad-anchor": (
        b"{" + _BASE + b', "output_expires_after": {"anchor": "now", "seconds": 3600}}',
        "output_expires_after.anchor",
    ),
    "expiry-not-object": (b"{" + _BASE + b', "output_expires_after": "1h"}', "output_expires_after"),
}


def test_malformed_create_body(sync_sdk: Harness, subtests: pytest.Subtests) -> None:
    """A create body that is not JSON, not an object, or mistyped is a 400 envelope, never a 500."""
    raw = sync_sdk.raw()
    for case, (content, param) in MALFORMED_CREATE.items():
        with subtests.test(case=case):
            resp = raw.post("/v1/batches", content=content, headers={"content-type": "application/json"})
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"]["param"] == param


def test_unknown_batch_is_404(sdk: Harness) -> None:
    """Retrieve and cancel of an unknown batch id raise NotFoundError with param id."""
    client = sdk.client()
    for call in (client.batches.retrieve, client.batches.cancel):
        with pytest.raises(openai.NotFoundError) as exc:
            call("batch_doesnotexist")
        assert exc.value.status_code == 404
        assert exc.value.param == "id"
        assert "batch_doesnotexist" in str(exc.value.body["message"])  # type: ignore[index]


def test_unknown_file_is_404(sdk: Harness) -> None:
    """Retrieve, content and delete of an unknown file id raise NotFoundError: No such File object."""
    client = sdk.client()
    calls = (client.files.retrieve, client.files.content, client.files.delete)
    for call in calls:
        with pytest.raises(openai.NotFoundError) as exc:
            call("file-doesnotexist")
        assert exc.value.param == "id"
        assert exc.value.body["message"] == "No such File object: file-doesnotexist"  # type: ignore[index]


def test_deleted_file_is_gone(sdk: Harness) -> None:
    """After delete, retrieve, content and a second delete of the file are 404s."""
    client = sdk.client()
    f = upload(client, [chat_line("a")])
    assert client.files.delete(f.id).deleted is True
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(f.id)


NOT_JSONL: dict[str, tuple[str, bytes]] = {
    "plain-text-txt": ("notes.txt", b"this is not a batch file\n"),
    "first-line-not-json": ("input.jsonl", b"this is not json\n" + to_jsonl([chat_line("a")])),
    "first-line-not-object": ("input.jsonl", b'"a json string"\n'),
    "not-json-without-extension": ("upload", b"plain words\n"),
}


def test_non_jsonl_batch_upload(sdk: Harness, subtests: pytest.Subtests) -> None:
    """A purpose=batch upload whose content is not JSONL is a 400: Invalid file format for
    Batch API. Must be .jsonl (openai profile: files.check_first_line_is_json)."""
    client = sdk.client()
    for case, (filename, content) in NOT_JSONL.items():
        with subtests.test(case=case):
            with pytest.raises(openai.BadRequestError) as exc:
                client.files.create(file=(filename, content), purpose="batch")
            code, param, message = _bad_request(exc)
            assert (code, param, message) == (None, None, "Invalid file format for Batch API. Must be .jsonl")
    assert client.files.list().data == []


#: JSONL content under names other than *.jsonl: the openai profile does not refuse a name
#: (files.require_jsonl_extension = false); the SDK names raw bytes "upload".
JSONL_UNDER_OTHER_NAMES = ("upload", "input.txt", "input.json", "INPUT.JSONL")


def test_jsonl_upload_is_accepted_whatever_its_name(sdk: Harness, subtests: pytest.Subtests) -> None:
    """JSONL content uploaded with purpose=batch is accepted under any name (raw bytes too,
    which the SDK names "upload", as the openai-batch library sends them), keeps its name, and
    runs as a batch."""
    client = sdk.client()
    content = to_jsonl([chat_line("a")])
    for filename in JSONL_UNDER_OTHER_NAMES:
        with subtests.test(filename=filename):
            f = client.files.create(file=(filename, content), purpose="batch")
            assert (f.filename, f.bytes, f.status) == (filename, len(content), "processed")
    raw = client.files.create(file=content, purpose="batch")
    assert raw.filename == "upload"
    batch = _create(client, raw.id)
    assert batch.input_file_id == raw.id and batch.status == "validating"


def test_a_profile_that_requires_the_extension_refuses_other_names() -> None:
    """Where a profile says the provider refuses a batch file not named *.jsonl
    (files.require_jsonl_extension), JSONL content under another name is a 400
    invalid_file_format, and a *.jsonl name (any case) is accepted."""
    base = load_profile("openai")
    profile = dataclasses.replace(base, files=dataclasses.replace(base.files, require_jsonl_extension=True))
    content = to_jsonl([chat_line("a")])
    with Emulator(profile, api_keys=("sk-ext",)) as emu:
        client = emu.openai_client(api_key="sk-ext", max_retries=0)
        for filename in ("upload", "input.txt", "input.json"):
            with pytest.raises(openai.BadRequestError) as exc:
                client.files.create(file=(filename, content), purpose="batch")
            assert _bad_request(exc) == (None, None, "Invalid file format for Batch API. Must be .jsonl"), filename
        assert client.files.create(file=("INPUT.JSONL", content), purpose="batch").status == "processed"
        assert [f.filename for f in client.files.list().data] == ["INPUT.JSONL"]


def test_semantically_bad_jsonl_is_accepted_at_upload(sdk: Harness) -> None:
    """Well-formed JSONL with bad lines (no method) uploads fine; the problem surfaces at validation."""
    client = sdk.client()
    f = client.files.create(file=("in.jsonl", b'{"custom_id": "a"}\n{"x": 1}\n'), purpose="batch")
    assert f.status == "processed"


def test_other_purposes_are_not_sniffed(sdk: Harness) -> None:
    """Non-batch purposes accept any content and name, and do not expire by default."""
    client = sdk.client()
    f = client.files.create(file=("notes.txt", b"plain text"), purpose="assistants")
    assert (f.purpose, f.filename, f.bytes, f.expires_at) == ("assistants", "notes.txt", 10, None)


def test_download_refused_for_some_purposes(sdk: Harness, subtests: pytest.Subtests) -> None:
    """files.content of an assistants or user_data file is a 400 naming the purpose."""
    client = sdk.client()
    for purpose in ("assistants", "user_data"):
        f = client.files.create(file=("notes.txt", b"plain text"), purpose=purpose)
        with subtests.test(purpose=purpose):
            with pytest.raises(openai.BadRequestError) as exc:
                client.files.content(f.id)
            assert _bad_request(exc)[2] == f"Not allowed to download files of purpose: {purpose}"


def test_bad_upload_purpose(sdk: Harness) -> None:
    """An upload purpose outside the six accepted ones (batch_output included) is a 400 on purpose."""
    client = sdk.client()
    for purpose in ("batch_output", "nonsense"):
        with pytest.raises(openai.BadRequestError) as exc:
            client.files.create(file=("in.jsonl", to_jsonl([chat_line("a")])), purpose=purpose)  # type: ignore[arg-type]
        assert _bad_request(exc)[:2] == ("invalid_value", "purpose")


_PART = {"file": ("in.jsonl", b'{"a": 1}\n')}
MALFORMED_UPLOADS: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    "no-file": ({"other": ("x", b"y")}, {"purpose": "batch"}, "file"),
    "no-purpose": (_PART, {}, "purpose"),
    "seconds-not-int": (_PART, {"purpose": "batch", "expires_after[seconds]": "soon"}, "expires_after[seconds]"),
    "bad-anchor": (
        _PART,
        {"purpose": "batch", "expires_after[anchor]": "now", "expires_after[seconds]": "3600"},
        "expires_after[anchor]",
    ),
}


def test_malformed_upload(sync_sdk: Harness, subtests: pytest.Subtests) -> None:
    """Uploads missing a part or with bad expires_after fields are 400s naming the field."""
    raw = sync_sdk.raw()
    for case, (files, data, param) in MALFORMED_UPLOADS.items():
        with subtests.test(case=case):
            resp = raw.post("/v1/files", data=data, files=files)
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"]["param"] == param


def test_upload_not_multipart(sync_sdk: Harness) -> None:
    """An upload that is not multipart at all is a 400 envelope, never a 500."""
    resp = sync_sdk.raw().post(
        "/v1/files", content=b'{"purpose": "batch"}', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    check("openai/error", resp.json())


def test_bad_list_query(sync_sdk: Harness, subtests: pytest.Subtests) -> None:
    """Out-of-range limit or an unknown order is a 400 invalid_value naming the parameter."""
    raw = sync_sdk.raw()
    cases = [
        ("/v1/batches", {"limit": "0"}),
        ("/v1/batches", {"limit": "101"}),
        ("/v1/batches", {"limit": "ten"}),
        ("/v1/files", {"limit": "0"}),
        ("/v1/files", {"limit": "10001"}),
        ("/v1/files", {"order": "sideways"}),
    ]
    for path, params in cases:
        with subtests.test(path=path, **params):
            resp = raw.get(path, params=params)
            assert resp.status_code == 400
            err = resp.json()["error"]
            assert (err["code"], err["param"]) == ("invalid_value", next(iter(params)))


def test_list_limits_at_the_bounds(sync_sdk: Harness) -> None:
    """limit=100 for batches and limit=10000 for files are accepted."""
    raw = sync_sdk.raw()
    assert raw.get("/v1/batches", params={"limit": 100}).status_code == 200
    assert raw.get("/v1/files", params={"limit": 10000}).status_code == 200


def test_unknown_cursor_gives_an_empty_page(sync_sdk: Harness) -> None:
    """An after= id that is not in the list gives an empty last page (so pagination stops)."""
    client = sync_sdk.client()
    upload(client, [chat_line("a")])
    page = sync_sdk.raw().get("/v1/files", params={"after": "file-unknown"}).json()
    assert (page["data"], page["has_more"]) == ([], False)


def test_unknown_route_and_method(sync_sdk: Harness) -> None:
    """An unknown path is a 404 and a wrong method a 405, both in the envelope."""
    raw = sync_sdk.raw()
    resp = raw.get("/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "unknown_url"
    resp = raw.put("/v1/batches")
    assert resp.status_code == 405
    check("openai/error", resp.json())


def test_sdk_error_surface(sdk: Harness) -> None:
    """SDK exceptions carry status_code, request_id and the parsed envelope as .body."""
    client = sdk.client()
    with pytest.raises(openai.NotFoundError) as exc:
        client.batches.retrieve("batch_nope")
    err = exc.value
    assert isinstance(err, openai.APIStatusError)
    assert err.response.headers["x-request-id"] == err.request_id
    assert err.response.headers["content-type"].startswith("application/json")
    assert err.type == "invalid_request_error"
