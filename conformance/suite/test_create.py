"""Creating batches: the accepted shape, the create-time refusals, unknown ids.

Create bodies are built by the dialect adapter, and a test that changes one field names it
canonically (`window`, `endpoint`, `input`): `completion_window` in OpenAI's dialect,
`endpoint_completion_window` in ScaiGrid's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas import Profile

from .. import invariants as inv
from .. import strategies
from .._target import Target
from ..client import ApiClient
from ..dialects import Input
from ..scenarios import Finished
from . import _support as sup

pytestmark = pytest.mark.capability("create")


@pytest.fixture(scope="module")
def input_file(api: ApiClient, bc_profile: Profile, bc_target: Target) -> sup.Deferred[Input]:
    """A valid input for the refused creates, staged once for the module (OpenAI: uploaded;
    ScaiGrid: inline)."""
    content = strategies.build_valid(bc_profile, 1, prefix=f"create-{bc_target.seed}").content
    return sup.Deferred.of(lambda: sup.stage_ok(api, bc_profile, content))


@pytest.fixture
def input_file_id(input_file: sup.Deferred[Input]) -> Input:
    """The module's staged input; a refused upload fails the test using it."""
    return input_file.get()


def _has_field(param: str) -> pytest.MarkDecorator:
    """A marker deselecting the test where the dialect has no create field for `param`."""

    def applies(profile: Profile) -> str | None:
        if sup.dialect(profile).field(param) is None:
            return f"the {profile.dialect} dialect has no create-body field for the {param} (conformance.dialects)"
        return None

    return pytest.mark.applies.with_args(applies)


@pytest.mark.scenarios("all_succeed")
def test_create_answers_a_batch_in_the_initial_status(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """Create MUST answer a schema-valid batch in the profile's initial status that echoes
    the completion window it was given (and the endpoint, where the dialect names one at
    create), with no result reference yet."""
    created = dict(finished("all_succeed").created)
    inv.check_schema(bc_profile, "batch", created, "the create response")
    inv.check_initial_status(created, bc_profile)
    dialect = sup.dialect(bc_profile)
    view = dialect.view(created)
    for field, value in view.refs.items():
        if value is not None:
            raise inv.violation(
                "create-file-ids",
                f"a batch that was just created already names {field}",
                received=value,
                expected=None,
                profile=bc_profile,
                key="output.ids_at_terminal",
                observed=False,
            )
    if dialect.field("endpoint") is not None and view.endpoint not in bc_profile.endpoints:
        raise inv.violation(
            "create-echo",
            "the created batch does not echo an allowed endpoint",
            received=view.endpoint,
            expected=list(bc_profile.endpoints),
            profile=bc_profile,
            key="endpoints.allowed",
        )
    if view.window != dialect.default_window():
        raise inv.violation(
            "create-echo",
            f"the created batch does not echo the completion window it was given ({dialect.field('window')})",
            received=view.window,
            expected=dialect.default_window(),
            profile=bc_profile,
            key="windows",
        )


@pytest.mark.capability("metadata")
@pytest.mark.scenarios("all_succeed")
def test_create_echoes_metadata(finished: Callable[[str], Finished], bc_profile: Profile) -> None:
    """A batch created with metadata MUST carry it unchanged, at create and on every poll."""
    done = finished("all_succeed")
    want = {"batchconf_scenario": "all_succeed"}
    for index, state in enumerate(inv.history(done.created, done.observation)):
        if state.get("metadata") != want:
            raise inv.violation(
                "metadata-echo",
                f"observation #{index} does not carry the metadata given at create",
                received=state.get("metadata"),
                expected=want,
                profile=bc_profile,
                key="capabilities.metadata",
            )


@_has_field("endpoint")
def test_create_refuses_unknown_endpoint(api: ApiClient, bc_profile: Profile, input_file_id: Input) -> None:
    """Create with an endpoint the profile does not allow MUST be refused with the
    catalogue's `invalid_endpoint` error (400 envelope, param `endpoint`)."""
    body = sup.batch_request(bc_profile, input_file_id, "/v1/batchconf/no-such-endpoint")
    inv.expect_error(api.create_batch(body), bc_profile, "invalid_endpoint")


@pytest.mark.parametrize("window", ["1h", "48h", "batchconf-invalid"])
def test_create_refuses_unknown_window(api: ApiClient, bc_profile: Profile, input_file_id: Input, window: str) -> None:
    """Create with a completion window the profile does not offer MUST be refused with the
    catalogue's `invalid_completion_window` error (param: the dialect's window field,
    `completion_window` or `endpoint_completion_window`)."""
    if window in bc_profile.windows:
        pytest.skip(f"{window!r} is a window of profile {bc_profile.name!r}")
    body = sup.batch_request(bc_profile, input_file_id, window=window)
    inv.expect_error(api.create_batch(body), bc_profile, "invalid_completion_window")


def _some_field_required(profile: Profile) -> str | None:
    if not profile.batches.create_required:
        return "it requires no single create field (batches.create_required is empty)"
    return None


@pytest.mark.applies.with_args(_some_field_required)
@pytest.mark.parametrize("param", ["input", "endpoint", "window"])
def test_create_refuses_missing_field(api: ApiClient, bc_profile: Profile, input_file_id: Input, param: str) -> None:
    """Create without a field the profile requires (the dialect's field for the input, the
    endpoint or the window) MUST be refused with the catalogue's `missing_parameter` error
    naming that field as `param`."""
    field = sup.dialect(bc_profile).field(param)
    if field is None or field not in bc_profile.batches.create_required:
        pytest.skip(f"{field or param!r} is not required by profile {bc_profile.name!r} (batches.create_required)")
    body = sup.batch_request(bc_profile, input_file_id)
    del body[field]
    inv.expect_error(api.create_batch(body), bc_profile, "missing_parameter", param=field)


def test_create_refuses_a_body_that_is_not_json(api: ApiClient, bc_profile: Profile) -> None:
    """Create with a request body that is not JSON MUST be refused with the catalogue's
    `invalid_json_body` error."""
    if "invalid_json_body" not in bc_profile.errors:
        pytest.skip(f"profile {bc_profile.name!r} has no invalid_json_body error")
    inv.expect_error(api.create_batch(content=b'{"input_file_id": '), bc_profile, "invalid_json_body")


def _metadata_cases(profile: Profile) -> dict[str, tuple[dict[str, Any], str, dict[str, object]]]:
    limits = profile.limits
    long_key = "k" * (limits.metadata_key_max_chars + 1)
    return {
        "too_many_pairs": (
            {f"k{i}": "v" for i in range(limits.metadata_max_pairs + 1)},
            "metadata_too_many",
            {"count": limits.metadata_max_pairs + 1, "max": limits.metadata_max_pairs},
        ),
        "key_too_long": ({long_key: "v"}, "metadata_key_too_long", {"key": long_key}),
        "value_too_long": (
            {"tag": "v" * (limits.metadata_value_max_chars + 1)},
            "metadata_value_too_long",
            {"key": "tag"},
        ),
        "value_not_a_string": ({"tags": ["a", "b"]}, "invalid_type", {"param": "metadata.tags"}),
    }


@pytest.mark.capability("metadata")
@pytest.mark.parametrize("case", ["too_many_pairs", "key_too_long", "value_too_long", "value_not_a_string"])
def test_create_refuses_bad_metadata(api: ApiClient, bc_profile: Profile, input_file_id: Input, case: str) -> None:
    """Create with metadata beyond the profile's limits (more pairs, a longer key, a longer
    value) or with a value that is not a string MUST be refused with the catalogue's error
    for that case (400 envelope; type, code and param as the catalogue says)."""
    metadata, error, fields = _metadata_cases(bc_profile)[case]
    body = sup.batch_request(bc_profile, input_file_id, metadata=metadata)
    inv.expect_error(api.create_batch(body), bc_profile, error, **fields)


def test_unknown_batch_is_404(api: ApiClient, bc_profile: Profile) -> None:
    """Retrieving a batch id that does not exist MUST answer the catalogue's 404 `batch_not_found`."""
    batch_id = f"{bc_profile.ids.batch}batchconf_no_such_batch"
    inv.expect_error(api.retrieve_batch(batch_id), bc_profile, "batch_not_found", id=batch_id)


@pytest.mark.capability("cancel")
def test_cancel_of_unknown_batch_is_404(api: ApiClient, bc_profile: Profile) -> None:
    """Cancelling a batch id that does not exist MUST answer the catalogue's 404 `batch_not_found`."""
    batch_id = f"{bc_profile.ids.batch}batchconf_no_such_batch"
    inv.expect_error(api.cancel_batch(batch_id), bc_profile, "batch_not_found", id=batch_id)
