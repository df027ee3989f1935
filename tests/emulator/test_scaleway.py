"""Scaleway's batches on object storage, served: the how-to's own SDK code, a bucket on a
moto server the emulator started, results read back with boto3 from beside the input.

Sources: ../shared/providers/scaleway-how-to.txt (the SDK example, the bucket policy, the
output naming) and scaleway-api-reference.txt (the `-output` naming, `input_file_id` as an
Object Storage URL).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import openai
import pytest
from botocore.config import Config

from emulator import Emulator
from tests.emulator._support import ServerProcess, start_server

KEY = "sk-scw-test-1"
MODEL = "mistral-small-3.2-24b-instruct-2506"

# The how-to's "Creating a batch using the OpenAI Python SDK" code, unmodified but for the
# base URL and the bucket URL (the two lines marked below).
HOWTO = textwrap.dedent(
    """
    import os
    import time
    import logging
    from openai import OpenAI
    # Initialize client with staging base URL
    client = OpenAI(
        api_key=os.getenv("SCW_SECRET_KEY"),
        base_url=os.environ["BATCHCONF_BASE_URL"]  # changed: the emulator's base URL
    )
    # Your S3 input file URL (only path to the file without query parameters, hence not a pre-signed URL)
    input_file_url = os.environ["BATCHCONF_INPUT_URL"]  # changed: the bucket URL
    # Submit the batch job
    print("Submitting batch job...")
    batch = client.batches.create(
        input_file_id=input_file_url,
        endpoint="/v1/chat/completions",
        completion_window="24h"
    )
    print(f"Batch created: {batch.id}")
    print(f"Initial status: {batch.status}")
    # Polling function
    def wait_for_completion(batch_id, check_interval=10):
        print(f"Polling every {check_interval}s for completion...\\n")
        while True:
            batch_job = client.batches.retrieve(batch_id)
            last_update_timestamp = batch_job.completed_at or batch_job.in_progress_at or batch_job.created_at
            print(f"Status: {batch_job.status.upper()} (Updated: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last_update_timestamp))})")
            if batch_job.status == "completed":
                print(f"\\nBatch completed successfully!")
                print(f"Download results: {batch_job.output_file_id}")
                return batch_job.output_file_id
            elif batch_job.status == "failed":
                if hasattr(batch_job, 'errors') and batch_job.errors:
                    print(f"Batch failed: {batch_job.errors}")
                else:
                    print(f"Batch failed: Unknown error")
                return None
            elif batch_job.status in ["in_progress", "validating"]:
                time.sleep(check_interval)
            else:
                print(f"Unexpected status: {batch_job.status}")
                return None
    # Start polling
    wait_for_completion(batch.id)
    """
)


def line(custom_id: str, content: str, model: str = MODEL, url: str = "/v1/chat/completions") -> dict[str, Any]:
    """A request line as the how-to's example writes it."""
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_completion_tokens": 500}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    """JSONL bytes."""
    return b"".join(json.dumps(item).encode() + b"\n" for item in lines)


def read_object(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The JSON lines of an object."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(x) for x in body.splitlines() if x.strip()]


@dataclass
class Served:
    """`batchconf serve --profile scaleway` and the S3 endpoint it started."""

    server: ServerProcess
    s3_url: str
    principal: str

    @property
    def base_url(self) -> str:
        """The OpenAI base URL."""
        return self.server.root_url + "/v1"

    def s3(self) -> Any:
        """A boto3 client of the server's S3 endpoint (any credentials work there)."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(signature_version="s3v4"),
        )

    def client(self) -> openai.OpenAI:
        """The official SDK."""
        return openai.OpenAI(api_key=KEY, base_url=self.base_url, max_retries=0)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The server on a real clock with instant phases (so the how-to's loop sees `completed` on
    its first poll), its S3 endpoint a moto server it starts itself."""
    zero = ["--validation-seconds", "0", "--request-seconds", "0", "--finalization-seconds", "0"]
    server = start_server(["--profile", "scaleway", "--api-key", KEY, *zero], tmp_path_factory.mktemp("scw"))
    try:
        server.wait_ready()
        info = server.stdout()
        s3_url = re.search(r"S3: (http://127\.0\.0\.1:\d+)", info)
        principal = re.search(r"\((application_id:[0-9a-f-]+)\)", info)
        assert s3_url and principal, info
        yield Served(server, s3_url.group(1), principal.group(1))
    finally:
        server.stop()
    assert "Traceback" not in server.stderr(), server.stderr()[-4000:]


def test_howto_sdk_code_runs_unmodified(served: Served, tmp_path: Any) -> None:
    """The how-to's SDK code completes a batch whose input is named by Scaleway's bucket URL;
    the results sit beside the input as {filename}_output.jsonl, read back with boto3."""
    s3 = served.s3()
    s3.create_bucket(Bucket="my-bucket")
    s3.put_object(
        Bucket="my-bucket",
        Key="input.jsonl",
        Body=jsonl([line("request-1", "Translate this into French: Hello world!"), line("request-2", "Write a poem")]),
    )
    script = tmp_path / "howto.py"
    script.write_text(HOWTO)
    env = {
        "SCW_SECRET_KEY": KEY,
        "BATCHCONF_BASE_URL": served.base_url,
        "BATCHCONF_INPUT_URL": "https://my-bucket.s3.fr-par.scw.cloud/input.jsonl",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Batch completed successfully!" in done.stdout, done.stdout
    assert "Download results: https://my-bucket.s3.fr-par.scw.cloud/input_output.jsonl" in done.stdout
    records = read_object(s3, "my-bucket", "input_output.jsonl")
    assert sorted(r["custom_id"] for r in records) == ["request-1", "request-2"]
    assert all(r["error"] is None and r["response"]["status_code"] == 200 for r in records)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="my-bucket")["Contents"])
    assert keys == ["input.jsonl", "input_output.jsonl"]


def _run(client: openai.OpenAI, input_url: str) -> Any:
    batch = client.batches.create(input_file_id=input_url, endpoint="/v1/chat/completions", completion_window="24h")
    for _ in range(20):
        batch = client.batches.retrieve(batch.id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
    raise AssertionError(f"batch {batch.id} still {batch.status}")


def test_folder_s3_form_and_line_failures(served: Served) -> None:
    """An s3:// input in a folder: results in the same folder, named back as s3:// URLs; a line
    the endpoint rejects goes to {filename}_error.jsonl."""
    s3 = served.s3()
    s3.create_bucket(Bucket="folder-bucket")
    bad = line("bad-1", "x")
    bad["body"]["messages"] = "not a list"
    s3.put_object(Bucket="folder-bucket", Key="jobs/2026/batch.jsonl", Body=jsonl([line("ok-1", "Hello"), bad]))
    batch = _run(served.client(), "s3://folder-bucket/jobs/2026/batch.jsonl")
    assert batch.status == "completed", batch
    assert batch.output_file_id == "s3://folder-bucket/jobs/2026/batch_output.jsonl"
    assert batch.error_file_id == "s3://folder-bucket/jobs/2026/batch_error.jsonl"
    errors = read_object(s3, "folder-bucket", "jobs/2026/batch_error.jsonl")
    assert [e["custom_id"] for e in errors] == ["bad-1"] and errors[0]["response"]["status_code"] == 400


def test_presigned_url_refused(served: Served) -> None:
    """A pre-signed URL (query parameters) is refused at create, naming the value."""
    s3 = served.s3()
    s3.create_bucket(Bucket="presign-bucket")
    s3.put_object(Bucket="presign-bucket", Key="in.jsonl", Body=jsonl([line("r-1", "Hi")]))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presign-bucket", "Key": "in.jsonl"})
    with pytest.raises(openai.BadRequestError) as caught:
        served.client().batches.create(input_file_id=url, endpoint="/v1/chat/completions", completion_window="24h")
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "input_file_id" and "pre-signed" in error["message"]


def test_bucket_policy_must_allow_the_batch_principal(served: Served) -> None:
    """A bucket with a policy that does not allow scw-managed-genapi-batch s3:GetObject and
    s3:PutObject fails the batch, naming what is missing; the how-to's example policy with the
    printed application id lets it run."""
    s3 = served.s3()
    s3.create_bucket(Bucket="policy-bucket")
    s3.put_object(Bucket="policy-bucket", Key="in.jsonl", Body=jsonl([line("r-1", "Hi")]))
    secure = {
        "Sid": "Scaleway secure statement",
        "Effect": "Allow",
        "Principal": {"SCW": "user_id:example-9f9c-46b1-b2e0-ed883a6c54ce"},
        "Action": "*",
        "Resource": ["policy-bucket", "policy-bucket/*"],
    }
    policy = {"Version": "2023-04-17", "Id": "allow-only-bucket", "Statement": [secure]}
    s3.put_bucket_policy(Bucket="policy-bucket", Policy=json.dumps(policy))
    failed = _run(served.client(), "s3://policy-bucket/in.jsonl")
    assert failed.status == "failed" and failed.errors and failed.errors.data
    message = failed.errors.data[0].message or ""
    assert "s3:GetObject and s3:PutObject" in message and served.principal in message
    managed = {
        "Sid": "scw-managed",
        "Effect": "Allow",
        "Principal": {"SCW": served.principal},
        "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": "policy-bucket/*",
    }
    policy["Statement"] = [managed, secure]
    s3.put_bucket_policy(Bucket="policy-bucket", Policy=json.dumps(policy))
    assert _run(served.client(), "s3://policy-bucket/in.jsonl").status == "completed"


def test_mixed_models_fail_the_batch(served: Served) -> None:
    """'The method, url, and model fields must remain consistent across all requests.'"""
    s3 = served.s3()
    s3.create_bucket(Bucket="mixed-bucket")
    s3.put_object(
        Bucket="mixed-bucket", Key="in.jsonl", Body=jsonl([line("a", "Hi"), line("b", "Hi", model="other-model")])
    )
    batch = _run(served.client(), "s3://mixed-bucket/in.jsonl")
    assert batch.status == "failed" and batch.errors and batch.errors.data
    assert batch.errors.data[0].line == 2


def test_alternative_naming_in_process() -> None:
    """With the API reference's naming, results are {filename}-output.jsonl; in-process the
    boto3 client of the emulator's store reaches the same bucket."""
    with Emulator(profile="scaleway", result_naming="alternative") as emu:
        s3 = emu.s3_client()
        s3.create_bucket(Bucket="alt-bucket")
        s3.put_object(Bucket="alt-bucket", Key="dir/in.jsonl", Body=jsonl([line("r-1", "Hello there")]))
        batch = _run(emu.openai_client(), "https://alt-bucket.s3.nl-ams.scw.cloud/dir/in.jsonl")
        assert batch.output_file_id == "https://alt-bucket.s3.nl-ams.scw.cloud/dir/in-output.jsonl"
        assert read_object(s3, "alt-bucket", "dir/in-output.jsonl")[0]["custom_id"] == "r-1"


def test_cancel_keeps_processed_results_and_drops_the_rest() -> None:
    """'results already processed are stored in corresponding output.jsonl and errors.jsonl
    files, while remaining requests will not be processed' (Cancel a batch)."""
    with Emulator(profile="scaleway", progression="manual") as emu:
        s3 = emu.s3_client()
        s3.create_bucket(Bucket="cancel-bucket")
        s3.put_object(Bucket="cancel-bucket", Key="in.jsonl", Body=jsonl([line(f"r-{i}", "Hi") for i in range(4)]))
        client = emu.openai_client()
        batch = client.batches.create(
            input_file_id="s3://cancel-bucket/in.jsonl", endpoint="/v1/chat/completions", completion_window="24h"
        )
        emu.step(batch.id)
        emu.step(batch.id, lines=1)
        client.batches.cancel(batch.id)
        emu.step(batch.id)
        done = client.batches.retrieve(batch.id)
        assert done.status == "cancelled" and done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (1, 0)
        assert [r["custom_id"] for r in read_object(s3, "cancel-bucket", "in_output.jsonl")] == ["r-0"]
        assert done.error_file_id is None


def test_project_in_the_path_scopes_batches() -> None:
    """`/{project_id}/v1/batches` serves the same API scoped to that project: its batches are
    not seen from the default project or another one ([scw-api] project_id path parameter)."""
    with Emulator(profile="scaleway") as emu:
        s3 = emu.s3_client()
        s3.create_bucket(Bucket="project-bucket")
        s3.put_object(Bucket="project-bucket", Key="in.jsonl", Body=jsonl([line("r-1", "Hi")]))
        http = emu.http_client()
        body = {"input_file_id": "s3://project-bucket/in.jsonl", "endpoint": "/v1/chat/completions"}
        created = http.post("/proj-a/v1/batches", json={**body, "completion_window": "24h"})
        assert created.status_code == 200, created.text
        batch_id = created.json()["id"]
        listed = {p: [b["id"] for b in http.get(f"{p}/v1/batches").json()["data"]] for p in ("/proj-a", "", "/proj-b")}
        assert listed == {"/proj-a": [batch_id], "": [], "/proj-b": []}
        assert http.get(f"/v1/batches/{batch_id}").status_code == 404
        assert http.get(f"/proj-a/v1/batches/{batch_id}").status_code == 200
