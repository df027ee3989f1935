"""The object-storage mutations of the emulator (Scaleway) do what their names say: each
makes one violation of the profile's storage facts visible through the API and the bucket,
and only when switched on (the suite's catching them is tests/mutants' business)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from emulator import Emulator, mutations_for

LINE = {
    "custom_id": "r-1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "mistral-small-3.2-24b-instruct-2506", "messages": [{"role": "user", "content": "Hi"}]},
}


def _jsonl(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


@dataclass
class User:
    """An emulator of the scaleway profile and the user's bucket in it, with `jobs/in.jsonl`."""

    emu: Emulator
    bucket: str

    def s3(self) -> Any:
        return self.emu.s3_client()

    def run(self, url: str | None = None) -> Any:
        """Create a batch of `url` (default the bucket's input) and poll it to its end."""
        client = self.emu.openai_client()
        batch = client.batches.create(
            input_file_id=url or f"s3://{self.bucket}/jobs/in.jsonl",
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        for _ in range(10):
            batch = client.batches.retrieve(batch.id)
            if batch.status in ("completed", "failed", "expired", "cancelled"):
                break
        return batch

    def keys(self) -> list[str]:
        listed = self.s3().list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return sorted(item["Key"] for item in listed)


@pytest.fixture
def user() -> Iterator[User]:
    # A bucket per test: moto's in-process store outlives an emulator.
    with Emulator(profile="scaleway") as emu:
        found = User(emu, f"user-{uuid.uuid4().hex[:12]}")
        found.s3().create_bucket(Bucket=found.bucket)
        found.s3().put_object(Bucket=found.bucket, Key="jobs/in.jsonl", Body=_jsonl(LINE))
        yield found


def test_scaleways_catalogue_has_the_object_storage_mutations() -> None:
    catalogue = mutations_for("scaleway")
    for name in (
        "output_naming_hyphen",
        "results_outside_input_folder",
        "presigned_url_accepted",
        "bucket_policy_ignored",
        "mixed_models_accepted",
    ):
        assert name in catalogue
        assert name not in mutations_for("openai")


def test_unmutated_results_sit_beside_the_input(user: User) -> None:
    batch = user.run()
    assert batch.output_file_id == f"s3://{user.bucket}/jobs/in_output.jsonl"
    assert user.keys() == ["jobs/in.jsonl", "jobs/in_output.jsonl"]


def test_output_naming_hyphen(user: User) -> None:
    user.emu.mutations.enable("output_naming_hyphen")
    batch = user.run()
    assert batch.output_file_id == f"s3://{user.bucket}/jobs/in-output.jsonl"
    assert user.keys() == ["jobs/in-output.jsonl", "jobs/in.jsonl"]


def test_results_outside_input_folder(user: User) -> None:
    user.emu.mutations.enable("results_outside_input_folder")
    batch = user.run()
    assert batch.output_file_id == f"s3://{user.bucket}/in_output.jsonl"
    assert user.keys() == ["in_output.jsonl", "jobs/in.jsonl"]


def test_presigned_url_accepted(user: User) -> None:
    url = user.s3().generate_presigned_url("get_object", Params={"Bucket": user.bucket, "Key": "jobs/in.jsonl"})
    with pytest.raises(openai.BadRequestError):
        user.run(url)
    user.emu.mutations.enable("presigned_url_accepted")
    assert user.run(url).status == "completed"


def test_bucket_policy_ignored(user: User) -> None:
    policy = {
        "Version": "2023-04-17",
        "Statement": [{"Effect": "Allow", "Principal": {"SCW": "user_id:someone"}, "Action": "*", "Resource": "*"}],
    }
    user.s3().put_bucket_policy(Bucket=user.bucket, Policy=json.dumps(policy))
    assert user.run().status == "failed"
    user.emu.mutations.enable("bucket_policy_ignored")
    assert user.run().status == "completed"


def test_mixed_models_accepted(user: User) -> None:
    other = {**LINE, "custom_id": "r-2", "body": {**LINE["body"], "model": "llama-3.1-8b-instruct"}}
    user.s3().put_object(Bucket=user.bucket, Key="jobs/in.jsonl", Body=_jsonl(LINE, other))
    failed = user.run()
    assert failed.status == "failed" and failed.errors and failed.errors.data
    assert failed.errors.data[0].code == "model_mismatch"
    user.emu.mutations.enable("mixed_models_accepted")
    assert user.run().status == "completed"
