"""The redactor and the logging hook (`conformance._redact`)."""

from __future__ import annotations

import logging

import pytest

from conformance._redact import Redactor, install_logging_redaction

KEY = "sk-live-0123456789abcdefghijklmnopqrstuvwxyz"


def _redactor(*secrets: str) -> Redactor:
    redact = Redactor()
    for i, secret in enumerate(secrets):
        redact.add(secret, f"KEY_{i}")
    return redact


def test_a_whole_key_is_replaced_by_a_placeholder_naming_its_variable() -> None:
    redact = _redactor(KEY)
    assert redact(f"Authorization: Bearer {KEY}!") == "Authorization: Bearer <redacted $KEY_0>!"


def test_fragments_of_a_long_key_are_replaced_too() -> None:
    # What pytest's saferepr leaves of a long repr truncated in the middle.
    text = f"'{KEY[:14]}...{KEY[-12:]}'"
    clean = _redactor(KEY)(text)
    assert KEY[:14] not in clean
    assert KEY[-12:] not in clean
    assert clean.count("<redacted $KEY_0>") == 2


def test_short_keys_are_replaced_whole_only() -> None:
    redact = _redactor("sk-test-a")
    assert redact("sk-test-a and sk-test-b") == "<redacted $KEY_0> and sk-test-b"


def test_text_without_secrets_is_unchanged() -> None:
    redact = _redactor(KEY)
    text = "nothing to see here, only sk-live-0 which is too short a fragment"
    assert redact(text) == text
    assert not redact.contains(text)
    assert not Redactor()  # an empty redactor is falsy: callers skip work


def test_json_values_are_redacted_recursively() -> None:
    redact = _redactor(KEY)
    value = {"a": [KEY, 1, {"b": f"x{KEY}"}], KEY: None}
    assert redact.redact_obj(value) == {
        "a": ["<redacted $KEY_0>", 1, {"b": "x<redacted $KEY_0>"}],
        "<redacted $KEY_0>": None,
    }


def test_the_redactor_never_shows_its_secrets() -> None:
    assert KEY not in repr(_redactor(KEY))


def test_log_records_are_redacted_when_created_and_the_hook_undoes_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = logging.getLogRecordFactory()
    undo = install_logging_redaction(_redactor(KEY))
    try:
        with caplog.at_level(logging.INFO, logger="batchconf.test"):
            logging.getLogger("batchconf.test").info("key is %s", KEY)
            try:
                raise ValueError(KEY)
            except ValueError:
                logging.getLogger("batchconf.test").exception("failed")
    finally:
        undo()
    assert logging.getLogRecordFactory() is before
    assert KEY not in caplog.text
    assert "key is <redacted $KEY_0>" in caplog.text
    assert "ValueError: <redacted $KEY_0>" in caplog.text
