"""Shared helpers for the plugin's own tests: a clean environment, the arguments that load
the plugin in a pytester run, and a real HTTP server around an emulator for URL targets."""

from __future__ import annotations

import importlib
import socket
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

# Imported here, once, so that pytester's in-process runs find them already loaded: each run
# restores sys.modules afterwards, and re-importing hypothesis and the emulator (assertion-
# rewritten as pytest plugin code) would cost seconds per run.
for _module in (
    "hypothesis",
    "emulator",
    "uvicorn",
    "conformance._config",
    "conformance._redact",
    "conformance._reports",
    "conformance._target",
    "conformance._waiter",
    "conformance.client",
    "conformance.control",
    "conformance.scenarios",
):
    importlib.import_module(_module)

# The plugin's own BATCHCONF_* variables must not leak from the developer's shell into the
# runs under test.
_ENV = (
    "BATCHCONF_TARGET_URL",
    "BATCHCONF_PROFILE",
    "BATCHCONF_API_KEY_ENV",
    "BATCHCONF_SECOND_API_KEY_ENV",
    "BATCHCONF_PROJECT",
    "BATCHCONF_SEED",
    "BATCHCONF_RESULTS",
    "BATCHCONF_STATE_FILE",
    "BATCHCONF_MAX_REQUESTS",
    "BATCHCONF_TIMEOUTS",
    "BATCHCONF_POLL_INTERVAL",
    "BATCHCONF_TARGET_CONTROLS",
    "BATCHCONF_S3_ENDPOINT_URL",
    "BATCHCONF_S3_BUCKET",
    "BATCHCONF_S3_PREFIX",
    "BATCHCONF_API_KEY",
    "BATCHCONF_SECOND_API_KEY",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def _entry_point_installed() -> bool:
    return any(ep.value == "conformance.plugin" for ep in metadata.entry_points(group="pytest11"))


@pytest.fixture(scope="session")
def plugin_args() -> list[str]:
    """`-p conformance.plugin` unless the pytest11 entry point already loads it (loading it
    twice would be an error)."""
    base = ["-p", "no:cacheprovider"]
    return base if _entry_point_installed() else [*base, "-p", "conformance.plugin"]


class ServedEmulator:
    """An emulator behind a real socket (uvicorn in a thread), for URL-target tests.

    The listening socket is opened before the server thread starts, so a client may connect
    at once (the kernel queues it): nothing waits for the server to come up.
    """

    def __init__(self, api_keys: tuple[str, ...], profile: str = "openai") -> None:
        import uvicorn

        from emulator import Emulator

        self.emulator = Emulator(profile=profile, api_keys=api_keys, progression="per_poll", seed=0)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            self.emulator.app, log_level="warning", lifespan="off", ws="none", http="h11", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        """The API base, ending with the profile's base path."""
        return f"http://127.0.0.1:{self.port}{self.emulator.profile.http.base_path}"

    def __enter__(self) -> ServedEmulator:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        self.emulator.close()


@pytest.fixture
def served() -> Iterator[ServedEmulator]:
    """An emulator served on 127.0.0.1 that accepts the key `FAKE_KEY` (and `FAKE_KEY_2`)."""
    with ServedEmulator((FAKE_KEY, FAKE_KEY_2)) as server:
        yield server


#: A recognisable fake key: if any of it shows up in an output, the redaction failed.
FAKE_KEY = "sk-FAKEKEY-recognisable-0123456789abcdefghijklmnopqrstuvwxyz"
FAKE_KEY_2 = "sk-FAKEKEY2-second-principal-9876543210zyxwvutsrqponmlkjihgfe"


@pytest.fixture
def fake_key() -> str:
    """The recognisable fake key the served emulator accepts."""
    return FAKE_KEY


_INI = """
[pytest]
addopts = --strict-markers --strict-config
xfail_strict = true
filterwarnings = error
"""


class FakeSuite:
    """A tiny conformance suite written into pytester's folder, run through the plugin with
    the project's strictness (strict markers and config, warnings are errors)."""

    def __init__(self, pytester: pytest.Pytester, plugin_args: list[str]) -> None:
        self.pytester = pytester
        self.plugin_args = plugin_args
        pytester.makeini(_INI)

    @property
    def path(self) -> Path:
        """The suite's folder (the run's rootdir)."""
        return self.pytester.path

    def write(self, name: str, source: str) -> Path:
        """Write one test module (`name` without .py)."""
        return self.pytester.makepyfile(**{name: source})

    def run(self, *args: str) -> pytest.RunResult:
        """Run pytest in-process with the plugin loaded."""
        return self.pytester.runpytest(*self.plugin_args, *args)


@pytest.fixture
def fake_suite(pytester: pytest.Pytester, plugin_args: list[str]) -> FakeSuite:
    """An empty fake suite to write tests into."""
    return FakeSuite(pytester, plugin_args)
