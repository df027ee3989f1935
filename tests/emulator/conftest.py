"""Fixtures of the emulator's end-to-end tests.

`sdk` is the workhorse: parametrized over target (the emulator in-process, or
`batchconf serve` on 127.0.0.1) and SDK flavour (sync, async), so each test body runs four
times. `sync_sdk` (in-process and server, sync SDK) and `local_sdk` (in-process, sync) are
narrower, for tests whose subject is not the transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio.from_thread
import pytest

from emulator import Emulator, TimingModel
from tests.emulator._support import Harness, InProcessTarget, ProfileCopy, ServerTarget, start_server

KEY_A = "sk-test-alpha-0001"
KEY_B = "sk-test-beta-0002"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerTarget]:
    """`batchconf serve --progression per_poll` with keys A and B, for the whole session."""
    workdir = tmp_path_factory.mktemp("serve")
    handle = start_server(["--api-key", KEY_A, "--api-key", KEY_B, "--progression", "per_poll"], workdir)
    try:
        handle.wait_ready()
        target = ServerTarget(handle.root_url, (KEY_A, KEY_B))
        yield target
        target.close()
    finally:
        handle.stop()  # the exit code is test_server.py's subject
    assert "Traceback" not in handle.stderr(), handle.stderr()[-4000:]


@pytest.fixture(scope="session", autouse=True)
def _moto_kept_started() -> Iterator[None]:
    """Keep moto's mock started for the session, so each `Emulator()` costs ~20 ms, not ~0.4 s.

    Every `Emulator` starts and stops moto itself; nested starts are cheap, the outermost
    one is not.
    """
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    yield
    mock.stop()


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[Emulator]:
    """One in-process emulator (keys A and B) for the session; `emu` resets it per test."""
    with Emulator(api_keys=(KEY_A, KEY_B)) as e:
        yield e


@pytest.fixture
def emu(shared_emulator: Emulator) -> Emulator:
    """The in-process emulator, reset: no files, batches, faults or mutations; per-poll timing.

    One emulator, reset between tests (a fresh `Emulator()` would do as well: about 5 ms
    after the first); the clock keeps running forward, which no test minds.
    """
    shared_emulator.reset()
    shared_emulator.timing = TimingModel()
    return shared_emulator


def _make_sdk(request: pytest.FixtureRequest, name: str) -> Iterator[Harness]:
    kind, mode = name.split("-")
    target: InProcessTarget | ServerTarget
    if kind == "inproc":
        target = InProcessTarget(request.getfixturevalue("emu"))
    else:
        server: ServerTarget = request.getfixturevalue("server")
        server.reset()
        target = server
    if mode == "sync":
        sdk = Harness(target, mode, None)
        try:
            yield sdk
        finally:
            sdk.close()
    else:
        with anyio.from_thread.start_blocking_portal() as portal:
            sdk = Harness(target, mode, portal)
            try:
                yield sdk
            finally:
                sdk.close()
    if sdk.checker.violations:
        pytest.fail("responses broke the schemas:\n" + "\n".join(sdk.checker.violations[:20]))


@pytest.fixture(params=["inproc-sync", "inproc-async", "server-sync", "server-async"])
def sdk(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Every target x SDK flavour; all responses schema-checked."""
    yield from _make_sdk(request, request.param)


@pytest.fixture(params=["inproc-sync", "server-sync"])
def sync_sdk(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Both targets, sync SDK only."""
    yield from _make_sdk(request, request.param)


@pytest.fixture
def server_sdk(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The server target, sync SDK."""
    yield from _make_sdk(request, "server-sync")


@pytest.fixture
def local_sdk(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The in-process target, sync SDK."""
    yield from _make_sdk(request, "inproc-sync")


@pytest.fixture
def profile_copy(tmp_path: Path) -> ProfileCopy:
    """Writes edited copies of the bundled openai profile into tmp_path."""
    return ProfileCopy(tmp_path)
