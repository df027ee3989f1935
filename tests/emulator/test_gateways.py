"""OpenAI-compatible providers as their own clients reach them: Azure's AzureOpenAI client.

The openai SDK's `AzureOpenAI(azure_endpoint=..., api_version=...)` sends `/openai/files?api-
version=...` and `/openai/batches?api-version=...` with an `api-key` header; the azure-openai
profile serves that form beside `/openai/v1/...`.
"""

from __future__ import annotations

import io
import json

import openai

from emulator import Emulator


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
