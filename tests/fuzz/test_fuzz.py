"""schemathesis against the served HTTP surface of every dialect (issue 12, hostile input).

Each operation of each document is one test: schemathesis sends its explicit examples, its
coverage cases (boundaries, missing and mistyped fields) and `BATCHCONF_FUZZ_EXAMPLES`
(default 25) generated requests per generation mode (valid and invalid), derandomized, so a
run is the same on every machine. Every other request is aimed at objects that exist (a file,
a running, a finished and a failed batch), so the handlers behind a 404 are fuzzed too. The
checks are those of tests/fuzz/_harness.py: no 5xx, no hang, no traceback in a body, status,
media type and body as our document says.

The surfaces:
- openai: schemas/openapi/openai-openapi-batch.overlay.yaml (the official text with our
  nulls and 4xx responses), every operation, at /v1;
- scaigrid: schemas/openapi/scaigrid-batch.yaml (ours) at /v1, and its OpenAI-compatible
  surface with the openai document at /oai/v1;
- scaleway: the openai document's batch operations (its profile has no Files API) at /v1.

Run it bigger: `BATCHCONF_FUZZ_EXAMPLES=500 pytest tests/fuzz -p no:cacheprovider`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from schemas import load_profile

from ._harness import Live, Served, fuzz_settings, jsonl, load_schema, poll_until, run_case, settle_on
from ._openapi import load_document

OPENAI_DOC = load_document("openai-openapi-batch.overlay.yaml")
SCAIGRID_DOC = load_document("scaigrid-batch.yaml")


def _in_profile(name: str, base_path: str = "") -> Any:
    """`keep(METHOD, path)` for the operations profile `name` serves (paths relative to its base)."""
    profile = load_profile(name)
    base = base_path or profile.http.base_path
    served = {route for op in profile.http.operations if (route := profile.http.route(op))}
    return lambda method, path: (method, base + path) in served


OPENAI = load_schema(OPENAI_DOC, _in_profile("openai"))
SCAIGRID = load_schema(SCAIGRID_DOC, _in_profile("scaigrid"))
SCAIGRID_OAI = load_schema(OPENAI_DOC)
SCALEWAY = load_schema(OPENAI_DOC, _in_profile("scaleway"))


#: Terminal statuses of the OpenAI dialect and of ScaiGrid's native one.
_TERMINAL = ("completed", "failed", "expired", "cancelled")


def _chat(custom_id: str, model: str, **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": f"Say {custom_id}."}], **extra}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def _openai_live(served: Served, base_path: str, model: str) -> Live:
    """A batch input file, a finished batch with an output and an error file, a running batch
    and a failed one; creates aimed at the input file."""
    with served.client(base_path) as http:
        lines = jsonl([_chat("ok-1", model), _chat("bad-1", model, batchconf_fault={"status_code": 400})])
        upload = http.post("/files", files={"file": ("input.jsonl", lines)}, data={"purpose": "batch"})
        assert upload.status_code == 200, upload.text
        file_id = upload.json()["id"]
        create = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        running = http.post("/batches", json=create).json()["id"]
        done = http.post("/batches", json=create).json()["id"]
        finished = poll_until(lambda: http.get(f"/batches/{done}").json(), lambda b: b["status"] == "completed")
        failed = http.post("/batches", json={**create, "input_file_id": "file-missing"}).json()["id"]
        # Files of their own for DELETE and batches of their own for cancel, so the other
        # operations keep finding theirs as they were.
        disposable = [
            http.post("/files", files={"file": (f"d{i}.jsonl", lines)}, data={"purpose": "batch"}).json()["id"]
            for i in range(3)
        ]
        cancellable = [http.post("/batches", json=create).json()["id"] for _ in range(3)]
    files = [file_id, finished["output_file_id"], finished["error_file_id"]]
    assert all(files), finished

    def create_body(body: dict[str, Any], pick: int) -> None:
        body["input_file_id"] = file_id

    return Live(
        ids={"file_id": files, "batch_id": [running, done, failed]},
        only={
            "DELETE /files/{file_id}": {"file_id": disposable},
            "POST /batches/{batch_id}/cancel": {"batch_id": cancellable},
        },
        bodies={"POST /batches": create_body},
        settle=settle_on(served, _TERMINAL),
    )


@pytest.fixture(scope="module")
def openai_served() -> Iterator[tuple[Served, Live]]:
    """The openai profile served, with live objects."""
    with Served.emulating("openai") as served:
        yield served, _openai_live(served, "/v1", load_profile("openai").models.default)


@OPENAI.parametrize()
@fuzz_settings()
def test_openai_operation_survives_fuzzing(case: schemathesis.Case, openai_served: tuple[Served, Live]) -> None:
    """Every OpenAI operation MUST answer any request, valid or not, within the timeout, with
    no 5xx and no traceback, and with a status, media type and body our overlaid OpenAPI
    document allows."""
    served, live = openai_served
    run_case(case, "openai", served.root_url + "/v1", served, live)


INLINE = jsonl(
    [
        {
            "custom_id": "req-1",
            "method": "POST",
            "url": "/v1/inference/chat",
            "body": {"model": "scailabs/poolnoodle-omni", "messages": [{"role": "user", "content": "Summarize"}]},
        },
        {
            "custom_id": "req-2",
            "method": "POST",
            "url": "/v1/inference/embed",
            "body": {"model": "openai/text-embedding-3-small", "input": []},
        },
    ]
)


@pytest.fixture(scope="module")
def scaigrid_served() -> Iterator[tuple[Served, Live, Live]]:
    """The scaigrid profile served, with live objects on its native and its OpenAI surface."""
    import base64

    inline = base64.b64encode(INLINE).decode()
    with Served.emulating("scaigrid") as served:
        with served.client("/v1") as http:
            running = http.post("/inference/batch", json={"input_file_base64": inline}).json()["id"]
            done = http.post("/inference/batch", json={"input_file_base64": inline}).json()["id"]
            poll_until(lambda: http.get(f"/inference/batch/{done}").json(), lambda b: b["status"] == "completed")
            broken = base64.b64encode(b"{not json\n").decode()
            failed = http.post("/inference/batch", json={"input_file_base64": broken}).json()["id"]
            cancellable = [
                http.post("/inference/batch", json={"input_file_base64": inline}).json()["id"] for _ in range(3)
            ]

        def create_body(body: dict[str, Any], pick: int) -> None:
            body.pop("input_file_url", None)
            body["input_file_base64"] = inline

        native = Live(
            ids={"batch_id": [running, done, failed]},
            only={"POST /inference/batch/{batch_id}/cancel": {"batch_id": cancellable}},
            bodies={"POST /inference/batch": create_body},
            settle=settle_on(served, _TERMINAL),
        )
        yield served, native, _openai_live(served, "/oai/v1", "scailabs/poolnoodle-omni")


@SCAIGRID.parametrize()
@fuzz_settings()
def test_scaigrid_native_operation_survives_fuzzing(
    case: schemathesis.Case, scaigrid_served: tuple[Served, Live, Live]
) -> None:
    """Every operation of ScaiGrid's native API MUST answer any request within the timeout,
    with no 5xx and no traceback, and with a status, media type and body (each results line
    included) that our ScaiGrid OpenAPI document allows."""
    served, native, _ = scaigrid_served
    run_case(case, "scaigrid", served.root_url + "/v1", served, native)


@SCAIGRID_OAI.parametrize()
@fuzz_settings()
def test_scaigrid_openai_surface_survives_fuzzing(
    case: schemathesis.Case, scaigrid_served: tuple[Served, Live, Live]
) -> None:
    """ScaiGrid's OpenAI-compatible surface (/oai/v1) MUST hold to the overlaid OpenAI
    document as the openai profile does: no 5xx, no hang, no traceback, documented answers."""
    served, _, compat = scaigrid_served
    run_case(case, "scaigrid /oai/v1", served.root_url + "/oai/v1", served, compat)


@pytest.fixture(scope="module")
def scaleway_served() -> Iterator[tuple[Served, Live]]:
    """The scaleway profile served, with an input object in the user's bucket and batches
    on it."""
    model = load_profile("scaleway").models.default
    with Served.emulating("scaleway") as served:
        s3 = served.emulator.s3_client()
        s3.create_bucket(Bucket="fuzz-bucket")
        s3.put_object(Bucket="fuzz-bucket", Key="input.jsonl", Body=jsonl([_chat("ok-1", model)]))
        url = "s3://fuzz-bucket/input.jsonl"
        create = {"input_file_id": url, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        with served.client("/v1") as http:
            running = http.post("/batches", json=create).json()["id"]
            done = http.post("/batches", json=create).json()["id"]
            poll_until(lambda: http.get(f"/batches/{done}").json(), lambda b: b["status"] == "completed")
            failed = http.post("/batches", json={**create, "input_file_id": "s3://fuzz-bucket/none.jsonl"}).json()["id"]
            cancellable = [http.post("/batches", json=create).json()["id"] for _ in range(3)]

        def create_body(body: dict[str, Any], pick: int) -> None:
            body["input_file_id"] = url

        yield (
            served,
            Live(
                ids={"batch_id": [running, done, failed]},
                only={"POST /batches/{batch_id}/cancel": {"batch_id": cancellable}},
                bodies={"POST /batches": create_body},
                settle=settle_on(served, _TERMINAL),
            ),
        )


@SCALEWAY.parametrize()
@fuzz_settings()
def test_scaleway_operation_survives_fuzzing(case: schemathesis.Case, scaleway_served: tuple[Served, Live]) -> None:
    """Every operation of Scaleway's OpenAI-compatible batch API MUST answer any request within
    the timeout, with no 5xx and no traceback, and as the overlaid OpenAI document allows."""
    served, live = scaleway_served
    run_case(case, "scaleway", served.root_url + "/v1", served, live)
