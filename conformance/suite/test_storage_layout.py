"""Where the results of an object-storage batch go: beside the input, at the profile's keys.

Files-API dialects are checked in `test_files` (the output purpose and file names of the
profile). A dialect that writes its results into the user's bucket (`output.location =
"object_storage"`: Scaleway) is checked here against `profile.storage`: for each URL form
of the profile (`storage.object_urls`), the suite puts an input in a fresh folder of its
bucket, runs the batch to its end (one line the endpoint rejects, so that both objects are
due) and lists the user's prefix before and after. The result objects MUST be at the keys
the profile names (`storage.output_key` / `error_key`), their URLs MUST be the batch's file
ids in the form the input was given, and nothing else may appear under the prefix.

A target writing a naming the documents give as an alternative (Scaleway's API reference:
`{filename}-output.jsonl`) where the profile declares the primary one (the how-to:
`{filename}_output.jsonl`) fails with a message naming both and their sources: which naming
a provider writes is a fact of its profile, not something the suite guesses.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._storage import ObjectStorage
from .._target import Target
from .._waiter import Waiter
from ..client import ApiClient
from ..dialects import BatchParams, ObjectStorageDialect, default_endpoint
from ..plugin import TestBudget
from . import _scenarios as sc
from . import _support as sup


def _on_object_storage(profile: Profile) -> str | None:
    if profile.output.location != "object_storage" or profile.storage is None:
        return f"its results do not go to object storage (output.location = {profile.output.location!r})"
    return None


pytestmark = [pytest.mark.capability("storage_layout"), pytest.mark.applies.with_args(_on_object_storage)]

#: The layout batch: two lines that succeed and one its endpoint rejects.
LINES = 3
INPUT_NAME = "batchconf-layout.jsonl"


@dataclass(frozen=True)
class Layout:
    """One layout batch: the URL `form` its input was named in, the input's key and URL, the
    keys under the user's prefix `before` the input was put and `after` the batch ended, the
    keys the profile names for its results (`named`: "primary", maybe "alternative"), the
    ids of the lines that succeed and fail, and the batch run to its end."""

    form: str
    input_key: str
    input_url: str
    before: frozenset[str]
    after: frozenset[str]
    named: dict[str, tuple[str, str]]
    succeeding: frozenset[str]
    failing: frozenset[str]
    run: sup.Run

    @property
    def written(self) -> set[str]:
        """Keys that appeared under the prefix while the batch ran (the input included)."""
        return set(self.after - self.before)

    @property
    def describe(self) -> str:
        """`batch ID (input URL)`, for messages."""
        return f"batch {self.run.batch_id} (input {self.input_url})"


def _dialect(profile: Profile) -> ObjectStorageDialect:
    dialect = sup.dialect(profile)
    assert isinstance(dialect, ObjectStorageDialect), f"profile {profile.name!r} is not served by the object adapter"
    return dialect


def _storage(api: ApiClient) -> ObjectStorage:
    assert api.storage is not None, "the run has no bucket (conformance._target.object_storage)"
    return api.storage


def _layout(api: ApiClient, waiter: Waiter, profile: Profile, target: Target, form: str, index: int) -> Layout:
    dialect = _dialect(profile)
    storage = _storage(api)
    endpoint = default_endpoint(profile)
    prefix = f"layout-{target.seed}-{index}"
    ok = strategies.build_valid(profile, LINES - 1, prefix=f"{prefix}-ok")
    bad = sc.rejected_line(endpoint, profile.models.default, f"{prefix}-rejected")
    lines = [ok.lines[0], bad, *ok.lines[1:]]
    key = storage.new_folder("layout") + INPUT_NAME
    before = frozenset(storage.keys())
    source = dialect.put_input(api, strategies.encode_lines(lines), key, form=form)
    assert source.url is not None
    created = sup.create_ok(api, profile, dialect.create_body(source, BatchParams(endpoint=endpoint)))
    run = sup.run_to_end(api, waiter, profile, created, [str(line["custom_id"]) for line in lines])
    return Layout(
        form=form,
        input_key=key,
        input_url=source.url,
        before=before,
        after=frozenset(storage.keys()),
        named=dialect.result_keys(key, run.batch_id),
        succeeding=frozenset(ok.custom_ids),
        failing=frozenset({str(bad["custom_id"])}),
        run=run,
    )


@pytest.fixture(scope="module")
def layouts(
    api: ApiClient, waiter: Waiter, bc_profile: Profile, bc_target: Target, bc_budget: TestBudget
) -> sup.Deferred[list[Layout]]:
    """One layout batch per URL form of the profile, each run to its end in a fresh folder."""
    forms = _dialect(bc_profile).forms()
    bc_budget.charge(LINES * len(forms), "storage layout")
    return sup.Deferred.of(
        lambda: [_layout(api, waiter, bc_profile, bc_target, form, i) for i, form in enumerate(forms)]
    )


def _wrote(layout: Layout, kind: int, profile: Profile) -> str:
    """The key of the output (kind 0) or error (kind 1) object at the profile's primary key;
    a violation when it is not there (naming the alternative the target wrote instead)."""
    primary = layout.named["primary"][kind]
    fact = ("storage.output_key", "storage.error_key")[kind]
    what = ("output", "error")[kind]
    if primary in layout.after:
        return primary
    other = layout.named.get("alternative")
    if other is not None and other[kind] in layout.after:
        alt_fact = ("storage.alternative_output_keys", "storage.alternative_error_keys")[kind]
        raise inv.violation(
            "storage-naming",
            f"{layout.describe} wrote its {what} object with the alternative naming, where the profile declares "
            f"the primary one (deviation from {fact}; the alternative is {inv.cite(profile, alt_fact)})",
            received=other[kind],
            expected=primary,
            profile=profile,
            key=fact,
            # The naming the target wrote, as a template of the profile.
            observed=(profile.storage.alternative_output_keys, profile.storage.alternative_error_keys)[kind][0]
            if profile.storage is not None
            else inv.NOT_OBSERVED,
        )
    raise inv.violation(
        "storage-key",
        f"{layout.describe} has no {what} object beside its input at the key the profile names",
        received=sorted(layout.written - {layout.input_key}) or "no new object under the prefix",
        expected=primary,
        profile=profile,
        key=fact,
    )


def test_result_objects_are_beside_the_input_at_the_profile_keys(
    layouts: sup.Deferred[list[Layout]], api: ApiClient, bc_profile: Profile, bc_target: Target
) -> None:
    """A finished batch with successes and failures MUST write its output and its error
    object in the input's bucket and folder, at the keys `storage.output_key` and
    `storage.error_key` give (Scaleway: `{filename}_output.jsonl` and `{filename}_error.jsonl`,
    the how-to); an alternative naming of the documents (`-output`) is reported, not
    accepted. The output object MUST hold exactly the lines that succeeded and the error
    object exactly the line that failed, and every batch invariant MUST hold."""
    storage = _storage(api)
    for layout in layouts.get():
        sup.check_run(layout.run, bc_profile, bc_target)
        for kind, want in enumerate((layout.succeeding, layout.failing)):
            key = _wrote(layout, kind, bc_profile)
            records = inv.parse_jsonl(storage.get(key), f"s3://{storage.bucket}/{key}")
            ids = sorted(str(line.get("custom_id")) for line in records if isinstance(line, dict))
            if ids != sorted(want):
                what = ("output", "error")[kind]
                raise inv.violation(
                    "storage-content",
                    f"the {what} object of {layout.describe} at {key} does not hold exactly its {what} lines",
                    received=ids,
                    expected=sorted(want),
                    source=inv.SPEC_RECORDS,
                )


def test_result_ids_are_the_objects_urls_in_the_inputs_form(
    layouts: sup.Deferred[list[Layout]], api: ApiClient, bc_profile: Profile
) -> None:
    """`output_file_id` and `error_file_id` of a finished batch MUST be the URLs of the result
    objects at the profile's keys, written in the form the input's URL was given (Scaleway:
    `https://{bucket}.s3.{region}.scw.cloud/{key}` for such an input, `s3://{bucket}/{key}`
    for an s3:// one)."""
    dialect = _dialect(bc_profile)
    storage = _storage(api)
    for layout in layouts.get():
        for kind, ref_field in enumerate(("output_file_id", "error_file_id")):
            key = layout.named["primary"][kind]
            want = storage.url(key, layout.form)
            got = layout.run.final.get(ref_field)
            if got == want:
                continue
            named = dialect.locate(api, got) if isinstance(got, str) else None
            problem = (
                "names the right object, but not in the form the input's URL was given"
                if named == (storage.bucket, key)
                else "is not the URL of the result object at the profile's key"
            )
            raise inv.violation(
                "storage-file-id",
                f"{ref_field} of {layout.describe} {problem}",
                received=got,
                expected=want,
                profile=bc_profile,
                key="storage.object_urls",
            )


def test_nothing_else_is_written_into_the_prefix(layouts: sup.Deferred[list[Layout]], bc_profile: Profile) -> None:
    """While a batch runs, the only objects that appear under the user's prefix MUST be its
    input (put by the suite) and its two result objects beside it: a target writes no
    markers, temporary or copied objects into the user's bucket."""
    for layout in layouts.get():
        allowed = {layout.input_key, *layout.named["primary"], *layout.named.get("alternative", ())}
        extra = sorted(layout.written - allowed)
        if extra:
            raise inv.violation(
                "storage-extra-objects",
                f"{layout.describe} wrote objects other than its results under the user's prefix",
                received=extra,
                expected=sorted({layout.input_key, *layout.named["primary"]}),
                profile=bc_profile,
                key="storage.output_key",
            )
