"""Named violations of ScaiGrid's native wire, results file and notifications."""

from __future__ import annotations

from typing import Any

import orjson

from schemas import Profile

from ..._mutations import Mutation, constant
from ...model import seams
from ...model.records import BatchRecord
from .._handlers import status_goes_backwards
from .serialize import WIRE_BATCH

__all__ = ["scaigrid_mutations"]

Wire = dict[str, Any]


def _no_results_url(out: Wire, *, batch: BatchRecord, **_: Any) -> Wire:
    if batch.role == "completed":
        out["results_url"] = None
    return out


def _failed_count_zero(out: Wire, **_: Any) -> Wire:
    out["failed_count"] = 0
    return out


def _status_word(lines: seams.ResultLines, **_: Any) -> seams.ResultLines:
    bent = []
    for raw in lines.output:
        line = orjson.loads(raw)
        line["status"] = "success"
        bent.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    lines.output = bent
    return lines


def scaigrid_mutations(profile: Profile) -> list[Mutation]:
    """ScaiGrid's own mutations."""
    out = [
        Mutation(
            "result_status_word",
            "successful result records say status 'success' instead of 'ok'",
            seams.RESULTS_LINES,
            _status_word,
        ),
        Mutation("results_url_missing", "a completed batch reports results_url null", WIRE_BATCH, _no_results_url),
        Mutation(
            "failed_count_wrong", "failed_count is reported as 0 although lines failed", WIRE_BATCH, _failed_count_zero
        ),
        status_goes_backwards(WIRE_BATCH),
        Mutation(
            "quota_not_enforced",
            "an owner's batches past the concurrent-batch limit are accepted",
            seams.CREATE_MAX_CONCURRENT,
            constant(0),
        ),
        Mutation(
            "inline_limit_not_enforced",
            "base64 input of the limit or more is accepted",
            seams.CREATE_INLINE_MAX,
            constant(0),
        ),
    ]
    if profile.has("webhooks"):
        out += [
            Mutation("webhook_never_sent", "no webhook is sent when a batch ends", seams.NOTIFY_COPIES, constant(0)),
            Mutation(
                "webhook_sent_twice", "the webhook of an ended batch is sent twice", seams.NOTIFY_COPIES, constant(2)
            ),
        ]
    return out
