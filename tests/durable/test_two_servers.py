"""Two `batchconf serve --state store` processes on one store: the same files and batches on
both, each batch processed by one of them at a time, and taken over when its holder dies."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

from tests.durable._support import TERMINAL, audit, client, jsonl, s3, serve, wait_for

TIMED = ("--request-seconds", "0.05", "--concurrency", "4", "--lease-seconds", "2")
N = 400


def test_two_servers_share_records_and_the_survivor_takes_over(endpoint: str, bucket: str, tmp_path: Path) -> None:
    """A file and a batch created on server A MUST be retrievable and listed on server B;
    while A holds the batch's lease B MUST NOT process it (B shows what A committed); when A
    is killed, B MUST take the batch over once A's lease has expired and finish it with every
    custom_id exactly once and counts that agree."""
    a = serve(tmp_path, endpoint, *TIMED, bucket=bucket)
    b = serve(tmp_path, endpoint, *TIMED, bucket=bucket)
    try:
        a.wait_ready()
        b.wait_ready()
        sdk_a, sdk_b = client(a), client(b)
        f = sdk_a.files.create(file=("in.jsonl", io.BytesIO(jsonl(N))), purpose="batch")
        batch = sdk_a.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")

        assert sdk_b.files.retrieve(f.id).filename == "in.jsonl"
        assert f.id in [x.id for x in sdk_b.files.list()]
        assert sdk_b.batches.retrieve(batch.id).input_file_id == f.id
        assert [x.id for x in sdk_b.batches.list()] == [batch.id]

        def progressed():  # type: ignore[no-untyped-def]
            seen = sdk_b.batches.retrieve(batch.id)
            return seen if seen.request_counts and seen.request_counts.completed >= 60 else None

        wait_for(progressed, 15, "progress seen on B")
        key = f"state/openai/leases/{batch.id}.json"
        holder = json.loads(s3(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())["holder"]
        assert f".{a.proc.pid}." in holder, f"the creating server should hold the lease, found {holder}"

        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        done = wait_for(
            lambda: (lambda x: x if x.status in TERMINAL else None)(sdk_b.batches.retrieve(batch.id)), 20, "terminal"
        )
        assert done.status == "completed"
        audit(sdk_b, batch.id, N)
        record = json.loads(
            s3(endpoint).get_object(Bucket=bucket, Key=f"state/openai/batches/{batch.id}.json")["Body"].read()
        )
        assert record["state"]["lease_gen"] >= 2, "B must have fenced the record with a newer lease generation"
        writers = {c[2].split("/")[-1].split("-", 1)[1].rsplit("-", 1)[0] for c in record["state"]["journal"]}
        assert any(f".{a.proc.pid}." in w for w in writers) and any(f".{b.proc.pid}." in w for w in writers), writers
    finally:
        a.stop()
        assert b.stop() == 0
    assert "Traceback" not in b.stderr(), b.stderr()[-3000:]
