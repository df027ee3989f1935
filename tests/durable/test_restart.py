"""`batchconf serve --state store`: a server killed mid-batch and started again resumes it.

Each test runs real `batchconf serve` children against a moto server on 127.0.0.1 with a
timed model (400 lines, 0.05 s a request, 4 at once: 5 s of processing) and audits the
result through the official `openai` SDK.
"""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

from tests.durable._support import BUCKET, TERMINAL, audit, client, jsonl, s3, serve, wait_for
from tests.emulator._support import free_port

TIMED = ("--request-seconds", "0.05", "--concurrency", "4", "--lease-seconds", "2")
N = 400


def _start_batch(sdk, n: int = N):  # type: ignore[no-untyped-def]
    f = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(n))), purpose="batch")
    return sdk.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")


def _in_progress(sdk, batch_id: str, at_least: int):  # type: ignore[no-untyped-def]
    def check():  # type: ignore[no-untyped-def]
        b = sdk.batches.retrieve(batch_id)
        counts = b.request_counts
        return b if b.status == "in_progress" and counts is not None and counts.completed >= at_least else None

    return wait_for(check, 15, f"batch {batch_id} in_progress with {at_least}+ lines done")


def _terminal(sdk, batch_id: str, timeout: float = 20):  # type: ignore[no-untyped-def]
    return wait_for(
        lambda: (lambda b: b if b.status in TERMINAL else None)(sdk.batches.retrieve(batch_id)), timeout, "terminal"
    )


def _record(endpoint: str, bucket: str, batch_id: str) -> dict:  # type: ignore[type-arg]
    body = s3(endpoint).get_object(Bucket=bucket, Key=f"state/openai/batches/{batch_id}.json")["Body"].read()
    return dict(json.loads(body))


def test_sigkill_mid_batch_then_restart_resumes_exactly_once(endpoint: str, bucket: str, tmp_path: Path) -> None:
    """A server killed with SIGKILL in the middle of a batch and started again on the same
    store MUST resume it: the batch reaches a terminal status, every custom_id appears
    exactly once across the output and error files, and the counts agree. The restart MUST
    redo at most the lines of the last unfinished checkpoint: the lines the first server
    committed stay in the batch's journal, written by it."""
    port = free_port()
    first = serve(tmp_path, endpoint, *TIMED, port=port, bucket=bucket)
    first.wait_ready()
    sdk = client(first)
    batch = _start_batch(sdk)
    seen = _in_progress(sdk, batch.id, 80)
    assert seen.request_counts.completed < N
    committed_before = _record(endpoint, bucket, batch.id)["done"]
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)

    second = serve(tmp_path, endpoint, *TIMED, port=port, bucket=bucket)
    try:
        second.wait_ready()
        done = _terminal(sdk, batch.id)
        assert done.status == "completed", done
        audit(sdk, batch.id, N)
        journal = _record(endpoint, bucket, batch.id)["state"]["journal"]
        # The chunks tile the lines [0, N) once, and the first server's committed ones are kept.
        assert [c[0] for c in journal[1:]] == [c[1] for c in journal[:-1]] and journal[0][0] == 0, journal
        assert journal[-1][1] == N
        writers = [c[2].rsplit("/", 1)[1].split("-", 1)[1].rsplit("-", 1)[0] for c in journal]
        kept = [c for c, w in zip(journal, writers, strict=True) if w == writers[0]]
        assert writers[0] != writers[-1], "the second server wrote no chunk: nothing was resumed"
        assert kept[-1][1] >= committed_before > 0, (committed_before, kept)
    finally:
        assert second.stop() == 0
    assert "Traceback" not in second.stderr(), second.stderr()[-3000:]


def test_sigterm_checkpoints_and_releases_then_restart_finishes(endpoint: str, bucket: str, tmp_path: Path) -> None:
    """SIGTERM MUST make the server commit the work in hand, give its leases up and exit 0;
    a server started again on the store MUST take the batch over at once (without waiting
    for the lease to expire) and finish it exactly once."""
    port = free_port()
    args = ("--request-seconds", "0.05", "--concurrency", "4", "--lease-seconds", "30")
    first = serve(tmp_path, endpoint, *args, port=port, bucket=bucket)
    first.wait_ready()
    sdk = client(first)
    batch = _start_batch(sdk)
    _in_progress(sdk, batch.id, 40)
    assert first.stop() == 0
    assert "Traceback" not in first.stderr(), first.stderr()[-3000:]
    lease = json.loads(
        s3(endpoint).get_object(Bucket=bucket, Key=f"state/openai/leases/{batch.id}.json")["Body"].read()
    )
    assert lease["expires"] == 0, lease
    assert _record(endpoint, bucket, batch.id)["done"] > 0

    second = serve(tmp_path, endpoint, *args, port=port, bucket=bucket)
    try:
        second.wait_ready()
        # Well under the 30 s lease: the released lease is taken over at once.
        done = _terminal(sdk, batch.id, timeout=15)
        assert done.status == "completed"
        audit(sdk, batch.id, N)
    finally:
        assert second.stop() == 0


def test_state_store_needs_a_persistent_endpoint(tmp_path: Path) -> None:
    """`--state store` without `--s3-endpoint-url` MUST be refused with exit 2 and one
    message naming the missing option (an in-process store would not survive a restart)."""
    proc = serve(tmp_path, "", bucket=BUCKET)
    proc.proc.wait(timeout=30)
    assert proc.proc.returncode == 2
    assert "--s3-endpoint-url" in proc.stderr()
