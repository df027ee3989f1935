"""Profile overlays: a profile file that `extends` another and restates some of its facts.

An overlay is a TOML file with a top-level `extends = "openai"` (a bundled profile, with a
variant as `"truefoundry+bedrock"`, or the path of another profile file, relative to the
overlay). It is loaded on top of its base: tables merge key by key, and each fact keeps its
own provenance. A fact the overlay restates carries the overlay's source and `verified`
(stated inline, or on its table, or once at the top of the file); every other fact keeps the
base's. `overlay_text` writes such a file from observed values, which is how an inferred fact
becomes a verified one: observe a target, review the overlay, load it with `--profile`.

TOML has no null. The profiles already spell "absent" for string facts as `""` (a catalogue
error's `param = ""` is a null `param`), so an observed None is written `""`.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._facts import ProfileError

__all__ = ["apply_overlay", "overlay_text"]

_PROVENANCE = ("source", "verified", "note")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
# What a null is written as, and the note saying so.
_NULL = ""
_NULL_NOTE = 'observed null, written "" (the profiles\' spelling of an absent value)'


# -- Loading ---------------------------------------------------------------------------------------


def apply_overlay(base: Mapping[str, Any], overlay: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """`base` (a profile's raw TOML) with `overlay` (an overlay's, `extends` removed) on top.

    Sub-tables merge key by key. Each fact of the overlay is written as an inline fact table
    carrying its own `source` and `verified`: stated inline, else by its nearest table in the
    overlay, else at the overlay's top level. A fact that has neither is refused (ProfileError
    naming `file` and the key): it would otherwise pass for a fact of the base's source.
    Arrays of tables (`deviations`, `variants`) replace the base's whole.
    """
    return _merge(base, overlay, _provenance(overlay, (None, None), file, ""), file, "")


def _provenance(
    table: Mapping[str, Any], inherited: tuple[str | None, bool | None], file: Path, key: str
) -> tuple[str | None, bool | None]:
    source = table.get("source", inherited[0])
    verified = table.get("verified", inherited[1])
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise ProfileError(file, f"{key}.source" if key else "source", "must be a non-empty string")
    if verified is not None and not isinstance(verified, bool):
        raise ProfileError(file, f"{key}.verified" if key else "verified", "must be true or false")
    return source, verified


def _is_table(value: object) -> bool:
    return isinstance(value, Mapping) and "value" not in value


def _is_array_of_tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _merge(
    base: Mapping[str, Any],
    overlay: Mapping[str, Any],
    own: tuple[str | None, bool | None],
    file: Path,
    key: str,
) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for name, value in overlay.items():
        if name in _PROVENANCE:
            continue  # the overlay's provenance is its facts', never the base table's
        dotted = f"{key}.{name}" if key else name
        if _is_table(value):
            sub = _provenance(value, own, file, dotted)
            existing = out.get(name)
            known = isinstance(existing, Mapping) and _is_table(existing)
            start: Mapping[str, Any] = existing if isinstance(existing, Mapping) and known else {}
            out[name] = _merge(start, value, sub, file, dotted)
            if not known and sub[0] is not None and sub[1] is not None:
                # A table the base lacks: its own provenance, not its base parent's.
                out[name].setdefault("source", sub[0])
                out[name].setdefault("verified", sub[1])
        elif _is_array_of_tables(value):
            out[name] = copy.deepcopy(value)
        else:
            out[name] = _fact(value, own, file, dotted)
    return out


def _fact(value: object, own: tuple[str | None, bool | None], file: Path, key: str) -> dict[str, Any]:
    fact: dict[str, Any] = dict(value) if isinstance(value, Mapping) else {"value": copy.deepcopy(value)}
    source = fact.get("source", own[0])
    verified = fact.get("verified", own[1])
    if source is None or verified is None:
        raise ProfileError(
            file,
            key,
            "an overlay fact must state its `source` and `verified` (inline, on its table, or at the top of the file)",
        )
    fact["source"], fact["verified"] = source, verified
    return fact


# -- Writing ---------------------------------------------------------------------------------------


def overlay_text(base: str, facts: Sequence[tuple[str, object, str]]) -> str:
    """A profile overlay (TOML text) extending `base` with `facts`.

    `base` is what `extends` names: a bundled profile (`"openai"`, `"truefoundry+bedrock"`)
    or a profile file's path. Each fact is `(dotted key, observed value, source)`, e.g.
    `("errors.batch_not_found.param", None, "observed on my-server, 2026-11-20")`, and is
    written in its table as `{ value = ..., source = ..., verified = true }`. Values may be
    strings, numbers, booleans, lists and tables of those; None is written `""` (TOML has no
    null; `""` is how the profiles spell an absent string fact) with a note saying so.

    The same key given twice with the same value is written once, its sources joined; with
    different values, or a key that is also the table of another, it is a ValueError: such
    observations need a person to decide.
    """
    if not base.strip() or "\n" in base:
        raise ValueError(f"base must name one profile, got {base!r}")
    chosen: dict[str, tuple[object, list[str]]] = {}
    for key, value, source in facts:
        parts = key.split(".")
        if not all(parts) or key == "extends":
            raise ValueError(f"not a dotted fact key: {key!r}")
        if key in chosen:
            if chosen[key][0] != value:
                raise ValueError(f"fact {key!r} observed as {chosen[key][0]!r} and as {value!r}")
            if source not in chosen[key][1]:
                chosen[key][1].append(source)
            continue
        chosen[key] = (value, [source])
    for key in chosen:
        for other in chosen:
            if other.startswith(key + "."):
                raise ValueError(f"fact {key!r} is also the table of fact {other!r}")
    tables: dict[tuple[str, ...], list[str]] = {}
    for key, (value, sources) in chosen.items():
        parent, _, name = key.rpartition(".")
        table = tuple(parent.split(".")) if parent else ()
        tables.setdefault(table, []).append(f"{_key(name)} = {_fact_text(value, '; '.join(sources))}")
    lines = [
        f"# Profile overlay: observed facts on top of profile {base.strip()!r}.",
        "# Review each fact before use; load it with --profile <this file>.",
        '# TOML has no null: a null is written "", the profiles\' spelling of an absent value.',
        f"extends = {_string(base.strip())}",
    ]
    for table in sorted(tables, key=lambda t: (len(t) > 0, t)):
        if table:
            lines += ["", "[" + ".".join(_key(part) for part in table) + "]"]
        lines += tables[table]
    return "\n".join(lines) + "\n"


def _fact_text(value: object, source: str) -> str:
    note = f", note = {_string(_NULL_NOTE)}" if value is None else ""
    return f"{{ value = {_value(value)}, source = {_string(source)}, verified = true{note} }}"


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _value(value: object) -> str:
    if value is None:
        return _string(_NULL)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a TOML value")
