"""The user's bucket, as the suite reaches it for object-storage dialects (Scaleway).

Such a target reads each batch's input from an object URL and writes the results beside it,
in the same bucket. The suite therefore needs a bucket of its own on the same S3 endpoint:
`ObjectStorage` is that bucket (a boto3 client, the bucket, the user's prefix), with the
few operations the suite does there: put an input, read an object, list a prefix, name an
object by URL in one of the provider's forms, and find the object a URL names.

Credentials come from the usual AWS variables (boto3's own chain) and never pass through
here; against a loopback endpoint (a moto server, a local MinIO) with none set, moto's
dummy credentials are used. Every input of a run goes under `{prefix}batchconf-{run}/`,
one folder per input, so the results of two batches never meet.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "MAX_LISTED",
    "ObjectStorage",
    "StorageError",
    "bucket_name_problem",
    "connect",
    "region_of",
]

#: The most keys one `list` reads (a user's prefix may be large; the suite's checks need
#: only what changed under it).
MAX_LISTED = 10_000
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: Scaleway's endpoints name their region: https://s3.fr-par.scw.cloud.
_REGION_IN_HOST = re.compile(r"(?:^|\.)s3[.-]([a-z]{2}-[a-z0-9-]+?)\.")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")


class StorageError(RuntimeError):
    """The bucket cannot be reached, created or written (a harness error)."""


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name (None when it is): 3 to 63 characters,
    lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit."""
    if not _BUCKET.match(name):
        return "3 to 63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit"
    if ".." in name or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "no '..' and not an IP address"
    return None


def region_of(endpoint_url: str | None) -> str | None:
    """The region an endpoint's host names (`s3.fr-par.scw.cloud` -> fr-par), else None."""
    if not endpoint_url:
        return None
    found = _REGION_IN_HOST.search(urlsplit(endpoint_url).hostname or "")
    return found.group(1) if found else None


def _template_pattern(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name, part in (("bucket", r"[^/]+?"), ("region", r"[^./]+"), ("key", r".+")):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{part})")
    return re.compile(pattern + r"\Z")


@dataclass
class ObjectStorage:
    """A bucket on an S3 endpoint, seen by the suite.

    `prefix` is the user's prefix ('' or ending with '/'): the suite writes only under it.
    `endpoint_url` is None for the in-process emulator's store (boto3's default AWS hosts,
    answered by moto in this process). `created` says the suite may create (and remove)
    buckets of its own there, for the bucket policy checks: it created its bucket itself, or
    the endpoint is the emulator's. `run` names this run's folder.
    """

    client: S3Client = field(repr=False)
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    created: bool = False
    run: str = "run"
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- naming --------------------------------------------------------------------------

    @property
    def run_folder(self) -> str:
        """`{prefix}batchconf-{run}/`: everything this run writes goes under it."""
        return f"{self.prefix}batchconf-{self.run}/"

    def new_folder(self, label: str = "input") -> str:
        """A fresh folder under the run's folder (`.../0007-label/`)."""
        with self._lock:
            number = next(self._seq)
        return f"{self.run_folder}{number:04d}-{label}/"

    def url(self, key: str, form: str, *, bucket: str | None = None) -> str:
        """The URL of `key` in `form` (a template over {bucket}, {region}, {key}; '' is the
        endpoint's path-style URL)."""
        bucket = bucket or self.bucket
        if not form:
            form = self.path_style_form()
        return form.format(bucket=bucket, region=self.region, key=key)

    def path_style_form(self) -> str:
        """`{endpoint}/{bucket}/{key}` (AWS's own host for the in-process store)."""
        base = (self.endpoint_url or f"https://s3.{self.region}.amazonaws.com").rstrip("/")
        return base + "/{bucket}/{key}"

    def address(self, url: str, forms: Sequence[str] = ()) -> tuple[str, str] | None:
        """The (bucket, key) a URL names: `s3://bucket/key`, one of the provider's `forms`,
        or a path-style URL of the endpoint; None for anything else (a query string is
        ignored: a pre-signed URL names its object the same way)."""
        parts = urlsplit(url)
        if parts.scheme.lower() == "s3":
            key = unquote(parts.path.lstrip("/"))
            return (parts.netloc, key) if parts.netloc and key else None
        bare = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
        for form in forms:
            if form.startswith("s3://"):
                continue
            found = _template_pattern(form).match(bare)
            if found:
                return found["bucket"], unquote(found["key"])
        base = urlsplit(self.path_style_form().split("/{bucket}")[0])
        if (parts.scheme.lower(), parts.netloc.lower()) == (base.scheme.lower(), base.netloc.lower()):
            bucket, _, key = parts.path.lstrip("/").partition("/")
            return (bucket, unquote(key)) if bucket and key else None
        return None

    # -- objects --------------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, bucket: str | None = None) -> None:
        """Store `data` at `key`."""
        try:
            self.client.put_object(Bucket=bucket or self.bucket, Key=key, Body=data, ContentType="application/jsonl")
        except Exception as exc:
            raise StorageError(f"cannot write s3://{bucket or self.bucket}/{key}: {_why(exc)}") from None

    def get(self, key: str, *, bucket: str | None = None) -> bytes | None:
        """The bytes at `key`, or None when there is no such object (or bucket)."""
        try:
            return self.client.get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "NoSuchBucket", "404"):
                return None
            raise StorageError(f"cannot read s3://{bucket or self.bucket}/{key}: {_why(exc)}") from None

    def keys(self, prefix: str | None = None, *, bucket: str | None = None) -> list[str]:
        """The keys under `prefix` (default: the user's prefix), at most `MAX_LISTED`."""
        where = self.prefix if prefix is None else prefix
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket or self.bucket, Prefix=where)
            for page in pages:
                found.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
                if len(found) >= MAX_LISTED:
                    return found[:MAX_LISTED]
        except Exception as exc:
            raise StorageError(f"cannot list s3://{bucket or self.bucket}/{where}: {_why(exc)}") from None
        return found

    def presigned_url(self, key: str, *, bucket: str | None = None, expires: int = 3600) -> str:
        """A pre-signed GET URL of `key` (query parameters carry the signature)."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket or self.bucket, "Key": key}, ExpiresIn=expires
        )

    # -- buckets of the suite's own ------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        """Create a bucket on the endpoint (only where the suite created its own)."""
        if not self.created:
            raise StorageError(
                f"the suite may not create buckets here: it uses the configured bucket {self.bucket!r} "
                "(s3_bucket); leave it unset to let the suite create its own"
            )
        _create(self.client, name, self.region)

    def put_policy(self, bucket: str, policy: str) -> None:
        """Set a bucket policy (only on a bucket the suite created for the purpose)."""
        try:
            self.client.put_bucket_policy(Bucket=bucket, Policy=policy)
        except Exception as exc:
            raise StorageError(f"cannot set the policy of bucket {bucket!r}: {_why(exc)}") from None

    def remove_bucket(self, name: str) -> None:
        """Empty and delete a bucket the suite created (best effort)."""
        try:
            for key in self.keys("", bucket=name):
                self.client.delete_object(Bucket=name, Key=key)
            self.client.delete_bucket_policy(Bucket=name)
            self.client.delete_bucket(Bucket=name)
        except Exception:
            return  # cleanup never hides the test's own outcome


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _why(exc: Exception) -> str:
    code = _code(exc)
    return f"{code or type(exc).__name__}: {exc}"


def _create(client: Any, name: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
    except Exception as exc:
        if _code(exc) in ("BucketAlreadyOwnedByYou",):
            return
        raise StorageError(f"cannot create bucket {name!r}: {_why(exc)}") from None


def connect(
    *,
    endpoint_url: str | None,
    bucket: str | None,
    prefix: str,
    run: str,
    client: Any = None,
    emulator: bool = False,
) -> ObjectStorage:
    """The suite's bucket on `endpoint_url` (or through a ready `client`, the in-process
    emulator's). Without a `bucket` the suite creates `batchconf-suite-{run}`; a given one
    must exist, except on the `emulator`'s endpoint, where it is created when missing.
    Raises `StorageError` when neither works."""
    region = region_of(endpoint_url) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if client is None:
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {"endpoint_url": endpoint_url}
        host = urlsplit(endpoint_url).hostname if endpoint_url else None
        if host in _LOOPBACK and not os.environ.get("AWS_ACCESS_KEY_ID"):
            # A moto server or a local MinIO accepts any credentials; these are not secrets.
            kwargs["aws_access_key_id"] = "testing"
            kwargs["aws_secret_access_key"] = "testing"
        config = Config(
            signature_version="s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
        )
        client = boto3.client("s3", region_name=region or "us-east-1", config=config, **kwargs)
    region = region or str(getattr(client.meta, "region_name", None) or "us-east-1")
    created = bucket is None or emulator
    name = bucket or f"batchconf-suite-{run}"
    if created:
        _create(client, name, region)
    else:
        try:
            client.head_bucket(Bucket=name)
        except Exception as exc:
            where = endpoint_url or "the in-process store"
            raise StorageError(f"bucket {name!r} (s3_bucket) cannot be reached on {where}: {_why(exc)}") from None
    return ObjectStorage(
        client, name, prefix=prefix, endpoint_url=endpoint_url, region=region, created=created, run=run
    )
