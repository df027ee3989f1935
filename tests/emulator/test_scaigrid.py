"""ScaiGrid's native API, served: the provider document's flow over HTTP.

`batchconf serve --profile scaigrid` (per-poll progression, virtual clock) with its storage
on a moto S3 server, so that a client can put its input in a bucket and hand over a
pre-signed URL, as the document describes; webhooks go to a receiver on 127.0.0.1. The
in-process tests cover what needs the clock or the emulator's own hands: a window that runs
out, cancel with partial results, the concurrency quota.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from conformance.receiver import WebhookReceiver
from emulator import Emulator
from schemas import validate
from tests.emulator._support import ServerProcess, start_server

KEY = "sk-scaigrid-test-1"
OTHER = "sk-scaigrid-test-2"

CHAT = "/v1/inference/chat"
EMBED = "/v1/inference/embed"


def chat(custom_id: str, text: str = "Summarize: the quick brown fox", **body: Any) -> dict[str, Any]:
    """A chat line as the document writes it."""
    payload = {"model": "scailabs/poolnoodle-omni", "messages": [{"role": "user", "content": text}], "max_tokens": 100}
    payload.update(body)
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": payload}


def embed(custom_id: str) -> dict[str, Any]:
    """An embeddings line as the document writes it."""
    body = {"model": "openai/text-embedding-3-small", "input": ["First text", "Second text"]}
    return {"custom_id": custom_id, "method": "POST", "url": EMBED, "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    """JSONL bytes."""
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def b64(lines: list[dict[str, Any]]) -> str:
    """The lines as `input_file_base64`."""
    return base64.b64encode(jsonl(lines)).decode()


def poll(api: httpx.Client, batch_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """Retrieve until a terminal status (each poll moves the batch one status); every body
    validates against scaigrid/batch."""
    seen = []
    for _ in range(limit):
        response = api.get(f"/v1/inference/batch/{batch_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        validate("scaigrid/batch", body)
        seen.append(body)
        if body["status"] in ("completed", "failed", "cancelled"):
            return seen
    raise AssertionError(f"batch {batch_id} not terminal after {limit} polls: {seen[-1]}")


def results(api: httpx.Client, batch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The results file behind results_url, by custom_id (each exactly once, each valid)."""
    response = api.get(batch["results_url"])
    assert response.status_code == 200, response.text
    records = [json.loads(line) for line in response.content.splitlines() if line.strip()]
    for record in records:
        validate("scaigrid/result_line", record)
    by_id = {r["custom_id"]: r for r in records}
    assert len(by_id) == len(records), "a custom_id appears twice"
    return by_id


@dataclass
class Served:
    """The server, its S3 endpoint and a webhook receiver."""

    server: ServerProcess
    moto_url: str
    receiver: WebhookReceiver

    def api(self, key: str = KEY) -> httpx.Client:
        """A client of the native API."""
        return httpx.Client(base_url=self.server.root_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def s3(self) -> Any:
        """A boto3 client of the server's S3 endpoint (a moto server accepts any credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(signature_version="s3v4"),
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`batchconf serve --profile scaigrid` on 127.0.0.1 with a moto S3 server."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    args = ["--profile", "scaigrid", "--api-key", KEY, "--api-key", OTHER, "--progression", "per_poll"]
    server = start_server([*args, "--clock", "virtual", "--s3-endpoint-url", moto_url], tmp_path_factory.mktemp("sg"))
    try:
        with WebhookReceiver() as receiver:
            server.wait_ready()
            yield Served(server, moto_url, receiver)
    finally:
        server.stop()
        moto.stop()
    assert "Traceback" not in server.stderr(), server.stderr()[-4000:]


def test_inline_mixed_endpoints_flow_with_webhook(served: Served) -> None:
    """Base64 input mixing chat and embeddings lines (two models) runs pending -> processing ->
    completed; results_url appears only then; one record per custom_id, keyed by it; the
    webhook arrives once, with the batch as GET returns it."""
    lines = [chat("req-1"), chat("req-2", "Summarize: lorem ipsum"), embed("req-3")]
    with served.api() as api:
        created = api.post(
            "/v1/inference/batch", json={"input_file_base64": b64(lines), "webhook_url": served.receiver.url}
        )
        assert created.status_code == 200, created.text
        batch = created.json()
        validate("scaigrid/batch", batch)
        assert batch["status"] == "pending" and batch["results_url"] is None
        assert batch["endpoint_completion_window"] == "24h"
        seen = poll(api, batch["id"])
        assert [s["status"] for s in seen] == ["processing", "completed"]
        assert seen[0]["results_url"] is None
        final = seen[-1]
        assert (final["total_count"], final["completed_count"], final["failed_count"]) == (3, 3, 0)
        records = results(api, final)
        assert set(records) == {"req-1", "req-2", "req-3"}
        assert records["req-3"]["response"]["object"] == "list"
        assert records["req-1"]["response"]["object"] == "chat.completion"
        assert records["req-1"]["response"]["choices"][0]["message"]["content"] == "fox brown quick the Summarize:"
        hooks = served.receiver.wait_for(1, timeout=10)
        mine = [h for h in hooks if h.json and h.json["data"]["id"] == batch["id"]]
        assert len(mine) == 1
        event = mine[0].json
        validate("scaigrid/webhook_event", event)
        assert event["type"] == "batch.completed" and event["data"]["results_url"] == final["results_url"]
        assert mine[0].headers["x-scaigrid-event"] == "batch.completed"
        assert mine[0].headers["x-scaigrid-delivery"] == event["id"]


def test_presigned_url_input_with_line_failures(served: Served) -> None:
    """Input put in the user's bucket and named by a boto3 pre-signed URL (or s3://) is read
    from the server's S3 endpoint; a line the endpoint rejects becomes an error record, the
    batch still completes, failed_count counts it."""
    s3 = served.s3()
    s3.create_bucket(Bucket="sg-inputs")
    lines = [chat("ok-1"), chat("bad-1", messages="not a list"), embed("ok-2")]
    s3.put_object(Bucket="sg-inputs", Key="jobs/input.jsonl", Body=jsonl(lines))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "sg-inputs", "Key": "jobs/input.jsonl"})
    assert url.startswith(served.moto_url) and "X-Amz-Signature" in url
    with served.api() as api:
        for ref in (url, "s3://sg-inputs/jobs/input.jsonl"):
            created = api.post("/v1/inference/batch", json={"input_file_url": ref})
            assert created.status_code == 200, created.text
            assert created.json()["input_file_url"] == ref
            final = poll(api, created.json()["id"])[-1]
            assert final["status"] == "completed"
            assert (final["completed_count"], final["failed_count"]) == (2, 1)
            records = results(api, final)
            assert records["bad-1"]["status"] == "error" and records["bad-1"]["error"]["code"] == "http_400"
            assert records["ok-1"]["status"] == "ok"


def test_unreadable_inputs(served: Served) -> None:
    """A missing object fails the batch with INPUT_FILE_NOT_FOUND; another host or scheme is
    refused at create in the dialect's envelope, naming the value; nothing is fetched."""
    with served.api() as api:
        created = api.post("/v1/inference/batch", json={"input_file_url": "s3://sg-inputs/nothing-here.jsonl"})
        final = poll(api, created.json()["id"])[-1]
        assert final["status"] == "failed" and final["results_url"] is None
        assert final["errors"][0]["code"] == "INPUT_FILE_NOT_FOUND"
        assert "nothing-here.jsonl" in final["errors"][0]["message"]
        for ref in ("https://example.com/input.jsonl", "ftp://127.0.0.1/x.jsonl", "scaidrive://folder/x.jsonl"):
            refused = api.post("/v1/inference/batch", json={"input_file_url": ref})
            assert refused.status_code == 400, refused.text
            validate("scaigrid/error", refused.json())
            error = refused.json()["error"]
            assert error["code"] == "INVALID_REQUEST" and error["param"] == "input_file_url"
            assert ref in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({}, 400, "INVALID_REQUEST", "input_file_url"),
        ({"input_file_url": "s3://a/b", "input_file_base64": "e30K"}, 400, "INVALID_REQUEST", None),
        ({"input_file_base64": "%%%not base64"}, 400, "INVALID_REQUEST", "input_file_base64"),
        ({"input_file_base64": "e30K", "endpoint_completion_window": "2h"}, 400, None, "endpoint_completion_window"),
        ({"input_file_base64": "e30K", "webhook_url": "http://example.com/hook"}, 400, None, "webhook_url"),
        ({"input_file_base64": 7}, 400, None, "input_file_base64"),
    ],
)
def test_create_refusals(
    served: Served, body: dict[str, Any], status: int, code: str | None, param: str | None
) -> None:
    """Bad create bodies get a 400 in ScaiGrid's envelope naming the field."""
    with served.api() as api:
        response = api.post("/v1/inference/batch", json=body)
    assert response.status_code == status, response.text
    validate("scaigrid/error", response.json())
    error = response.json()["error"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def test_isolation_and_auth(served: Served) -> None:
    """Another key sees neither the batch nor its results; no key gets UNAUTHORIZED."""
    with served.api() as api, served.api(OTHER) as other, served.api("") as anon:
        batch = api.post("/v1/inference/batch", json={"input_file_base64": b64([chat("iso-1")])}).json()
        final = poll(api, batch["id"])[-1]
        assert other.get(f"/v1/inference/batch/{batch['id']}").status_code == 404
        assert other.get(final["results_url"]).status_code == 404
        assert batch["id"] not in [b["id"] for b in other.get("/v1/inference/batch").json()["data"]]
        refused = anon.get("/v1/inference/batch", headers={"Authorization": ""})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHORIZED"


def test_compat_files_feed_native_batches(served: Served) -> None:
    """A file uploaded on the OpenAI-compatible /oai/v1/files is scaigrid://file/{id} natively."""
    with served.api() as api:
        uploaded = api.post(
            "/oai/v1/files", files={"file": ("in.jsonl", jsonl([chat("c-1"), embed("c-2")]))}, data={"purpose": "batch"}
        )
        assert uploaded.status_code == 200, uploaded.text
        ref = f"scaigrid://file/{uploaded.json()['id']}"
        created = api.post("/v1/inference/batch", json={"input_file_url": ref, "endpoint_completion_window": "1h"})
        batch = created.json()
        assert batch["expires_at"] - batch["created_at"] == 3600
        final = poll(api, batch["id"])[-1]
        assert set(results(api, final)) == {"c-1", "c-2"}


# -- in-process: the clock, cancel, quotas ----------------------------------------------------


@pytest.fixture
def sg() -> Iterator[Emulator]:
    """An in-process ScaiGrid emulator, manual progression (moves only when stepped)."""
    with Emulator(profile="scaigrid", progression="manual", api_keys=[KEY]) as emu:
        yield emu


def _create(api: httpx.Client, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = api.post("inference/batch", json={"input_file_base64": b64(lines), **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_window_end_completes_with_error_records(sg: Emulator) -> None:
    """A 1h window that runs out with lines left ends the batch completed: what finished
    plus an error record (batch_expired) for every other line."""
    with sg.http_client(base_url=sg.base_url + "/") as api:
        batch = _create(api, [chat(f"w-{i}") for i in range(5)], endpoint_completion_window="1h")
        sg.step(batch["id"])  # processing
        sg.step(batch["id"], lines=2)
        sg.clock.advance(3600)
        final = api.get(f"inference/batch/{batch['id']}").json()
        assert final["status"] == "completed"
        assert (final["total_count"], final["completed_count"], final["failed_count"]) == (5, 2, 3)
        records = results(api, final)
        expired = [r for r in records.values() if r["status"] == "error"]
        assert len(records) == 5 and len(expired) == 3
        assert {r["error"]["code"] for r in expired} == {"batch_expired"}


def test_cancel_keeps_partial_results(sg: Emulator) -> None:
    """Cancel while processing: finished lines stay, the rest become batch_cancelled error
    records behind results_url; cancelled while pending, there are no results."""
    with sg.http_client(base_url=sg.base_url + "/") as api:
        batch = _create(api, [chat(f"c-{i}") for i in range(4)])
        sg.step(batch["id"])
        sg.step(batch["id"], lines=1)
        cancelled = api.post(f"inference/batch/{batch['id']}/cancel").json()
        assert cancelled["status"] == "cancelled" and cancelled["results_url"]
        records = results(api, cancelled)
        assert sum(r["status"] == "ok" for r in records.values()) == 1
        assert {r["error"]["code"] for r in records.values() if r["status"] == "error"} == {"batch_cancelled"}
        again = api.post(f"inference/batch/{batch['id']}/cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"
        early = _create(api, [chat("p-1")])
        cancelled = api.post(f"inference/batch/{early['id']}/cancel").json()
        assert cancelled["status"] == "cancelled" and cancelled["results_url"] is None
        missing = api.get(f"inference/batch/{early['id']}/results")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


def test_concurrency_quota(sg: Emulator) -> None:
    """The 11th unfinished batch of a tenant gets QUOTA_EXCEEDED; once one ends, a new one fits."""
    with sg.http_client(base_url=sg.base_url + "/") as api:
        ids = [_create(api, [chat(f"q-{i}")])["id"] for i in range(10)]
        refused = api.post("inference/batch", json={"input_file_base64": b64([chat("q-10")])})
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
        api.post(f"inference/batch/{ids[0]}/cancel")
        assert api.post("inference/batch", json={"input_file_base64": b64([chat("q-11")])}).status_code == 200


def test_inline_limit(sg: Emulator) -> None:
    """Base64 input of 10 MiB or more is refused with QUOTA_EXCEEDED, from its declared size."""
    line = json.dumps(chat("big", "x" * 1000)).encode() + b"\n"
    data = line * (10 * 1024 * 1024 // len(line) + 1)
    with sg.http_client(base_url=sg.base_url + "/") as api:
        refused = api.post("inference/batch", json={"input_file_base64": base64.b64encode(data).decode()})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "QUOTA_EXCEEDED"


def test_webhook_retries_then_delivers_once(sg: Emulator) -> None:
    """A receiver that fails first gets the event again after the backoff (on the emulator's
    clock), with the same id, and never after it answered 2xx."""
    assert sg.webhooks is not None
    with WebhookReceiver(fail_first=1) as receiver, sg.http_client(base_url=sg.base_url + "/") as api:
        batch = _create(api, [chat("h-1")], webhook_url=receiver.url)
        sg.step(batch["id"])
        sg.step(batch["id"])
        assert len(receiver.wait_for(1, timeout=10)) == 1
        sg.clock.advance(1)
        hooks = receiver.wait_for(2, timeout=10)
        assert [h.status for h in hooks] == [500, 204]
        assert hooks[0].json == hooks[1].json
        sg.webhooks.stop()  # joins the pump: the second attempt's answer is recorded
        sg.clock.advance(60)
        sg.webhooks.deliver_due()
        assert len(receiver.received) == 2
        events = sg.webhooks.events()
        assert events[0]["state"] == "delivered" and events[0]["attempts"] == 2
