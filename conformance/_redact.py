"""Keep API keys out of every byte the harness shows or writes.

A `Redactor` knows the run's secrets (the API keys) and replaces them in text. Besides the
whole key it also removes long fragments of it: pytest shortens long reprs in the middle
(`'sk-abc...xyz'`), which would otherwise leave half a key in a report. The plugin applies it
in three places: test reports before any reporter sees them (terminal, JUnit, `--results`),
log records as they are created (live logs, caplog), and the results writer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Redactor", "install_logging_redaction", "scrub_report"]

# A key at least this long is also redacted by fragments of `_FRAGMENT` characters: a
# fragment that long of a random key does not occur by chance, and one that short is what a
# middle-truncated repr leaves of it.
_FRAGMENTS_FROM = 16
_FRAGMENT = 10


class Redactor:
    """Replaces each registered secret, and any 10-character fragment of a long one, by
    `<redacted $LABEL>`.

    Thread-safe to read while secrets are added (the set of secrets only grows during a run).
    """

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._grams: dict[str, str] = {}
        self._short: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __repr__(self) -> str:
        # Never show the secrets themselves, only how many there are.
        return f"<Redactor of {len(self._secrets)} secret(s)>"

    def add(self, secret: str | None, label: str) -> None:
        """Register `secret` (ignored when None or empty); `label` names it in the placeholder
        (an environment variable name, never the value)."""
        if not secret:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets[secret] = label
            if len(secret) >= _FRAGMENTS_FROM:
                for i in range(len(secret) - _FRAGMENT + 1):
                    self._grams.setdefault(secret[i : i + _FRAGMENT], label)
            else:
                self._short.append((secret, label))
                # Longest first, so a short key inside a longer one cannot split it.
                self._short.sort(key=lambda item: -len(item[0]))

    def contains(self, text: str) -> bool:
        """Whether `text` holds a secret or a fragment of one."""
        return self(text) != text

    def __call__(self, text: str) -> str:
        """`text` with every secret (and fragment of a long one) replaced."""
        if not self._secrets or not text:
            return text
        for secret, label in self._short:
            if secret in text:
                text = text.replace(secret, _placeholder(label))
        if not self._grams:
            return text
        spans = list(self._spans(text))
        if not spans:
            return text
        out: list[str] = []
        last = 0
        for start, end, label in spans:
            out.append(text[last:start])
            out.append(_placeholder(label))
            last = end
        out.append(text[last:])
        return "".join(out)

    def redact_obj(self, obj: Any) -> Any:
        """A copy of a JSON-like value with every string redacted (keys included)."""
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, Mapping):
            return {self(str(k)): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        return obj

    def _spans(self, text: str) -> Iterator[tuple[int, int, str]]:
        # Merge every window that is a fragment of a secret into maximal covered spans.
        grams = self._grams
        start = end = -1
        label = ""
        for i in range(len(text) - _FRAGMENT + 1):
            hit = grams.get(text[i : i + _FRAGMENT])
            if hit is None:
                continue
            if i <= end:
                end = i + _FRAGMENT
                continue
            if start >= 0:
                yield start, end, label
            start, end, label = i, i + _FRAGMENT, hit
        if start >= 0:
            yield start, end, label


def _placeholder(label: str) -> str:
    return f"<redacted ${label}>"


# -- pytest reports ------------------------------------------------------------------------


class _Report(Protocol):
    longrepr: Any
    sections: list[tuple[str, str]]

    @property
    def longreprtext(self) -> str: ...


@dataclass(frozen=True)
class _Crash:
    """Stands in for pytest's ReprFileLocation: JUnit and the short summary read `.message`."""

    path: str
    lineno: int
    message: str

    def toterminal(self, tw: Any) -> None:
        tw.line(f"{self.path}:{self.lineno}: {self.message}")


class _RedactedRepr:
    """A failure representation rendered to plain text with the secrets removed.

    Has `toterminal` (the terminal reporter) and `reprcrash` (JUnit, the short test summary)
    but no `reprtraceback`, so report serialisation (xdist) falls back to `str()`.
    """

    def __init__(self, text: str, crash: _Crash | None) -> None:
        self._text = text
        self.reprcrash = crash

    def toterminal(self, tw: Any) -> None:
        for line in self._text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self._text


def scrub_report(report: _Report, redact: Redactor) -> None:
    """Remove the secrets from a test or collect report in place: its failure text, its
    captured output and log sections, and an xfail reason."""
    if not redact:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        # A skip: (path, lineno, reason); the terminal and JUnit unpack the tuple.
        path, lineno, reason = longrepr
        report.longrepr = (path, lineno, redact(str(reason)))
    elif isinstance(longrepr, str):
        report.longrepr = redact(longrepr)
    elif longrepr is not None:
        text = report.longreprtext
        clean = redact(text)
        if clean != text:
            crash = getattr(longrepr, "reprcrash", None)
            new_crash = None
            if crash is not None:
                new_crash = _Crash(
                    redact(str(getattr(crash, "path", ""))),
                    int(getattr(crash, "lineno", 0) or 0),
                    redact(str(getattr(crash, "message", ""))),
                )
            report.longrepr = _RedactedRepr(clean, new_crash)
    report.sections = [(redact(title), redact(content)) for title, content in report.sections]
    wasxfail = getattr(report, "wasxfail", None)
    if isinstance(wasxfail, str):
        # Not a declared attribute of every report type: set it the way pytest does.
        vars(report)["wasxfail"] = redact(wasxfail)


# -- logging -------------------------------------------------------------------------------


def install_logging_redaction(redact: Redactor) -> Callable[[], None]:
    """Redact every log record of the process as it is created (before any handler, pytest's
    capture and live-log handlers included); returns the function that undoes it.

    The record factory is chained, not replaced, and undoing it when another factory was
    installed on top only disables ours, so nested pytest runs (pytester) unwind cleanly.
    """
    previous = logging.getLogRecordFactory()
    enabled = True

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if enabled and redact:
            _redact_record(record, redact)
        return record

    logging.setLogRecordFactory(factory)

    def uninstall() -> None:
        nonlocal enabled
        enabled = False
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return uninstall


def _redact_record(record: logging.LogRecord, redact: Redactor) -> None:
    try:
        message = record.getMessage()
    except Exception:
        return
    clean = redact(message)
    if clean != message:
        record.msg = clean
        record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact(text)
        if clean != text:
            # Formatters use a set exc_text as is instead of formatting exc_info again.
            record.exc_text = clean
