"""Helpers of the durable-state tests: a moto server on 127.0.0.1, `batchconf serve --state
store` children, a JSONL input and the exactly-once audit through the official SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import openai
from botocore.config import Config

from tests.emulator._support import ServerProcess, free_port

KEY = "sk-durable-test-0001"
BUCKET = "durable-state"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """A moto server child on a free 127.0.0.1 port; yields its endpoint URL."""
    port = free_port()
    log = (workdir / f"moto-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log_text = (workdir / f"moto-{port}.log").read_text()
                    raise AssertionError(f"moto server did not start: {log_text}") from None
                time.sleep(0.05)  # waiting for a child to bind its port, not emulating time
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def s3(endpoint: str) -> Any:
    """A boto3 S3 client of the moto server (any credentials)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
    )


def serve(workdir: Path, endpoint: str, *extra: str, port: int | None = None, bucket: str = BUCKET) -> ServerProcess:
    """`batchconf serve --state store` on 127.0.0.1 (started, not yet waited for)."""
    port = port or free_port()
    out, err = workdir / f"serve-{port}-{time.monotonic_ns()}.out", workdir / f"serve-{port}-{time.monotonic_ns()}.err"
    args = [
        sys.executable, "-m", "emulator.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--api-key", KEY, "--state", "store", "--s3-endpoint-url", endpoint, "--s3-bucket", bucket, *extra,
    ]  # fmt: skip
    with out.open("w") as out_f, err.open("w") as err_f:
        proc = subprocess.Popen(args, stdout=out_f, stderr=err_f, stdin=subprocess.DEVNULL)
    return ServerProcess(proc, f"http://127.0.0.1:{port}", out, err)


def client(server: ServerProcess) -> openai.OpenAI:
    """The official SDK pointed at a served emulator."""
    return openai.OpenAI(api_key=KEY, base_url=server.root_url + "/v1", max_retries=0, timeout=10)


def jsonl(n: int, prefix: str = "req") -> bytes:
    """`n` chat-completion request lines with custom_ids `<prefix>-<i>`."""
    return b"".join(
        json.dumps(
            {
                "custom_id": f"{prefix}-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"say {i}"}]},
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `predicate()` until it returns something truthy (bounded); its value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)  # polling a server's state, not emulating time
    raise AssertionError(f"{what} not reached within {timeout} s (last seen: {last!r})")


def audit(sdk: openai.OpenAI, batch_id: str, n: int, prefix: str = "req") -> Any:
    """The exactly-once audit: the batch is terminal, every input custom_id appears exactly
    once across its output and error files, and the counts agree with the files."""
    batch = sdk.batches.retrieve(batch_id)
    assert batch.status in TERMINAL, batch.status
    seen: Counter[str] = Counter()
    lines = {}
    for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
        ids = []
        if file_id:
            text = sdk.files.content(file_id).text
            ids = [json.loads(line)["custom_id"] for line in text.splitlines() if line.strip()]
        seen.update(ids)
        lines[kind] = len(ids)
    expected = {f"{prefix}-{i}" for i in range(n)}
    missing, extra = sorted(expected - set(seen)), sorted(set(seen) - expected)
    assert not missing and not extra, f"missing {missing[:5]}, extra {extra[:5]}"
    twice = [cid for cid, count in seen.items() if count != 1]
    assert not twice, f"custom_ids written more than once: {twice[:10]}"
    counts = batch.request_counts
    assert counts is not None
    assert (counts.total, counts.completed, counts.failed) == (n, lines["output"], lines["error"]), (counts, lines)
    return batch
