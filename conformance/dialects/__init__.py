"""Dialect adapters: how the suite submits, reads and fetches batches of each wire dialect.

Tests and invariants see batches through a `Dialect` (`adapter_for(profile)`):

- submit: `stage` the JSONL (OpenAI: upload it through the Files API; ScaiGrid: keep it
  inline; object storage: put it in the run's bucket, referenced by its URL),
  `create_body(input, BatchParams(...))`, or `submit(api, content, params)` for all of
  them; `field(param)` names the create-body field of a canonical parameter (`window` is
  `completion_window` or `endpoint_completion_window`);
- read: `view(state)` is one batch body in canonical terms (`BatchView`: role, counts,
  result references, errors, window, timestamps, the raw body); `ref_rules` says what the
  result references must be at a terminal status;
- results: `fetch_results(api, state)` downloads (or reads from the bucket) and splits the records into successes
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
from ._objectstore import ObjectStorageDialect, on_object_storage
from ._openai import OpenAIDialect
from ._registry import UnknownDialect, adapter_for, known_dialects, register
from ._scaigrid import ScaiGridDialect, chunked_base64

__all__ = [
    "CANONICAL_PARAMS",
    "BatchParams",
    "BatchView",
    "Dialect",
    "Input",
    "ObjectStorageDialect",
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
    "on_object_storage",
    "parse_records",
    "register",
]

register(OpenAIDialect)
register(ObjectStorageDialect, when=on_object_storage)
register(ScaiGridDialect)
