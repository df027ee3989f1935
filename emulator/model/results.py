"""Where results go: result lines are written by the dialect, stored by a sink the profile picks.

A `LineWriter` (one per dialect) turns an outcome into one JSONL line; the engine appends
successes to a batch's output buffer and failures to its error buffer. At the batch's end a
`ResultSink` stores the buffers and records what it stored in `BatchRecord.results`:
- `FilesSink`: two Files API files, "output" and "error" (OpenAI and its family);
- `ResultsFileSink`: one file holding both outcomes, "results", served behind a URL (ScaiGrid);
- `BucketSink`: two objects beside the input in the user's own bucket (Scaleway).
"""

from __future__ import annotations

import shutil
import threading
from typing import IO, Any, Protocol

from schemas import Profile

from .._clock import Clock
from .._ids import IdFactory
from .._mutations import Mutations
from .._storage import ObjectStore
from . import seams
from .records import BatchRecord, FileRecord
from .repository import Repository

__all__ = ["BucketSink", "FilesSink", "LineWriter", "ResultSink", "ResultsFileSink", "keys_beside", "sink_for"]


class LineWriter(Protocol):
    """Serializes one result line (newline included) in a dialect's format."""

    def response(self, key: str, custom_id: str, status_code: int, body: dict[str, Any] | None) -> bytes:
        """A line for a request that got an HTTP answer (success or HTTP error)."""
        ...

    def failure(self, key: str, custom_id: str, code: str, message: str) -> bytes:
        """A line for a request that got no HTTP answer (expired, cancelled, timeout)."""
        ...


class ResultSink(Protocol):
    """Stores a finished batch's result buffers and sets `b.results`."""

    def store(self, b: BatchRecord, stamp: int) -> None:
        """Store what `b`'s buffers hold (the caller closes them after)."""
        ...


class _FileMaker:
    """Stores a buffer as a file record of the output purpose."""

    def __init__(self, profile: Profile, repo: Repository, store: ObjectStore, ids: IdFactory, lock: threading.RLock):
        self.profile = profile
        self.repo = repo
        self.store = store
        self.ids = ids
        self.lock = lock

    def make(self, b: BatchRecord, spool: IO[bytes], template: str, stamp: int) -> str:
        file_id = self.ids.make(self.profile.ids.file)
        key = f"files/{file_id}"
        size = spool.tell()
        spool.seek(0)
        parts = self.store.put_file(key, spool, "application/jsonl", size, split=True)
        expires_at = stamp + (b.output_expires_after or self.profile.files.default_expiry_seconds) or None
        name = template.format(batch_id=b.id, filename=b.input.value, stem=b.input.value)
        record = FileRecord(
            file_id, b.owner, name, self.profile.files.output_purpose, size, stamp, expires_at, key, "processed", parts
        )
        with self.lock:
            self.repo.add_file(record)
        return file_id


class FilesSink:
    """Two files: successes in "output", failures in "error" (each only when it has lines,
    unless the profile says empty files are created; a failed batch's errors where the
    profile says it names an error file)."""

    def __init__(self, maker: _FileMaker, mutations: Mutations) -> None:
        self.maker = maker
        self.mutations = mutations

    def store(self, b: BatchRecord, stamp: int) -> None:
        """Store the output and error buffers as files."""
        out = self.maker.profile.output
        # A batch that failed stores only its errors (profiles with output.failed_error_file).
        failed = b.errors is not None
        plan = seams.StorePlan(
            write_output=not failed and (b.completed > 0 or out.empty_output_file),
            write_errors=b.failed > 0 or out.empty_error_file or (failed and out.failed_error_file),
        )
        plan = self.mutations.apply(seams.RESULTS_STORE, plan, batch=b)
        if plan.write_output:
            file_id = self.maker.make(b, b.out_spool, out.output_filename, stamp)
            if plan.publish_output:
                b.results["output"] = file_id
        if plan.write_errors:
            b.results["error"] = self.maker.make(b, b.err_spool, out.error_filename, stamp)


class ResultsFileSink:
    """One file, "results", with every outcome (successes first, then failures): stored once
    any line has a result, so a batch cancelled after it started keeps its partial results."""

    def __init__(self, maker: _FileMaker, mutations: Mutations) -> None:
        self.maker = maker
        self.mutations = mutations

    def store(self, b: BatchRecord, stamp: int) -> None:
        """Append the error buffer to the output buffer and store it as one file."""
        has_lines = b.completed + b.failed > 0
        plan = self.mutations.apply(seams.RESULTS_STORE, seams.StorePlan(write_output=has_lines, write_errors=False))
        if not plan.write_output:
            return
        b.err_spool.seek(0)
        b.out_spool.seek(0, 2)
        shutil.copyfileobj(b.err_spool, b.out_spool)
        file_id = self.maker.make(b, b.out_spool, self.maker.profile.output.output_filename, stamp)
        if plan.publish_output:
            b.results["results"] = file_id


def sink_for(
    profile: Profile,
    *,
    repo: Repository,
    store: ObjectStore,
    ids: IdFactory,
    clock: Clock,
    mutations: Mutations,
    lock: threading.RLock,
    naming: str = "primary",
) -> ResultSink:
    """The sink `profile.output.location` names; NotImplementedError for one not built yet.

    `naming` picks, for results beside the input, the profile's primary key templates or
    the alternative a document gives ("alternative")."""
    del clock  # results are stamped by the engine's transition time, not the clock's now
    maker = _FileMaker(profile, repo, store, ids, lock)
    location = profile.output.location
    if location == "files_api":
        return FilesSink(maker, mutations)
    if location == "results_url":
        return ResultsFileSink(maker, mutations)
    if location == "object_storage":
        return BucketSink(profile, store, mutations, naming)
    raise NotImplementedError(f"the emulator does not serve {location!r} result storage (profile {profile.name!r}) yet")


class BucketSink:
    """Results beside the input in the user's own bucket (Scaleway): the output and error
    objects at the keys the profile names, each written whole; their references are the
    objects' URLs in the form the input's URL was given."""

    def __init__(self, profile: Profile, store: ObjectStore, mutations: Mutations, naming: str = "primary") -> None:
        if profile.storage is None:
            raise ValueError(f"profile {profile.name!r} has no [storage] table")
        rules = profile.storage
        if naming == "primary":
            self.keys = (rules.output_key, rules.error_key)
        elif naming == "alternative" and rules.alternative_output_keys and rules.alternative_error_keys:
            self.keys = (rules.alternative_output_keys[0], rules.alternative_error_keys[0])
        else:
            raise ValueError(
                f"result naming {naming!r}: expected 'primary' or, where the profile has one, 'alternative'"
            )
        self.profile = profile
        self.objects = store
        self.mutations = mutations

    def keys_for(self, input_key: str, batch_id: str) -> tuple[str, str]:
        """The output and error keys for an input at `input_key`."""
        return keys_beside(self.keys, input_key, batch_id)

    def store(self, b: BatchRecord, stamp: int) -> None:
        """Write the output and error objects into the input's bucket."""
        assert b.plan is not None
        source = b.plan.source
        if source.bucket is None:
            raise RuntimeError(f"batch {b.id}: results beside the input need an input in a user's bucket")
        out_rules = self.profile.output
        plan = seams.StorePlan(
            write_output=b.completed > 0 or out_rules.empty_output_file,
            write_errors=b.failed > 0 or out_rules.empty_error_file,
        )
        plan = self.mutations.apply(seams.RESULTS_STORE, plan)
        out_key, err_key = self.mutations.apply(seams.RESULTS_KEYS, self.keys_for(source.key, b.id), batch=b)
        form = source.url_form or "s3://{bucket}/{key}"
        for kind, key, spool, wanted in (
            ("output", out_key, b.out_spool, plan.write_output),
            ("error", err_key, b.err_spool, plan.write_errors),
        ):
            if not wanted:
                continue
            size = spool.tell()
            spool.seek(0)
            self.objects.put_file(key, spool, "application/jsonl", size, bucket=source.bucket)
            if kind == "error" or plan.publish_output:
                b.results[kind] = form.format(bucket=source.bucket, key=key)


def keys_beside(templates: tuple[str, str], input_key: str, batch_id: str) -> tuple[str, str]:
    """The (output, error) keys the templates give for an input at `input_key`: {dir} is its
    folder (with a trailing '/', or ''), {filename} its name, {stem} that name without its
    extension."""
    folder, _, filename = input_key.rpartition("/")
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    fields = {"dir": f"{folder}/" if folder else "", "filename": filename, "stem": stem, "batch_id": batch_id}
    out, err = (template.format(**fields) for template in templates)
    return out, err
