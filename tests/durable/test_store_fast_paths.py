"""With records in the store, reads always take the full path (a worker thread)."""

from __future__ import annotations

import io

from emulator import Emulator
from tests.durable._support import KEY, jsonl


def test_store_state_never_takes_the_fast_path(endpoint: str, bucket: str) -> None:
    """With records in the store a read MAY need storage: `retrieve_now`, `list_now` and
    `create_now` MUST answer None, and the SDK MUST still be answered in full."""
    with Emulator(state="store", s3_endpoint_url=endpoint, s3_bucket=bucket, api_keys=[KEY]) as emu:
        sdk = emu.openai_client()
        f = sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(2))), purpose="batch")
        b = sdk.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        for _ in range(10):
            b = sdk.batches.retrieve(b.id)
            if b.status == "completed":
                break
        assert b.status == "completed"
        batches = emu.provider.main.batches
        owner = emu.provider.main.access.authenticate(KEY, None)
        assert batches.retrieve_now(b.id, owner) is None
        assert batches.list_now(owner, limit=5, after=None) is None
        assert [x.id for x in sdk.batches.list(limit=5).data] == [b.id]
