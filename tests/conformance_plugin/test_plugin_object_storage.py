"""The suite against an object-storage target served on 127.0.0.1 (`batchconf serve
--profile scaleway`, its moto S3 server): the bucket options, the endpoint found through
GET /_emulator/info, the same checks without admin routes given --s3-endpoint-url, and the
configuration error when nothing names the endpoint.

Run as `batchconf check` runs it (a subprocess from the project's root).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.emulator._support import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]
KEY, KEY_2 = "sk-objstore-test-1", "sk-objstore-test-2"
#: The object-storage checks: where results go, and the provider's own rules.
SELECT = "storage_layout or object_storage"


@dataclass
class Served:
    """`batchconf serve --profile scaleway` and the moto S3 endpoint it started."""

    server: ServerProcess
    s3_url: str

    def s3(self) -> Any:
        """A boto3 client of the served S3 endpoint (moto takes any credentials)."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def suite(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`pytest --pyargs conformance --profile scaleway` against the server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHCONF_", "AWS_"))}
        env.update(BATCHCONF_API_KEY=KEY, BATCHCONF_SECOND_API_KEY=KEY_2, AWS_EC2_METADATA_DISABLED="true")
        command = [sys.executable, "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider", "-q"]
        command += ["--profile", "scaleway", "--target-url", self.server.root_url, "--poll-interval", "0", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The server with per-poll progression and a virtual clock, as CI serves it."""
    args = ["--profile", "scaleway", "--progression", "per_poll", "--clock", "virtual"]
    server = start_server([*args, "--api-key", KEY, "--api-key", KEY_2], tmp_path_factory.mktemp("objstore"))
    try:
        server.wait_ready()
        found = re.search(r"S3: (http://127\.0\.0\.1:\d+)", server.stdout())
        assert found, server.stdout()
        yield Served(server, found.group(1))
    finally:
        server.stop()


def _outcomes(results: Path) -> dict[str, str]:
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    return {line["nodeid"].rsplit("/", 1)[-1]: line["outcome"] for line in lines if "nodeid" in line}


def test_with_controls_the_suite_finds_the_endpoint_and_writes_under_the_prefix(served: Served, tmp_path: Path) -> None:
    """With admin routes the endpoint comes from GET /_emulator/info; a given bucket (missing
    on the emulator's endpoint) is created, every input goes under PREFIX/batchconf-<hex>/,
    and the results sit beside each input."""
    results = tmp_path / "results.jsonl"
    done = served.suite(
        "--target-controls", "--s3-bucket", "given-bucket", "--s3-prefix", "team/runs", "-k", SELECT,
        "--results", str(results),
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert (
        "object storage: endpoint the one GET /_emulator/info names, bucket given-bucket, prefix team/runs/" in output
    )
    assert f"bucket given-bucket (given) on {served.s3_url}, inputs under team/runs/batchconf-" in output
    outcomes = _outcomes(results)
    for name in (
        "test_storage_layout.py::test_result_objects_are_beside_the_input_at_the_profile_keys",
        "test_object_storage.py::test_presigned_url_is_refused",
        "test_object_storage.py::test_bucket_policy_without_the_batch_principal_fails_the_batch",
        "test_object_storage.py::test_cancel_keeps_processed_lines_in_both_objects_and_drops_the_rest",
    ):
        assert outcomes.get(name) == "passed", (name, outcomes)
    keys = [item["Key"] for item in served.s3().list_objects_v2(Bucket="given-bucket").get("Contents", [])]
    assert keys and all(re.match(r"team/runs/batchconf-[0-9a-f]{12}/", key) for key in keys), keys
    assert any(key.endswith("/batchconf-layout_output.jsonl") for key in keys)
    assert any(key.endswith("/batchconf-layout_error.jsonl") for key in keys)


def test_without_controls_an_endpoint_given_runs_the_storage_checks(served: Served, tmp_path: Path) -> None:
    """As against a provider: no admin routes, the bucket's endpoint given. The layout, the
    pre-signed URL and the line rules run; what needs the emulator's controls (a bucket
    policy naming its principal, a stepped cancel) is deselected with the reason."""
    results = tmp_path / "results.jsonl"
    done = served.suite(
        "--no-target-controls", "--s3-endpoint-url", served.s3_url, "-k", SELECT, "--results", str(results)
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "(created by the suite)" in output
    outcomes = _outcomes(results)
    assert outcomes["test_storage_layout.py::test_nothing_else_is_written_into_the_prefix"] == "passed"
    assert outcomes["test_object_storage.py::test_presigned_url_is_refused"] == "passed"
    assert outcomes["test_object_storage.py::test_bucket_policy_without_the_batch_principal_fails_the_batch"] == (
        "deselected"
    )
    assert "needs the emulator's admin routes" in output


def test_without_controls_or_an_endpoint_the_run_stops_at_start(served: Served) -> None:
    done = served.suite("--no-target-controls", "-k", SELECT)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-4000:]
    assert "s3_endpoint_url" in output and "--s3-endpoint-url" in output
