"""Reading TOML tables of facts, each fact carrying its provenance.

A profile table states `source` and `verified` once for all its facts; a single fact may
override them by being written `{ value = ..., source = "...", verified = false, note = "..." }`.
`FactTable` unwraps such values, records the provenance of every key it hands out and, when
the table has been read, refuses any key nobody asked for, so a typo in a profile is an error
at load time rather than a silently ignored fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

__all__ = ["FactTable", "ProfileError", "Provenance"]

T = TypeVar("T")

_PROVENANCE_KEYS = frozenset({"source", "verified", "note"})
_MISSING: Any = object()


class ProfileError(ValueError):
    """A profile file is malformed or contradicts itself.

    The message names the file and the dotted key at fault.
    """

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.file}: [{key}] {problem}")


@dataclass(frozen=True)
class Provenance:
    """Where a profile fact comes from and whether it was verified."""

    source: str
    verified: bool
    note: str = ""


def _type_name(value: object) -> str:
    return type(value).__name__


class FactTable:
    """One TOML table of facts, read key by key with type checks and provenance."""

    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        file: Path,
        key: str,
        provenance: dict[str, Provenance],
        inherited: Provenance | None = None,
    ) -> None:
        self._raw = raw
        self._file = file
        self._key = key
        self._provenance = provenance
        self._seen: set[str] = set(_PROVENANCE_KEYS)
        source = raw.get("source", inherited.source if inherited else None)
        verified = raw.get("verified", inherited.verified if inherited else None)
        if not isinstance(source, str) or not source.strip():
            raise ProfileError(file, key, "every table must state its `source` (a non-empty string)")
        if not isinstance(verified, bool):
            raise ProfileError(file, key, "every table must state `verified` (true or false)")
        self.provenance = Provenance(source, verified, str(raw.get("note", "")))

    def error(self, name: str, problem: str) -> ProfileError:
        """A ProfileError naming `name` inside this table."""
        return ProfileError(self._file, self._dotted(name), problem)

    def _dotted(self, name: str) -> str:
        return f"{self._key}.{name}" if self._key else name

    def names(self) -> list[str]:
        """The fact keys of this table (provenance keys excluded)."""
        return [k for k in self._raw if k not in _PROVENANCE_KEYS]

    def has(self, name: str) -> bool:
        """Whether the table states `name`."""
        return name in self._raw

    @overload
    def get(self, name: str, kind: type[T]) -> T: ...

    @overload
    def get(self, name: str, kind: type[T], default: T) -> T: ...

    def get(self, name: str, kind: type[T], default: T = _MISSING) -> T:
        """The fact `name`, which must be of type `kind` (bool is never taken for int)."""
        self._seen.add(name)
        if name not in self._raw:
            if default is _MISSING:
                raise self.error(name, "is required but missing")
            return default
        value = self._raw[name]
        prov = self.provenance
        if isinstance(value, dict) and "value" in value:
            extra = set(value) - _PROVENANCE_KEYS - {"value"}
            if extra:
                raise self.error(name, f"unknown keys in fact table: {sorted(extra)}")
            prov = Provenance(
                str(value.get("source", prov.source)),
                bool(value.get("verified", prov.verified)),
                str(value.get("note", "")),
            )
            value = value["value"]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(name, f"expected {kind.__name__}, got {_type_name(value)} {value!r}")
        self._provenance[self._dotted(name)] = prov
        return value

    def strings(self, name: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A list of strings."""
        value = self.get(name, list, list(default) if default is not None else _MISSING)
        if not all(isinstance(v, str) for v in value):
            raise self.error(name, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def table(self, name: str, *, required: bool = True) -> FactTable | None:
        """A sub-table, inheriting this table's provenance unless it states its own."""
        self._seen.add(name)
        raw = self._raw.get(name)
        if raw is None:
            if required:
                raise self.error(name, "is required but missing")
            return None
        if not isinstance(raw, dict):
            raise self.error(name, f"expected a table, got {_type_name(raw)}")
        return FactTable(
            raw,
            file=self._file,
            key=self._dotted(name),
            provenance=self._provenance,
            inherited=self.provenance,
        )

    def done(self) -> None:
        """Refuse keys that were never read: they are typos or facts nobody implements."""
        unknown = [k for k in self._raw if k not in self._seen]
        if unknown:
            raise self.error(unknown[0], f"unknown key (known here: {sorted(self._seen - _PROVENANCE_KEYS)})")
