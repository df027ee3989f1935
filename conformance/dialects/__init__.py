"""Dialect adapters: how the suite submits, reads and fetches batches of each wire dialect.

Tests and invariants see batches through a `Dialect` (`adapter_for(profile)`):

- submit: `stage` the JSONL (OpenAI: upload it through the Files API; ScaiGrid: keep it
  inline), `create_body(input, BatchParams(...))`, or `submit(api, content, params)` for
  both; `field(param)` names the create-body field of a canonical parameter (`window` is
  `completion_window` or `endpoint_completion_window`);
- read: `view(state)` is one batch body in canonical terms (`BatchView`: role, counts,
  result references, errors, window, timestamps, the raw body); `ref_rules` says what the
  result references must be at a terminal status;
- results: `fetch_results(api, state)` downloads and splits the records into successes
  and failures (`Results`, raw bytes kept); `record(line)` is one record in canonical terms
  (`ResultRecord`); `check_records` holds the dialect's own placement and shape rules.

A new dialect is one module with one `Dialect` subclass, registered here.
"""

from __future__ import annotations

from ._base import (
    CANONICAL_PARAMS,
    BatchParams,
    BatchView,
    Dialect,
    Input,
    RefRule,
    ResultRecord,
    Results,
    ResultsUnavailable,
    Staged,
    SubmitError,
    default_endpoint,
    parse_records,
)
from ._openai import OpenAIDialect
from ._registry import UnknownDialect, adapter_for, known_dialects, register
from ._scaigrid import ScaiGridDialect, chunked_base64

__all__ = [
    "CANONICAL_PARAMS",
    "BatchParams",
    "BatchView",
    "Dialect",
    "Input",
    "OpenAIDialect",
    "RefRule",
    "ResultRecord",
    "Results",
    "ResultsUnavailable",
    "ScaiGridDialect",
    "Staged",
    "SubmitError",
    "UnknownDialect",
    "adapter_for",
    "chunked_base64",
    "default_endpoint",
    "known_dialects",
    "parse_records",
    "register",
]

register(OpenAIDialect)
register(ScaiGridDialect)
