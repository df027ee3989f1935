"""Object storage: every byte the emulator keeps lives in S3, reached through boto3.

By default S3 is moto, in-process (no socket). `endpoint_url` points at a moto server or any
S3 (MinIO, AWS) for shared or persistent state; credentials then come from the usual AWS
environment variables. Whole JSONL files are single objects: one object per request would
cost a millisecond or more per line on moto.
"""

from __future__ import annotations

import gc
import os
import threading
import uuid
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ._recent import RecentObjects

__all__ = ["PART_BYTES", "REMOTE_PART_BYTES", "ObjectStore", "PreconditionFailed"]

_CHUNK = 1 << 20
#: Size of the parts an emulator-internal object is split into on in-process moto, where a
#: put briefly holds about five copies of the part in this process's memory (botocore's
#: body, werkzeug's stream, the parsed body, moto's spool) and every request costs a few
#: milliseconds: 1 MiB parts cost about 14 % more time than 4 MiB ones on a 50,000-line
#: batch, 4 MiB parts about 1x the input more peak memory (loadtests/bench_batch.py).
PART_BYTES = 2 << 20
#: The same against an S3 endpoint (a moto server, MinIO, AWS): there a part costs this
#: process one copy, and each request a network round trip.
REMOTE_PART_BYTES = 4 << 20
#: The most bytes an in-process store reads or writes on the caller's event loop (`at_once`):
#: a 200-line batch's input; its step is then a few milliseconds of work.
AT_ONCE_BYTES = 64 << 10
#: The largest object moto (in-process) keeps in memory rather than in a temporary file.
_MOTO_MEMORY_MAX = 256 << 10
_SINGLE_PUT_MAX = 5 << 30
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_moto_lock = threading.Lock()
#: In-process moto's boto3 client per region, shared by every in-process store (made under
#: `_moto_lock` while a mock is active, so that moto's stubber answers it).
_inprocess_clients: dict[str, Any] = {}
# The flexible-checksum path makes large puts several times slower on moto and buys nothing
# here: ask for checksums only where S3 requires them. Nor a SHA-256 of every body for the
# signature (with no checksum header botocore signs the payload): S3 accepts
# UNSIGNED-PAYLOAD, and moto checks no signature.
_CONFIG = Config(
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    s3={"payload_signing_enabled": False},
    retries={"max_attempts": 3, "mode": "standard"},
)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


class PreconditionFailed(Exception):
    """A conditional write was refused: the object exists (If-None-Match: *) or has changed
    (If-Match: etag). S3 answers 412; AWS answers 409 ConditionalRequestConflict to a write that
    races another conditional write on the same key."""


_CONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def _part_key(key: str, index: int) -> str:
    return f"{key}.parts/{index:05d}"


class ObjectStore:
    """One bucket of an S3 endpoint (moto in-process when `endpoint_url` is None)."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        bucket: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        # Never let boto3 probe the EC2 metadata address: tests stay on loopback.
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        self._mock: Any = None
        self.endpoint_url = endpoint_url
        # Reads of what this store just wrote, answered from memory where no other process
        # writes the bucket (moto in-process): see `_recent`.
        self._recent: RecentObjects | None = RecentObjects() if endpoint_url is None else None
        if endpoint_url is None:
            # moto keeps an object in memory up to this size and spools a larger one to disk.
            # Below PART_BYTES, so that every full part of a batch's file goes to disk (a
            # part of exactly the buffer size would stay in memory).
            os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(_MOTO_MEMORY_MAX))
            from moto import mock_aws

            with _moto_lock:
                self._mock = mock_aws()
                self._mock.start(reset=False)
                # One client for every in-process store: making a boto3 client loads and
                # parses botocore's service models, about 60 ms each time, which users who
                # make an emulator per test would pay per test. A client is thread-safe;
                # each store keeps its own bucket, so state stays isolated.
                client = _inprocess_clients.get(region)
                if client is None:
                    client = _inprocess_clients[region] = boto3.client("s3", region_name=region, config=_CONFIG)
                self._s3 = client
        else:
            kwargs: dict[str, Any] = {"endpoint_url": endpoint_url}
            host = urlparse(endpoint_url).hostname or ""
            if host in _LOOPBACK and not os.environ.get("AWS_ACCESS_KEY_ID"):
                # A local moto server or MinIO test instance accepts any credentials.
                kwargs["aws_access_key_id"] = "testing"
                kwargs["aws_secret_access_key"] = "testing"
            self._s3 = boto3.client("s3", region_name=region, config=_CONFIG, **kwargs)
        self.bucket = bucket or f"batchconf-{uuid.uuid4().hex[:12]}"
        self._owns_bucket = bucket is None
        try:
            self._s3.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key`."""
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        self._release_request_copies(len(data))
        if self._recent is not None:
            self._recent.keep(key, data)

    def _release_request_copies(self, size: int) -> None:
        # In-process, moto parses each PUT into a werkzeug Request that sits in a reference
        # cycle with a BytesIO copy of the body: without a collection it outlives the call,
        # and the RSS grows by one body per put until the cyclic GC happens to run. The
        # young generations hold it; collecting them costs well under a millisecond.
        if self._mock is not None and size >= _CHUNK:
            gc.collect(1)

    def put_file(
        self,
        key: str,
        fileobj: IO[bytes],
        content_type: str = "application/octet-stream",
        size: int | None = None,
        *,
        split: bool = False,
        bucket: str | None = None,
    ) -> tuple[int, ...]:
        """Store the rest of `fileobj` under `key`; returns the part sizes, `()` for one object.

        With `split`, a file larger than the part size (`PART_BYTES` in-process,
        `REMOTE_PART_BYTES` against an endpoint) is stored as parts `{key}.parts/NNNNN` of at
        most that size each: storing one large object holds several copies of it in
        memory on moto (and a multipart upload more), a part holds a few megabytes. Only
        emulator-internal objects are split; an object whose key a provider documents is
        always stored whole.
        """
        if bucket is not None and bucket != self.bucket:
            # A user's bucket (results beside the input): one whole object at the documented key.
            self._s3.put_object(Bucket=bucket, Key=key, Body=fileobj, ContentType=content_type)
            self._release_request_copies(size or 0)
            return ()
        part_bytes = PART_BYTES if self._mock is not None else REMOTE_PART_BYTES
        if split and size is not None and size > part_bytes:
            parts: list[int] = []
            while True:
                data = fileobj.read(part_bytes)
                if not data:
                    break
                self.put_bytes(_part_key(key, len(parts)), data, content_type)
                parts.append(len(data))
            return tuple(parts)
        if self._recent is not None:
            if size is not None and size <= self._recent.object_max:
                self.put_bytes(key, fileobj.read(), content_type)
                return ()
            self._recent.forget(key)
        if size is not None and size > _SINGLE_PUT_MAX:
            self._s3.upload_fileobj(fileobj, self.bucket, key, ExtraArgs={"ContentType": content_type})
            return ()
        # One PUT: a multipart upload costs a transfer manager with threads per call.
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=fileobj, ContentType=content_type)
        self._release_request_copies(size or 0)
        return ()

    def iter_chunks(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        parts: tuple[int, ...] = (),
        *,
        bucket: str | None = None,
    ) -> Iterator[bytes]:
        """The object's bytes in chunks; `start`/`end` (inclusive) select a byte range.

        `parts` are the sizes `put_file` returned for a split object: the range is then read
        from the parts it covers, in order. `bucket` reads another bucket of the same
        endpoint (a user's own bucket, for dialects that take input by object URL).
        """
        if not parts:
            yield from self._iter_object(key, start, end, bucket)
            return
        lo = 0 if start is None else start
        hi = sum(parts) - 1 if end is None else end
        offset = 0
        for index, length in enumerate(parts):
            first, last = offset, offset + length - 1
            offset += length
            if last < lo or first > hi:
                continue
            yield from self._iter_object(_part_key(key, index), max(lo, first) - first, min(hi, last) - first)

    def _iter_object(self, key: str, start: int | None, end: int | None, bucket: str | None = None) -> Iterator[bytes]:
        kept = self.kept(key, bucket)
        if kept is not None:
            yield kept[start or 0 : None if end is None else end + 1]
            return
        kwargs: dict[str, Any] = {"Bucket": bucket or self.bucket, "Key": key}
        if start is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        body = self._s3.get_object(**kwargs)["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()

    def read(self, key: str) -> bytes:
        """The whole object (for small objects only)."""
        return b"".join(self.iter_chunks(key))

    def at_once(self, size: int | None) -> bool:
        """Whether storing or reading `size` bytes here may be done on an event loop rather
        than in a worker thread: the store is in this process (moto: no network to wait
        on) and the bytes are few. A hop to a worker thread costs more than such work, and
        with Python's GIL the thread would not let the loop run much meanwhile anyway."""
        return self._mock is not None and size is not None and size <= AT_ONCE_BYTES

    def kept(self, key: str, bucket: str | None = None) -> bytes | None:
        """The bytes this store wrote under `key` lately, when it still keeps them in memory
        (moto in-process, small objects, its own bucket; see `_recent`); None otherwise."""
        if self._recent is None or (bucket is not None and bucket != self.bucket):
            return None
        return self._recent.get(key)

    def size(self, key: str, *, bucket: str | None = None) -> int:
        """The object's size in bytes (KeyError when there is no such object)."""
        kept = self.kept(key, bucket)
        if kept is not None:
            return len(kept)
        try:
            head = self._s3.head_object(Bucket=bucket or self.bucket, Key=key)
        except ClientError as exc:
            raise KeyError(f"s3://{bucket or self.bucket}/{key}: {_error_code(exc)}") from None
        return int(head["ContentLength"])

    def bucket_policy(self, bucket: str) -> str | None:
        """The bucket's policy document, or None when it has none."""
        try:
            return str(self._s3.get_bucket_policy(Bucket=bucket)["Policy"])
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchBucketPolicy", "NoSuchPolicy"):
                return None
            raise

    @property
    def client(self) -> Any:
        """The boto3 S3 client of this store's endpoint (moto in-process by default)."""
        return self._s3

    def exists(self, key: str) -> bool:
        """Whether `key` exists."""
        if self.kept(key) is not None:
            return True
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    def delete(self, key: str, parts: tuple[int, ...] = ()) -> None:
        """Remove `key` or its parts (absent keys are fine)."""
        if self._recent is not None:
            self._recent.forget(key)
        if not parts:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            return
        for i in range(0, len(parts), 1000):
            batch: list[Any] = [{"Key": _part_key(key, n)} for n in range(i, min(len(parts), i + 1000))]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})

    # -- conditional reads and writes (the durable state's records and leases) ------------

    def put_if(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_absent: bool = False,
        content_type: str = "application/json",
    ) -> str:
        """Store `data` under `key` only if the object still has ETag `if_match`, or (with
        `if_absent`) does not exist yet; returns the new ETag, or raises `PreconditionFailed`."""
        if self._recent is not None:
            self._recent.forget(key)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type}
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_absent:
            kwargs["IfNoneMatch"] = "*"
        try:
            answer = self._s3.put_object(**kwargs)
        except ClientError as exc:
            if _error_code(exc) in _CONDITION_CODES or _error_code(exc) == "NoSuchKey":
                raise PreconditionFailed(f"s3://{self.bucket}/{key}: {_error_code(exc)}") from None
            raise
        return str(answer["ETag"])

    def get_if(self, key: str, etag: str | None = None) -> tuple[bytes, str] | None:
        """The object's bytes and ETag; None when its ETag is still `etag` (304, no body);
        KeyError when there is no such object."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if etag is not None:
            kwargs["IfNoneMatch"] = etag
        try:
            answer = self._s3.get_object(**kwargs)
        except ClientError as exc:
            code = _error_code(exc)
            if code in ("304", "NotModified"):
                return None
            if code in ("NoSuchKey", "404"):
                raise KeyError(f"s3://{self.bucket}/{key}") from None
            raise
        body = answer["Body"]
        try:
            return body.read(), str(answer["ETag"])
        finally:
            body.close()

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under `prefix`."""
        out: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(obj["Key"] for obj in page.get("Contents", []))
        return out

    def clear(self) -> None:
        """Delete every object of the bucket."""
        if self._recent is not None:
            self._recent.clear()
        keys = self.keys()
        for i in range(0, len(keys), 1000):
            batch: list[Any] = [{"Key": k} for k in keys[i : i + 1000]]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})

    def close(self) -> None:
        """Drop the bucket if this store made it, and stop moto if this store started it."""
        try:
            if self._owns_bucket:
                self.clear()
                self._s3.delete_bucket(Bucket=self.bucket)
        finally:
            if self._mock is not None:
                with _moto_lock:
                    self._mock.stop(remove_data=False)
                self._mock = None
