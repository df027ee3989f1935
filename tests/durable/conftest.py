"""Fixtures of the durable-state tests: one moto server on 127.0.0.1 for the session, and a
fresh bucket name per test (state of one test never leaks into another)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.durable._support import moto_server


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto server child on 127.0.0.1."""
    with moto_server(Path(tmp_path_factory.mktemp("moto"))) as url:
        yield url


@pytest.fixture
def bucket() -> str:
    """A bucket name no other test uses."""
    return f"durable-{uuid.uuid4().hex[:10]}"
