"""Input references: which URLs name an object of the emulator's S3 endpoint, and which are refused.

Nothing is fetched from a host that is not the emulator's own S3 endpoint: a URL of any
other host or scheme is refused at create, with the reason in the message.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import Mutations
from emulator._storage import ObjectStore
from emulator.model.access import Access
from emulator.model.errors import ApiError
from emulator.model.inputs import InputMissing, InputResolver, ObjectAddress
from emulator.model.records import InputRef
from emulator.model.repository import MemoryRepository
from schemas import load_profile

OWNER = ("sk-a", "")


class _Endpoint:
    """Just what the resolver reads of a store: its endpoint URL."""

    def __init__(self, endpoint_url: str | None) -> None:
        self.endpoint_url = endpoint_url


def _resolver(endpoint_url: str | None) -> InputResolver:
    store = _Endpoint(endpoint_url)
    return InputResolver(
        load_profile("scaigrid"),
        store=store,  # type: ignore[arg-type]
        access=Access(("sk-a",), Mutations()),
        files=MemoryRepository(),
        file_reference="scaigrid://file/{file_id}",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket/dir/in.jsonl", ("bucket", "dir/in.jsonl", "s3://{bucket}/{key}")),
        ("s3://bucket/with%20space.jsonl", ("bucket", "with space.jsonl", "s3://{bucket}/{key}")),
        (
            "https://bucket.s3.amazonaws.com/in.jsonl?X-Amz-Signature=abc",
            ("bucket", "in.jsonl", "https://{bucket}.s3.amazonaws.com/{key}"),
        ),
        (
            "https://bucket.s3.eu-west-1.amazonaws.com/a/b.jsonl",
            ("bucket", "a/b.jsonl", "https://{bucket}.s3.eu-west-1.amazonaws.com/{key}"),
        ),
        (
            "https://s3.amazonaws.com/bucket/in.jsonl?AWSAccessKeyId=x",
            ("bucket", "in.jsonl", "https://s3.amazonaws.com/{bucket}/{key}"),
        ),
        (
            "https://s3.us-east-1.amazonaws.com/bucket/k",
            ("bucket", "k", "https://s3.us-east-1.amazonaws.com/{bucket}/{key}"),
        ),
    ],
)
def test_in_process_addresses(url: str, expected: tuple[str, str, str]) -> None:
    """In-process (no endpoint), the forms boto3 presigns against s3.amazonaws.com name objects;
    each address can write another object's URL the way this one was written."""
    found = _resolver(None).address(url)
    assert isinstance(found, ObjectAddress)
    assert (found.bucket, found.key, found.form) == expected


def test_file_reference() -> None:
    """A file reference names a file of the compatible Files API."""
    assert _resolver(None).address("scaigrid://file/file-abc") == "file-abc"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com/in.jsonl", "host 'example.com' is not this emulator's S3 endpoint"),
        ("http://127.0.0.1:9/bucket/in.jsonl", "not this emulator's S3 endpoint"),
        ("ftp://bucket/in.jsonl", "the scheme is not one of"),
        ("scaidrive://folder/in.jsonl", "the scheme is not one of"),
        ("s3://bucket", "expected s3://bucket/key"),
        ("scaigrid://file/", "expected scaigrid://file/{file_id}"),
        ("https://s3.amazonaws.com/only-bucket", "expected a path-style URL"),
    ],
)
def test_refused_in_process(url: str, reason: str) -> None:
    """Other hosts, schemes and malformed references are refused, naming the value and why."""
    with pytest.raises(ApiError) as caught:
        _resolver(None).check(InputRef("url", url))
    assert caught.value.name == "invalid_input_url"
    assert caught.value.fields["value"] == url
    assert reason in str(caught.value.fields["reason"])


def test_endpoint_addresses() -> None:
    """With an S3 endpoint, its own host and port in path style name objects; AWS hosts do not."""
    resolver = _resolver("http://127.0.0.1:5000")
    found = resolver.address("http://127.0.0.1:5000/b/k/x.jsonl?X-Amz-Date=1")
    assert found == ObjectAddress("b", "k/x.jsonl", "http://127.0.0.1:5000/{bucket}/{key}")
    for url in ("http://127.0.0.1:5001/b/k", "https://b.s3.amazonaws.com/k", "https://127.0.0.1:5000/b/k"):
        with pytest.raises(ApiError):
            resolver.check(InputRef("url", url))


@pytest.fixture
def store() -> Iterator[ObjectStore]:
    s = ObjectStore()
    yield s
    s.close()


def test_resolve_reads_only_what_exists(store: ObjectStore) -> None:
    """A missing object or file fails the batch (InputMissing); an existing object resolves."""
    resolver = InputResolver(
        load_profile("scaigrid"),
        store=store,
        access=Access(("sk-a",), Mutations()),
        files=MemoryRepository(),
        file_reference="scaigrid://file/{file_id}",
    )
    store.client.create_bucket(Bucket="user-bucket")
    store.client.put_object(Bucket="user-bucket", Key="in.jsonl", Body=b"{}\n")
    found = resolver.resolve(InputRef("url", "s3://user-bucket/in.jsonl"), OWNER)
    assert (found.bucket, found.key, found.size) == ("user-bucket", "in.jsonl", 3)
    for ref in ("s3://user-bucket/missing.jsonl", "scaigrid://file/file-nope", "s3://no-such-bucket/k"):
        with pytest.raises(InputMissing) as caught:
            resolver.resolve(InputRef("url", ref), OWNER)
        assert caught.value.name == "input_file_not_found" and caught.value.fields["id"] == ref
