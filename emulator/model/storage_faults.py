"""Storage faults: S3 errors and slowness on the store operations a batch makes.

A batch reads its input ("get": the scan at validation, the lines as they run) and writes
its results ("put": the output and error files). Rules, set from Python
(`Emulator.storage_faults.add(operation="put", status=503, count=2)`) or
`POST /_emulator/storage-faults`, make those operations fail with an S3 error (500
InternalError, 503 SlowDown, ...) or take longer (`delay`, in clock seconds), for a number
(`count`) or a seeded share (`fraction`) of them.

The engine and the result sink reach the store through `BatchStore`, which consults the
rules on every operation and retries a transient error (5xx) up to `attempts` times in
all, as an S3 client does; an injected error fails the operation before anything is
written, so a retried put writes its object once. When every attempt fails it raises
`StorageFailure`, and the engine fails the batch with a batch-level error naming it.

Slowness never sleeps: a delay holds the batch's move that makes the operation (validation
for "get", the end of processing, finalization or cancellation for "put") that many clock
seconds after it was due. On a real clock that is real time; on the virtual clock it is
the timing model's time, which passes when the clock is advanced (`storage_lag` adds it to
the move's due time under timed progression).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

from botocore.exceptions import ClientError

from .._storage import ObjectStore
from .records import BatchRecord
from .rules import RuleList, check_count, check_fraction, rule_fields

__all__ = [
    "OPERATIONS",
    "BatchStore",
    "StorageFailure",
    "StorageFault",
    "StorageFaultSet",
    "storage_lag",
]

T = TypeVar("T")

#: The store operations a rule may name.
OPERATIONS = ("get", "put")
#: The S3 error code an injected status answers with unless the rule names one.
_CODES = {
    403: "AccessDenied",
    404: "NoSuchKey",
    500: "InternalError",
    502: "BadGateway",
    503: "SlowDown",
    504: "GatewayTimeout",
}
#: Statuses an S3 client retries (S3's own guidance: 500 InternalError, 503 SlowDown).
_TRANSIENT = frozenset({500, 502, 503, 504})
_KEYS = frozenset({"operation", "status", "code", "delay", "count", "fraction"})
#: Where a batch keeps the lag its current move owes the slow store (BatchRecord.extra).
_LAG = "storage_lag"
_ACTIONS = {"get": "read its input", "put": "write its results"}
_S3_CALLS = {"get": "GetObject", "put": "PutObject"}


@dataclass
class StorageFault:
    """One rule: store operations `operation` ("get" or "put") fail with HTTP `status` (S3
    error `code`, by default the status's usual one: 503 SlowDown, 500 InternalError) and/or
    take `delay` clock seconds longer. `count` bounds how many operations a rule affects
    (None: all); `fraction` affects that seeded share of them. With both a status and a
    delay, the operation is slow and then fails."""

    operation: str = "get"
    status: int | None = None
    code: str | None = None
    delay: float | None = None
    count: int | None = None
    fraction: float | None = None
    id: int = 0
    hits: int = field(default=0, compare=False)
    slowed: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {list(OPERATIONS)}, got {self.operation!r}")
        if self.status is None and self.delay is None:
            raise ValueError("a storage fault needs a status (an S3 error), a delay (slowness), or both")
        if self.status is not None and self.status not in _CODES:
            raise ValueError(f"status must be one of {sorted(_CODES)}, got {self.status!r}")
        if self.code is not None and not (isinstance(self.code, str) and self.code):
            raise ValueError(f"code must be a non-empty S3 error code, got {self.code!r}")
        if self.delay is not None and (
            not isinstance(self.delay, (int, float)) or isinstance(self.delay, bool) or not 0 < self.delay <= 86_400
        ):
            raise ValueError(f"delay must be a number of seconds in (0, 86400], got {self.delay!r}")
        check_count(self.count)
        check_fraction(self.fraction)

    @property
    def error_code(self) -> str | None:
        """The S3 error code this rule answers with (None: it only slows)."""
        if self.status is None:
            return None
        return self.code or _CODES[self.status]

    @classmethod
    def from_json(cls, data: Any) -> StorageFault:
        """Parse the admin route's JSON form; ValueError naming what is wrong."""
        return cls(**rule_fields(data, _KEYS, "storage fault"))

    def to_json(self) -> dict[str, Any]:
        """JSON form, with how many operations it has failed (`hits`) and slowed so far."""
        return {
            "id": self.id,
            "operation": self.operation,
            "status": self.status,
            "code": self.error_code,
            "delay": self.delay,
            "count": self.count,
            "fraction": self.fraction,
            "hits": self.hits,
            "slowed": self.slowed,
        }


class StorageFailure(Exception):
    """A store operation failed on every attempt (or with an error not worth retrying)."""

    def __init__(self, operation: str, key: str, status: int, code: str, attempts: int) -> None:
        self.operation = operation
        self.key = key
        self.status = status
        self.code = code
        self.attempts = attempts
        super().__init__(self.message())

    @property
    def transient(self) -> bool:
        """Whether an S3 client retries this error."""
        return self.status in _TRANSIENT

    def message(self) -> str:
        """What happened, in words a batch's error can carry."""
        tries = f"on {self.attempts} attempts" if self.attempts > 1 else "on the first attempt (not retried)"
        return (
            f"The batch could not {_ACTIONS.get(self.operation, self.operation)}: the object store answered "
            f"HTTP {self.status} {self.code} to {_S3_CALLS.get(self.operation, self.operation)} {tries}."
        )

    def entry(self) -> dict[str, Any]:
        """The batch-level error entry (`errors.data` in the OpenAI dialect)."""
        return {"code": "storage_error", "message": self.message(), "param": None, "line": None}


class StorageFaultSet(RuleList[StorageFault]):
    """The active storage fault rules (first rule that fires wins), and how many attempts a
    store operation gets (`attempts`, 3 by default, as botocore's standard retry mode)."""

    def __init__(self, seed: int = 0, attempts: int = 3) -> None:
        super().__init__()
        self._rng = random.Random(f"storage-faults:{seed}")
        self.attempts = attempts

    def add(self, operation: str = "get", **fields: Any) -> StorageFault:
        """Add a rule (`status=503, count=2`, `delay=30`, `fraction=0.1`); returns it with its id."""
        return self._append(StorageFault(operation, **fields))

    def add_json(self, data: Any) -> StorageFault:
        """Add a rule from its JSON form."""
        parsed = StorageFault.from_json(data)
        fields = {
            "status": parsed.status,
            "code": parsed.code,
            "delay": parsed.delay,
            "count": parsed.count,
            "fraction": parsed.fraction,
        }
        return self.add(parsed.operation, **fields)

    def _take(self, operation: str, wants: Callable[[StorageFault], bool], used: Callable[[StorageFault], int]) -> Any:
        with self._lock:
            for rule in self._rules:
                if rule.operation != operation or not wants(rule):
                    continue
                if rule.count is not None and used(rule) >= rule.count:
                    continue
                if rule.fraction is not None and self._rng.random() >= rule.fraction:
                    continue
                return rule
        return None

    def take_error(self, operation: str) -> StorageFault | None:
        """The rule that fails this attempt at `operation`, if one does (and count it)."""
        if not self._rules:
            return None
        rule: StorageFault | None = self._take(operation, lambda r: r.status is not None, lambda r: r.hits)
        if rule is not None:
            with self._lock:
                rule.hits += 1
        return rule

    def take_delay(self, operations: tuple[str, ...]) -> float:
        """The seconds the slow rules add to a move making `operations` (and count them)."""
        if not self._rules:
            return 0.0
        total = 0.0
        for operation in operations:
            rule: StorageFault | None = self._take(operation, lambda r: r.delay is not None, lambda r: r.slowed)
            if rule is not None:
                assert rule.delay is not None
                with self._lock:
                    rule.slowed += 1
                total += float(rule.delay)
        return total

    def held(self, b: BatchRecord, operations: tuple[str, ...], t: float) -> bool:
        """Whether the move of `b`'s current role, due at `t`, still waits for the slow store.

        The first time a role's move is tried the slow rules are consulted once; the move then
        happens no earlier than that many seconds after it was first due."""
        lag = b.extra.get(_LAG)
        if lag is None or lag["role"] != b.role:
            if not self._rules:
                return False
            seconds = self.take_delay(operations)
            lag = {"role": b.role, "seconds": seconds, "until": t + seconds}
            b.extra[_LAG] = lag
        return t < float(lag["until"])


def storage_lag(b: BatchRecord) -> float:
    """The seconds a slow store adds to the move of `b`'s current role (0 without one)."""
    lag = b.extra.get(_LAG)
    if lag is None or lag["role"] != b.role:
        return 0.0
    return float(lag["seconds"])


class BatchStore(ObjectStore):
    """The store as a batch's engine and result sink see it: `inner`'s bucket, with the
    storage faults applied to reads ("get") and writes ("put") and transient errors retried.

    Every other operation (and every operation outside a batch: uploads, downloads) goes to
    the same client unchanged.
    """

    def __init__(self, inner: ObjectStore, faults: StorageFaultSet) -> None:
        # The same client and bucket as `inner` (no new bucket, no second moto): the
        # inherited methods work on them as they do for `inner`.
        self.inner = inner
        self.faults = faults
        self.endpoint_url = inner.endpoint_url
        self.bucket = inner.bucket
        self._s3 = inner._s3
        self._mock = inner._mock
        self._recent = inner._recent
        self._owns_bucket = False

    def _attempt(self, operation: str, key: str, call: Callable[[], T]) -> T:
        failure: StorageFailure | None = None
        attempts = max(1, self.faults.attempts)
        for attempt in range(1, attempts + 1):
            rule = self.faults.take_error(operation) if self.faults else None
            if rule is None:
                try:
                    return call()
                except ClientError as exc:
                    meta = exc.response.get("ResponseMetadata", {})
                    status = int(meta.get("HTTPStatusCode", 500) or 500)
                    code = str(exc.response.get("Error", {}).get("Code", "error"))
                    failure = StorageFailure(operation, key, status, code, attempt)
            else:
                assert rule.status is not None and rule.error_code is not None
                failure = StorageFailure(operation, key, rule.status, rule.error_code, attempt)
            if not failure.transient:
                raise failure
        assert failure is not None
        raise failure

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key` (faults applied, transient errors retried)."""
        self._attempt("put", key, lambda: self.inner.put_bytes(key, data, content_type))

    def put_file(
        self,
        key: str,
        fileobj: IO[bytes],
        content_type: str = "application/octet-stream",
        size: int | None = None,
        *,
        split: bool = False,
        bucket: str | None = None,
    ) -> tuple[int, ...]:
        """Store the rest of `fileobj` (faults applied; a retry starts again where the first
        attempt did, so the object is written once, whole)."""
        start = fileobj.tell()

        def put() -> tuple[int, ...]:
            fileobj.seek(start)
            return self.inner.put_file(key, fileobj, content_type, size, split=split, bucket=bucket)

        return self._attempt("put", key, put)

    def iter_chunks(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        parts: tuple[int, ...] = (),
        *,
        bucket: str | None = None,
    ) -> Iterator[bytes]:
        """The object's bytes in chunks (faults applied to the request that opens the read)."""

        def first() -> tuple[bytes | None, Iterator[bytes]]:
            chunks = self.inner.iter_chunks(key, start, end, parts, bucket=bucket)
            return next(chunks, None), chunks

        head, rest = self._attempt("get", key, first)
        return rest if head is None else itertools.chain((head,), rest)

    def close(self) -> None:
        """Nothing to release: `inner` owns the client and the bucket."""
