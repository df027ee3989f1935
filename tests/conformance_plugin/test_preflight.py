"""The preflight: a URL target that is not there, or refuses the key, ends the run at once with
exit 2 and one short message, before anything is collected, submitted or recorded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import ServedEmulator

ROOT = Path(__file__).resolve().parents[2]


def _check(tmp_path: Path, url: str, key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", "check", "--target-url", url, "--results", "r.jsonl", *extra],
        cwd=tmp_path,
        env={**os.environ, "BATCHCONF_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _short_and_verdict_free(done: subprocess.CompletedProcess[str], tmp_path: Path, key: str) -> str:
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert len(out.splitlines()) < 20, out
    assert "Traceback" not in out and "collected" not in out, out
    assert key not in out
    assert not (tmp_path / "r.jsonl").exists(), "a failed preflight records no verdict"
    return out


def test_an_unreachable_target_exits_2_naming_it(tmp_path: Path) -> None:
    key = "sk-preflight-unreachable-0123456789"
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    out = _short_and_verdict_free(_check(tmp_path, url, key), tmp_path, key)
    assert f"preflight: cannot reach the target at {url}" in out


def test_a_wrong_key_exits_2_naming_its_variable_not_the_key(served: ServedEmulator, tmp_path: Path) -> None:
    key = "sk-preflight-wrong-key-0123456789abcdef"
    out = _short_and_verdict_free(_check(tmp_path, served.base_url, key), tmp_path, key)
    assert "preflight: the target refused the key in $BATCHCONF_API_KEY" in out
    assert "HTTP 401" in out


def test_a_wrong_second_key_exits_2_too(served: ServedEmulator, fake_key: str, tmp_path: Path) -> None:
    os.environ["BATCHCONF_PREFLIGHT_SECOND"] = "sk-preflight-second-wrong-0123456789"
    try:
        done = _check(tmp_path, served.base_url, fake_key, "--second-api-key-env", "BATCHCONF_PREFLIGHT_SECOND")
    finally:
        del os.environ["BATCHCONF_PREFLIGHT_SECOND"]
    out = _short_and_verdict_free(done, tmp_path, fake_key)
    assert "refused the key in $BATCHCONF_PREFLIGHT_SECOND" in out


def test_a_url_outside_the_api_exits_2_suggesting_the_base_url(
    served: ServedEmulator, fake_key: str, tmp_path: Path
) -> None:
    url = served.base_url.rsplit("/v1", 1)[0] + "/nothing-here"
    out = _short_and_verdict_free(_check(tmp_path, url, fake_key), tmp_path, fake_key)
    assert "the API does not answer under" in out and "is --target-url the API's base URL" in out


def test_a_target_that_answers_goes_on_to_its_checks(served: ServedEmulator, fake_key: str, tmp_path: Path) -> None:
    done = _check(tmp_path, served.base_url, fake_key, "-k", "test_unknown_batch_is_404", "--poll-interval", "0")
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "r.jsonl").exists()
