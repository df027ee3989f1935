"""The OpenAI dialect on object storage (Scaleway): the OpenAI batch calls, but the input is
an object in the user's bucket named by its URL (`input_file_id`), and the results are
objects beside it whose URLs are `output_file_id` and `error_file_id`.

The suite's bucket is the principal's `ApiClient.storage` (`conformance._storage`): `stage`
puts the JSONL there, in a folder of its own, and hands the target its URL in the
profile's first URL form (`storage.object_urls`); `fetch_results` reads the objects the
result URLs name (mapped back to bucket and key). Records, counts and statuses are
OpenAI's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._contract import cite
from .._storage import ObjectStorage, StorageError
from ..client import ApiClient, ApiResponse
from ._base import Input, ResultsUnavailable, Staged, SubmitError
from ._openai import OpenAIDialect

__all__ = ["ObjectStorageDialect", "on_object_storage"]


def on_object_storage(profile: Any) -> bool:
    """Whether a profile's results go to object storage (the adapter's chooser)."""
    return bool(profile.output.location == "object_storage")


class ObjectStorageDialect(OpenAIDialect):
    """OpenAI's Batches over the user's bucket: no Files API; file ids are object URLs."""

    places: ClassVar[tuple[str, str]] = ("the output object", "the error object")

    # -- URLs ------------------------------------------------------------------------------

    def forms(self) -> tuple[str, ...]:
        """The provider's URL forms of an object (`storage.object_urls`); '' stands for the
        endpoint's path-style URL when the profile names none."""
        rules = self.profile.storage
        return tuple(rules.object_urls) if rules is not None and rules.object_urls else ("",)

    def storage_of(self, api: ApiClient) -> ObjectStorage:
        """The principal's bucket; `SubmitError` (a harness error) when the run has none."""
        if api.storage is None:
            raise SubmitError(
                f"profile {self.profile.name!r} takes its input from object storage, and this run has no bucket: "
                "give --s3-endpoint-url (and --s3-bucket, --s3-prefix) of the bucket the target reads, or a target "
                "whose GET /_emulator/info names its S3 endpoint"
            )
        return api.storage

    def locate(self, api: ApiClient, url: str) -> tuple[str, str] | None:
        """The (bucket, key) an object URL names, in any of the profile's forms, or None."""
        storage = self.storage_of(api)
        return storage.address(url, self.forms())

    def result_keys(self, input_key: str, batch_id: str) -> dict[str, tuple[str, str]]:
        """The (output, error) keys the profile names for results of an input at `input_key`:
        "primary" (`storage.output_key` / `error_key`) and, when documented, "alternative"
        (the first of `storage.alternative_output_keys` / `alternative_error_keys`). The
        templates' {dir} is the input's folder (with its '/'), {stem} its name without the
        extension."""
        rules = self.profile.storage
        if rules is None:
            raise ValueError(f"profile {self.profile.name!r} has no [storage] table")
        folder, _, filename = input_key.rpartition("/")
        stem = filename.rsplit(".", 1)[0] if "." in filename else filename
        fields = {"dir": f"{folder}/" if folder else "", "filename": filename, "stem": stem, "batch_id": batch_id}
        keys = {"primary": (rules.output_key.format(**fields), rules.error_key.format(**fields))}
        if rules.alternative_output_keys and rules.alternative_error_keys:
            keys["alternative"] = (
                rules.alternative_output_keys[0].format(**fields),
                rules.alternative_error_keys[0].format(**fields),
            )
        return keys

    # -- submit ------------------------------------------------------------------------------

    def stage(self, api: ApiClient, content: bytes, *, filename: str | None = None) -> Staged:
        """Put `content` in a fresh folder of the run's folder; the input is its URL in the
        profile's first form."""
        storage = self.storage_of(api)
        name = filename or f"batchconf-input{self.profile.files.batch_file_extension}"
        return Staged(self.put_input(api, content, storage.new_folder("input") + name))

    def put_input(self, api: ApiClient, content: bytes, key: str, *, form: str | None = None) -> Input:
        """Put `content` at `key` of the run's bucket; returns its URL in `form` (default:
        the profile's first). Raises `SubmitError` when the bucket refuses the write."""
        storage = self.storage_of(api)
        try:
            storage.put(key, content)
        except StorageError as exc:
            raise SubmitError(str(exc)) from None
        return Input.of_url(storage.url(key, self.forms()[0] if form is None else form))

    def input_of(self, state: Mapping[str, Any]) -> Input | None:
        """The created batch's `input_file_id`: an object URL."""
        url = state.get("input_file_id")
        return Input.of_url(url) if isinstance(url, str) else None

    def missing_input(self, seed: int, api: ApiClient | None = None) -> Input:
        """The URL of an object nobody stored, in the run's bucket (in a bucket of that name
        when the run has none)."""
        name = f"batchconf-missing-{seed}{self.profile.files.batch_file_extension}"
        if api is None or api.storage is None:
            return Input.of_url(f"s3://batchconf-missing-{seed}/{name}")
        storage = api.storage
        return Input.of_url(storage.url(storage.run_folder + name, self.forms()[0]))

    # -- results -----------------------------------------------------------------------------

    def download(self, api: ApiClient, ref_field: str, ref: str) -> ApiResponse:
        """GET the object a result URL names, from the run's S3 endpoint (200 with its bytes).
        `ResultsUnavailable` for a URL that names no object of the endpoint (another host, a
        malformed URL) or an object that is not there."""
        where = self.locate(api, ref)
        if where is None:
            raise ResultsUnavailable(
                f"{ref_field} {ref!r} is not an object URL of the bucket's endpoint in any form of profile "
                f"{self.profile.name!r} (storage.object_urls: {list(self.forms())})"
            )
        bucket, key = where
        try:
            data = self.storage_of(api).get(key, bucket=bucket)
        except StorageError as exc:
            raise ResultsUnavailable(f"{ref_field} {ref}: {exc}") from None
        if data is None:
            key_fact = "storage.output_key" if ref_field == "output_file_id" else "storage.error_key"
            raise ResultsUnavailable(
                f"{ref_field} names {ref} (s3://{bucket}/{key}), and there is no such object; the target writes its "
                f"results there ({cite(self.profile, key_fact)})"
            )
        return ApiResponse(
            status=200,
            headers={},
            content=data,
            json=None,
            operation=f"get_object ({ref_field})",
            method="GET",
            url=f"s3://{bucket}/{key}",
        )
