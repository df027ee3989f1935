"""OpenAI-compatible providers as their own clients reach them: Azure's AzureOpenAI client,
the OVHcloud blog's code against `batchconf serve --profile ovhcloud`, and the facts the
gateways' and providers' documents add (with the mutations that break each).

The openai SDK's `AzureOpenAI(azure_endpoint=..., api_version=...)` sends `/openai/files?api-
version=...` and `/openai/batches?api-version=...` with an `api-key` header; the azure-openai
profile serves that form beside `/openai/v1/...`.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import emulator
from emulator import Emulator
from tests.emulator._support import ServerProcess, start_server


def test_azure_client_unmodified() -> None:
    """AzureOpenAI uploads, creates with Azure's `/chat/completions` endpoint form, polls and
    downloads; without api-version the pre-v1 routes answer 400 naming it."""
    line = {
        "custom_id": "r-1",
        "method": "POST",
        "url": "/chat/completions",
        "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "hello there"}]},
    }
    with Emulator(profile="azure-openai") as emu:
        client = openai.AzureOpenAI(
            azure_endpoint=emu.root_url,
            api_key=emu.api_key,
            api_version="2024-10-21",
            http_client=emu.http_client(),  # type: ignore[arg-type]
            max_retries=0,
        )
        uploaded = client.files.create(
            file=("in.jsonl", io.BytesIO(json.dumps(line).encode() + b"\n")), purpose="batch"
        )
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")
        for _ in range(10):
            batch = client.batches.retrieve(batch.id)
            if batch.status == "completed":
                break
        assert batch.status == "completed" and batch.output_file_id
        record = json.loads(client.files.content(batch.output_file_id).text)
        assert record["custom_id"] == "r-1" and record["response"]["status_code"] == 200
        refused = emu.http_client().get("/openai/batches", headers={"api-key": emu.api_key})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "api-version"
        v1 = emu.http_client().get("/openai/v1/batches", headers={"api-key": emu.api_key})
        assert [b["id"] for b in v1.json()["data"]] == [batch.id]


def test_ovhcloud_model_outside_the_catalogue_fails_its_line() -> None:
    """OVHcloud: 'The model field must reference a model available in the AI Endpoints
    catalog'; an invalid model name is a failed request in the error file, the batch completes."""
    lines = [
        {
            "custom_id": f"r-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
        }
        for i, model in enumerate(["no-such-model", "no-such-model"])
    ]
    data = b"".join(json.dumps(item).encode() + b"\n" for item in lines)
    with Emulator(profile="ovhcloud") as emu:
        client = emu.openai_client()
        uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="48h"
        )
        for _ in range(10):
            batch = client.batches.retrieve(batch.id)
            if batch.status == "completed":
                break
        assert batch.status == "completed" and batch.output_file_id is None and batch.error_file_id
        errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
        assert {e["response"]["status_code"] for e in errors} == {404}
        assert {e["response"]["body"]["error"]["code"] for e in errors} == {"model_not_found"}


def test_truefoundry_requires_the_provider_header() -> None:
    """TrueFoundry routes each request by x-tfy-provider-name: without it the gateway cannot
    choose a provider (400 naming the header); the emulator's own clients send the variant's
    value, so the SDK works unmodified."""
    with Emulator(profile="truefoundry+bedrock") as emu:
        http = emu.http_client()
        assert http.headers["x-tfy-provider-name"] == "bedrock"
        assert http.get("/batches").status_code == 200
        refused = http.get("/batches", headers={"x-tfy-provider-name": ""})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "x-tfy-provider-name"
        assert emu.openai_client().batches.list().data == []


# -- The OVHcloud blog's code against `batchconf serve --profile ovhcloud` ------------------------

OVH_KEY = "sk-ovh-test-1"

# ovhcloud-batch-mode.txt, "Step 2: Upload the File and Create the Batch": the complete Python
# code, unmodified (its indentation, lost in the text copy, restored). It reads the base URL
# and the key from OVH_AI_ENDPOINTS_BASE_URL and OVH_AI_ENDPOINTS_ACCESS_TOKEN, which the test
# points at the emulator; it polls every 30 s, so the server runs with instant phases and the
# first poll sees a terminal status.
OVH_BLOG_CODE = textwrap.dedent(
    """
    import os
    import time

    from openai import OpenAI

    # Load environment variables
    _OVH_AI_ENDPOINTS_ACCESS_TOKEN = os.environ["OVH_AI_ENDPOINTS_ACCESS_TOKEN"]
    _OVH_AI_ENDPOINTS_BASE_URL = os.environ["OVH_AI_ENDPOINTS_BASE_URL"]

    # Initialize the OpenAI-compatible client targeting OVHcloud AI Endpoints
    client = OpenAI(
        base_url=_OVH_AI_ENDPOINTS_BASE_URL,
        api_key=_OVH_AI_ENDPOINTS_ACCESS_TOKEN,
    )

    # 1. Upload the input JSONL file with purpose="batch"
    print("📤 Uploading input file...")
    batch_input_file = client.files.create(
        file=open("requests.jsonl", "rb"),
        purpose="batch",
    )
    print(f"✅ Uploaded file id: {batch_input_file.id}")

    # 2. Create the batch referencing the uploaded file
    print("🚀 Creating batch...")
    batch = client.batches.create(
        input_file_id=batch_input_file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"description": "Batch mode example - OVHcloud AI Endpoints"},
    )
    print(f"✅ Batch created: {batch.id} (status: {batch.status})")

    # 3. Poll the batch status until it reaches a terminal state
    print("⏳ Polling batch status...")
    while True:
        current = client.batches.retrieve(batch.id)
        print(f" status={current.status} counts={current.request_counts}")
        if current.status in ("completed", "failed", "expired", "cancelled"):
            break
        time.sleep(30)

    # 4. Download the results (and errors if any)
    final = client.batches.retrieve(batch.id)

    if final.output_file_id:
        print("📥 Downloading results.jsonl...")
        output = client.files.content(final.output_file_id)
        with open("results.jsonl", "wb") as f:
            f.write(output.read())
        print("✅ Results written to results.jsonl")

    if final.error_file_id:
        print("🐛 Downloading errors.jsonl...")
        errors = client.files.content(final.error_file_id)
        with open("errors.jsonl", "wb") as f:
            f.write(errors.read())
        print("🐛 Errors written to errors.jsonl")

    print(f"🏁 Final batch status: {final.status}")
    """
)

# The blog's example requests.jsonl, verbatim.
OVH_BLOG_REQUESTS = (
    '{"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-oss-20b", '
    '"messages": [{"role": "user", "content": "Summarise the plot of Hamlet in two sentences."}]}}\n'
    '{"custom_id": "request-2", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-oss-20b", '
    '"messages": [{"role": "user", "content": "Translate \'Good morning\' into French, Spanish and German."}]}}\n'
)


@pytest.fixture(scope="module")
def ovh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`batchconf serve --profile ovhcloud` on 127.0.0.1, real clock, instant phases."""
    zero = ["--validation-seconds", "0", "--request-seconds", "0", "--finalization-seconds", "0"]
    server = start_server(["--profile", "ovhcloud", "--api-key", OVH_KEY, *zero], tmp_path_factory.mktemp("ovh"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()[-4000:]


def _run_blog_code(server: ServerProcess, workdir: Path, requests: str) -> subprocess.CompletedProcess[str]:
    (workdir / "requests.jsonl").write_text(requests, encoding="utf-8")
    script = workdir / "ovh_batch.py"
    script.write_text(OVH_BLOG_CODE, encoding="utf-8")
    env = {
        "OVH_AI_ENDPOINTS_ACCESS_TOKEN": OVH_KEY,
        "OVH_AI_ENDPOINTS_BASE_URL": server.root_url + "/v1",
        "PATH": "/usr/bin:/bin",
        "PYTHONIOENCODING": "utf-8",
    }
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=workdir, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


def _jsonl_file(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_ovhcloud_blog_code_runs_unmodified(ovh_server: ServerProcess, tmp_path: Path) -> None:
    """The blog's code uploads its example requests.jsonl, creates the batch with metadata,
    polls to `completed` and writes results.jsonl with one record per request in the shape
    of the blog's Step 3 example; no errors.jsonl ('error_file_id will be None if all
    requests succeeded')."""
    done = _run_blog_code(ovh_server, tmp_path, OVH_BLOG_REQUESTS)
    assert "🏁 Final batch status: completed" in done.stdout, done.stdout
    assert done.stdout.count(" status=") == 1, done.stdout  # the first poll was terminal: no sleep
    records = _jsonl_file(tmp_path / "results.jsonl")
    assert sorted(r["custom_id"] for r in records) == ["request-1", "request-2"]
    for record in records:
        assert record["error"] is None and record["response"]["status_code"] == 200
        assert record["response"]["body"]["model"] == "gpt-oss-20b" and record["response"]["body"]["choices"]
    assert not (tmp_path / "errors.jsonl").exists()


def test_ovhcloud_blog_code_gets_an_error_file_for_an_invalid_model_name(
    ovh_server: ServerProcess, tmp_path: Path
) -> None:
    """The blog: 'If some requests in your batch failed (e.g., invalid model name, ...), their
    details will be available in a separate error file ... Each line in errors.jsonl contains
    the custom_id of the failed request along with the error details'. Lines naming a model
    outside the catalogue: the batch completes and the code writes errors.jsonl."""
    requests = OVH_BLOG_REQUESTS.replace('"gpt-oss-20b"', '"gpt-oss-2000b"')
    done = _run_blog_code(ovh_server, tmp_path, requests)
    assert "🏁 Final batch status: completed" in done.stdout, done.stdout
    assert "🐛 Errors written to errors.jsonl" in done.stdout
    errors = _jsonl_file(tmp_path / "errors.jsonl")
    assert sorted(e["custom_id"] for e in errors) == ["request-1", "request-2"]
    assert {e["response"]["status_code"] for e in errors} == {404}
    assert {e["response"]["body"]["error"]["code"] for e in errors} == {"model_not_found"}
    assert not (tmp_path / "results.jsonl").exists()


# -- In-process: the gateway facts and their mutations --------------------------------------------


def _lines(n: int, model: str = "gpt-4o-mini", url: str = "/v1/chat/completions") -> bytes:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi there"}]}
    return b"".join(
        json.dumps({"custom_id": f"r-{i}", "method": "POST", "url": url, "body": body}).encode() + b"\n"
        for i in range(n)
    )


def _statuses(client: openai.OpenAI, data: bytes, endpoint: str = "/v1/chat/completions") -> tuple[list[str], Any]:
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h")  # type: ignore[arg-type]
    seen = [batch.status]
    for _ in range(10):
        batch = client.batches.retrieve(batch.id)
        seen.append(batch.status)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            break
    return seen, batch


@pytest.mark.parametrize("variant", ["bedrock", "vertex"])
def test_truefoundry_bedrock_and_vertex_never_show_finalizing(variant: str) -> None:
    """[tfy] Batch Status Reference: finalizing is '(OpenAI / Azure OpenAI)' only. Behind
    Bedrock and Vertex a batch goes in_progress -> completed; the mutation
    `finalizing_shown_behind_backend` makes it pass through finalizing."""
    with Emulator(profile=f"truefoundry+{variant}") as emu:
        data = _lines(emu.profile.limits.min_requests)
        seen, _ = _statuses(emu.openai_client(), data)
        assert seen == ["validating", "in_progress", "completed"]
        emu.mutations.enable("finalizing_shown_behind_backend")
        seen, _ = _statuses(emu.openai_client(), data)
        assert seen == ["validating", "in_progress", "finalizing", "completed"]
    with Emulator(profile="truefoundry") as emu:
        seen, _ = _statuses(emu.openai_client(), _lines(1))
        assert seen == ["validating", "in_progress", "finalizing", "completed"]
        assert "finalizing_shown_behind_backend" not in emu.mutations.catalogue


def test_truefoundry_failed_batch_names_an_error_file() -> None:
    """[tfy]: 'failed: ... use error_file_id from the batch response to fetch error details'.
    The error file holds one failure line per batch error (the line's custom_id where it has
    one, the line number in the message); OpenAI's own failed batches name none; the
    mutation `failed_batch_without_error_file` drops it."""
    broken = _lines(2) + b"not json\n" + _lines(1).replace(b'"r-0"', b'"r-0"')
    with Emulator(profile="truefoundry") as emu:
        client = emu.openai_client()
        _, batch = _statuses(client, broken)
        assert batch.status == "failed" and batch.output_file_id is None and batch.error_file_id
        lines = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
        assert [(x["custom_id"], x["error"]["code"]) for x in lines] == [
            ("", "invalid_json_line"),
            ("r-0", "duplicate_custom_id"),
        ]
        assert lines[0]["error"]["message"].startswith("Line 3: ") and lines[0]["response"] is None
        emu.mutations.enable("failed_batch_without_error_file")
        _, batch = _statuses(client, broken)
        assert batch.status == "failed" and batch.error_file_id is None
    with Emulator(profile="openai") as emu:
        _, batch = _statuses(emu.openai_client(), broken)
        assert batch.status == "failed" and batch.error_file_id is None


def test_truefoundry_bedrock_refuses_a_small_batch() -> None:
    """[tfy] Best Practices: 'Bedrock: minimum 100 records': three lines fail validation
    with the catalogue's too_few_requests entry; `accept_too_few_requests` lets them run."""
    with Emulator(profile="truefoundry+bedrock") as emu:
        client = emu.openai_client()
        _, batch = _statuses(client, _lines(3))
        assert batch.status == "failed" and batch.errors is not None
        assert [(e.code, e.line) for e in batch.errors.data or []] == [("empty_file", None)]
        emu.mutations.enable("accept_too_few_requests")
        _, batch = _statuses(client, _lines(3))
        assert batch.status == "completed"
    assert "accept_too_few_requests" not in emulator.mutations_for("truefoundry")


def test_truefoundry_provider_header_mutation() -> None:
    """`provider_header_not_required` serves a request that names no provider."""
    with Emulator(profile="truefoundry") as emu:
        http = emu.http_client()
        del http.headers["x-tfy-provider-name"]
        assert http.get("/batches").status_code == 400
        emu.mutations.enable("provider_header_not_required")
        assert http.get("/batches").status_code == 200


def test_azure_endpoint_form_and_responses_lines() -> None:
    """[azure-rest] / [tfy] Azure prerequisites: a batch created with endpoint
    `/chat/completions` runs `/v1/chat/completions` lines and `/v1/responses` lines with
    body.input, each answered by its own url's endpoint."""
    responses = b"".join(
        json.dumps(
            {"custom_id": f"q-{i}", "method": "POST", "url": "/v1/responses", "body": {"model": "m", "input": "hi"}}
        ).encode()
        + b"\n"
        for i in range(2)
    )
    for profile in ("azure-openai", "truefoundry+azure"):
        with Emulator(profile=profile) as emu:
            client = emu.openai_client()
            for data, kind in ((_lines(2), "chat.completion"), (responses, "response")):
                _, batch = _statuses(client, data, endpoint="/chat/completions")
                assert batch.status == "completed" and batch.endpoint == "/chat/completions", profile
                assert batch.output_file_id
                out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
                assert {x["response"]["body"]["object"] for x in out} == {kind}


def test_azure_mutations_refuse_the_pre_v1_form_and_the_api_key_header() -> None:
    """`api_version_form_refused` answers 404 on /openai/...?api-version=; `auth_header_ignored`
    refuses the api-key header (only Authorization: Bearer authenticates)."""
    with Emulator(profile="azure-openai") as emu:
        http = emu.http_client()
        assert http.get("/openai/batches", params={"api-version": "2024-10-21"}).status_code == 200
        emu.mutations.enable("api_version_form_refused")
        refused = http.get("/openai/batches", params={"api-version": "2024-10-21"})
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "unknown_url"
        assert http.get("/openai/v1/batches").status_code == 200
        emu.mutations.set(["auth_header_ignored"])
        assert http.get("/openai/v1/batches").status_code == 401
        bearer = {"Authorization": f"Bearer {emu.api_key}"}
        assert emu.http_client(api_key="").get("/openai/v1/batches", headers=bearer).status_code == 200


def test_ovhcloud_default_window_and_catalogue_mutations() -> None:
    """[ovh-guide]: 'Batch jobs have a default completion window of 48 hours': a create
    without completion_window (raw HTTP) gets 48h and expires_at 48 h after creation;
    `wrong_default_window` gives it another window. `model_catalogue_ignored` serves a
    model outside the catalogue."""
    with Emulator(profile="ovhcloud") as emu:
        http = emu.http_client()
        file_id = http.post(
            "/v1/files", files={"file": ("in.jsonl", _lines(1, "gpt-oss-20b"))}, data={"purpose": "batch"}
        ).json()["id"]
        body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions"}
        created = http.post("/v1/batches", json=body).json()
        assert created["completion_window"] == "48h" and created["expires_at"] == created["created_at"] + 172800
        emu.mutations.enable("wrong_default_window")
        assert http.post("/v1/batches", json=body).json()["completion_window"] == "24h"
        client = emu.openai_client()
        _, batch = _statuses(client, _lines(2, "no-such-model"))
        assert batch.output_file_id is None and batch.error_file_id
        emu.mutations.set(["model_catalogue_ignored"])
        _, batch = _statuses(client, _lines(2, "no-such-model"))
        assert batch.status == "completed" and batch.error_file_id is None and batch.output_file_id


def test_azure_client_against_the_served_emulator(tmp_path: Path) -> None:
    """`AzureOpenAI(azure_endpoint=..., api_version=...)` unmodified against `batchconf serve
    --profile azure-openai` on 127.0.0.1: upload, create with Azure's `/chat/completions`
    form, poll, download; the batch is the same under /openai/v1."""
    key = "sk-azure-test-1"
    zero = ["--validation-seconds", "0", "--request-seconds", "0", "--finalization-seconds", "0"]
    server = start_server(["--profile", "azure-openai", "--api-key", key, *zero], tmp_path)
    try:
        server.wait_ready()
        client = openai.AzureOpenAI(
            azure_endpoint=server.root_url, api_key=key, api_version="2024-10-21", max_retries=0
        )
        line = {
            "custom_id": "task-0",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-batch", "messages": [{"role": "user", "content": "When was Microsoft founded?"}]},
        }
        uploaded = client.files.create(
            file=("test.jsonl", io.BytesIO(json.dumps(line).encode() + b"\n")), purpose="batch"
        )
        batch = client.batches.create(input_file_id=uploaded.id, endpoint="/chat/completions", completion_window="24h")
        batch = client.batches.retrieve(batch.id)
        assert batch.status == "completed" and batch.output_file_id, batch
        record = json.loads(client.files.content(batch.output_file_id).text)
        assert record["custom_id"] == "task-0" and record["response"]["status_code"] == 200
        v1 = openai.OpenAI(base_url=server.root_url + "/openai/v1", api_key="unused", default_headers={"api-key": key})
        assert v1.batches.retrieve(batch.id).output_file_id == batch.output_file_id
    finally:
        server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()[-4000:]
