"""Files API: upload, retrieve, list, download, delete; refusals; generated result files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from ..client import ApiClient
from ..scenarios import Finished
from . import _support as sup

pytestmark = pytest.mark.capability("files")


@pytest.fixture(scope="module")
def upload(api: ApiClient, bc_profile: Profile, bc_target: Target) -> sup.Deferred[tuple[dict[str, Any], bytes]]:
    """One valid batch input file, uploaded once for the module: (file object, its bytes)."""
    content = strategies.build_valid(bc_profile, 2, prefix=f"files-{bc_target.seed}").content
    name = f"batchconf-files{bc_profile.files.batch_file_extension}"
    return sup.Deferred.of(lambda: (sup.upload_ok(api, bc_profile, content, name), content))


@pytest.fixture
def uploaded(upload: sup.Deferred[tuple[dict[str, Any], bytes]]) -> tuple[dict[str, Any], bytes]:
    """The module's uploaded file; a refused upload fails the test using it."""
    return upload.get()


def test_upload_returns_batch_file_object(uploaded: tuple[dict[str, Any], bytes], bc_profile: Profile) -> None:
    """An upload with the batch purpose MUST answer a schema-valid file object with that
    purpose, the uploaded size in `bytes` and the uploaded file name."""
    file, content = uploaded
    expected = {"bytes": len(content), "filename": f"batchconf-files{bc_profile.files.batch_file_extension}"}
    received = {k: file.get(k) for k in expected}
    if received != expected:
        raise inv.violation(
            "file-object",
            "the file object does not describe the uploaded file",
            received=received,
            expected=expected,
            profile=bc_profile,
            key="http.operations.create_file",
        )


def test_retrieve_returns_the_uploaded_file(
    api: ApiClient, uploaded: tuple[dict[str, Any], bytes], bc_profile: Profile
) -> None:
    """Retrieving an uploaded file MUST answer the same file object (id, bytes, purpose, filename)."""
    file, _ = uploaded
    got = inv.expect_ok(api.retrieve_file(file["id"]), bc_profile, "file")
    fields = ("id", "bytes", "purpose", "filename", "created_at")
    if {k: got.get(k) for k in fields} != {k: file.get(k) for k in fields}:
        raise inv.violation(
            "file-retrieve",
            "retrieve answers another file object than the upload did",
            received={k: got.get(k) for k in fields},
            expected={k: file.get(k) for k in fields},
            profile=bc_profile,
            key="http.operations.retrieve_file",
        )


def test_content_is_the_uploaded_bytes(
    api: ApiClient, uploaded: tuple[dict[str, Any], bytes], bc_profile: Profile
) -> None:
    """Downloading a batch input file MUST answer exactly the uploaded bytes."""
    file, content = uploaded
    response = api.file_content(file["id"])
    inv.expect_ok(response, bc_profile, None)
    if response.content != content:
        raise inv.violation(
            "file-content",
            "the downloaded content differs from the uploaded bytes",
            received=response.content[:200],
            expected=content[:200],
            profile=bc_profile,
            key="http.operations.file_content",
        )


def test_list_contains_the_uploaded_file(
    api: ApiClient, uploaded: tuple[dict[str, Any], bytes], bc_profile: Profile
) -> None:
    """The file list (filtered by the batch purpose, walked page by page) MUST contain an
    uploaded file."""
    file, _ = uploaded
    purpose = bc_profile.files.batch_purpose
    items = sup.walk_list(
        lambda after: api.list_files(purpose=purpose, limit=100, after=after),
        bc_profile,
        "file_list",
        limit=100,
        stop=lambda got: any(item["id"] == file["id"] for item in got),
        owned=api.owned,
    )
    if not any(item["id"] == file["id"] for item in items):
        raise inv.violation(
            "file-list",
            f"the file list (purpose={purpose}) does not contain uploaded file {file['id']}",
            received=[item["id"] for item in items[:20]],
            expected=f"a list containing {file['id']}",
            profile=bc_profile,
            key="http.operations.list_files",
        )


@pytest.mark.capability("file_delete")
def test_delete_removes_the_file(api: ApiClient, bc_profile: Profile, bc_target: Target) -> None:
    """Deleting a file MUST answer a schema-valid deletion result (`deleted: true`, the id);
    afterwards retrieving it MUST answer the catalogue's 404 `file_not_found`."""
    content = strategies.build_valid(bc_profile, 1, prefix=f"delete-{bc_target.seed}").content
    file = sup.upload_ok(api, bc_profile, content)
    deleted = inv.expect_ok(api.delete_file(file["id"]), bc_profile, "file_deleted")
    if deleted.get("id") != file["id"] or deleted.get("deleted") is not True:
        raise inv.violation(
            "file-delete",
            "the deletion result does not confirm deleting this file",
            received=deleted,
            expected={"id": file["id"], "deleted": True},
            profile=bc_profile,
            key="http.operations.delete_file",
        )
    inv.expect_error(api.retrieve_file(file["id"]), bc_profile, "file_not_found", id=file["id"])


OPERATIONS_ON_FILE: dict[str, Callable[[ApiClient, str], Any]] = {
    "retrieve_file": ApiClient.retrieve_file,
    "file_content": ApiClient.file_content,
    "delete_file": ApiClient.delete_file,
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS_ON_FILE))
def test_unknown_file_is_404(api: ApiClient, bc_profile: Profile, operation: str) -> None:
    """Retrieving, downloading or deleting a file id that does not exist MUST answer the
    catalogue's 404 `file_not_found` envelope."""
    file_id = f"{bc_profile.ids.file}batchconf-no-such-file"
    inv.expect_error(OPERATIONS_ON_FILE[operation](api, file_id), bc_profile, "file_not_found", id=file_id)


def test_non_jsonl_file_is_refused(api: ApiClient, bc_profile: Profile) -> None:
    """Where the profile says uploads are checked (by name, files.require_jsonl_extension, or
    by first line, files.check_first_line_is_json), uploading a batch file of another type
    (plain text named .txt) MUST be refused with the catalogue's `invalid_file_format`."""
    files = bc_profile.files
    checked = files.require_jsonl_extension or files.check_first_line_is_json
    if not checked or not files.batch_file_extension or "invalid_file_format" not in bc_profile.errors:
        pytest.skip(
            f"profile {bc_profile.name!r} checks no batch upload (files.require_jsonl_extension, "
            "files.check_first_line_is_json)"
        )
    response = api.upload_file(b"this is not a batch file\n", "notes.txt")
    inv.expect_error(response, bc_profile, "invalid_file_format")


def test_file_whose_first_line_is_not_json_is_refused(api: ApiClient, bc_profile: Profile) -> None:
    """Where the profile says uploads check the first line, a batch file whose first line is
    not JSON MUST be refused at upload with the catalogue's `invalid_file_format`."""
    if not bc_profile.files.check_first_line_is_json:
        pytest.skip(f"profile {bc_profile.name!r} does not check uploads (files.check_first_line_is_json)")
    valid = strategies.build_valid(bc_profile, 1, prefix="first-line").content
    name = f"batchconf-bad{bc_profile.files.batch_file_extension}"
    inv.expect_error(api.upload_file(b"not json at all\n" + valid, name), bc_profile, "invalid_file_format")


@pytest.mark.scenarios("mixed_results")
def test_result_files_are_files_of_the_output_purpose(
    api: ApiClient, bc_profile: Profile, finished: Callable[[str], Finished]
) -> None:
    """The output and error files of a finished batch MUST be schema-valid file objects with
    the profile's output purpose, downloadable, and named as the profile says where a source
    says so (where the name is undocumented, as OpenAI's is, it is not checked at all)."""
    done = finished("mixed_results")
    final = done.final
    checked = 0
    for field, template, key in (
        ("output_file_id", bc_profile.output.output_filename, "output.output_filename"),
        ("error_file_id", bc_profile.output.error_filename, "output.error_filename"),
    ):
        file_id = final.get(field)
        if file_id is None:
            continue
        checked += 1
        file = inv.expect_ok(api.retrieve_file(str(file_id)), bc_profile, "file")
        if file.get("purpose") != bc_profile.files.output_purpose:
            raise inv.violation(
                "result-file-purpose",
                f"{field} {file_id} is not a file of the output purpose",
                received=file.get("purpose"),
                expected=bc_profile.files.output_purpose,
                profile=bc_profile,
                key="files.output_purpose",
                observed=file.get("purpose"),
            )
        name = template.format(batch_id=done.batch_id, filename="", stem="", dir="")
        # A name nobody documents is the implementation's business (openai-batch-spec.md
        # §3.3: "tests must not assert on it"), not even as a deviation.
        documented = bool(template) and bc_profile.fact(key).verified
        if documented and file.get("filename") != name:
            raise inv.violation(
                "result-file-name",
                f"{field} {file_id} is not named as the profile says",
                received=file.get("filename"),
                expected=name,
                profile=bc_profile,
                key=key,
                # The name as a template of the profile: the batch id as {batch_id}.
                observed=str(file.get("filename"))
                .replace("{", "{{")
                .replace("}", "}}")
                .replace(done.batch_id, "{batch_id}"),
            )
    assert checked, f"batch {done.batch_id} finished without any result file: {final}"
