"""The OpenAPI documents of schemas/openapi/, made ready for schemathesis.

Two steps, both small on purpose:
- an OpenAPI Overlay 1.0.0 document (`overlay:`) is applied to the document it `extends`:
  each action's `target` is a plain JSONPath member path (`$.a.b['/c']`, no wildcards or
  filters: every target names exactly one node), `update` merges into it (objects key by key,
  arrays appended, anything else replaced), `remove: true` deletes it;
- `$ref`s to our JSON Schemas (`../json/<dialect>/<name>.schema.json`, and the
  `urn:batchconf:schema:<dialect>/<name>` ids those use among themselves) are bundled into
  `components/schemas` as `batchconf.<dialect>.<name>`, so the document is self-contained and
  its schemas are the very files the suite validates with.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

import schemas

__all__ = ["OPENAPI_DIR", "apply_overlay", "bundle", "load_document", "operations", "resolve_pointer"]

OPENAPI_DIR = Path(schemas.__file__).parent / "openapi"
_JSON_DIR = Path(schemas.__file__).parent / "json"
_URN = "urn:batchconf:schema:"
_SEGMENT = re.compile(r"\.([A-Za-z0-9_$-]+)|\['([^']*)'\]")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class OverlayError(ValueError):
    """An overlay action whose target is malformed or names no node."""


def load_document(name: str) -> dict[str, Any]:
    """The document `schemas/openapi/<name>`, its overlay applied and our schemas bundled."""
    return bundle(_load(OPENAPI_DIR / name))


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a mapping")
    if "overlay" in doc:
        return apply_overlay(_load(path.parent / doc["extends"]), doc)
    return doc


def _parse_target(target: str) -> list[str]:
    if not target.startswith("$"):
        raise OverlayError(f"target {target!r}: must start with '$'")
    keys: list[str] = []
    pos = 1
    while pos < len(target):
        match = _SEGMENT.match(target, pos)
        if match is None:
            raise OverlayError(f"target {target!r}: only .name and ['name'] segments are supported (at {pos})")
        keys.append(match.group(1) if match.group(1) is not None else match.group(2))
        pos = match.end()
    return keys


def _merge(node: Any, update: Any) -> Any:
    if isinstance(node, dict) and isinstance(update, dict):
        for key, value in update.items():
            node[key] = _merge(node[key], value) if key in node else copy.deepcopy(value)
        return node
    if isinstance(node, list) and isinstance(update, list):
        return node + copy.deepcopy(update)
    return copy.deepcopy(update)


def apply_overlay(document: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` with `overlay`'s actions applied in order."""
    result = copy.deepcopy(document)
    for action in overlay.get("actions", []):
        keys = _parse_target(action["target"])
        parent: Any = None
        node: Any = result
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                raise OverlayError(f"target {action['target']!r}: no node {key!r}")
            parent, node = node, node[key]
        if action.get("remove"):
            if parent is None:
                raise OverlayError("cannot remove the document root")
            del parent[keys[-1]]
        elif "update" in action:
            if not isinstance(node, dict | list):
                raise OverlayError(f"target {action['target']!r}: an update needs an object or an array")
            merged = _merge(node, action["update"])
            if parent is None:
                result = merged
            else:
                parent[keys[-1]] = merged
    return result


def _schema_name(dialect: str, stem: str) -> str:
    return f"batchconf.{dialect}.{stem}"


def bundle(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` whose references to our JSON Schemas point inside it."""
    wanted: list[tuple[str, str]] = []

    def local(dialect: str, stem: str, fragment: str) -> str:
        if (dialect, stem) not in wanted:
            wanted.append((dialect, stem))
        return f"#/components/schemas/{_schema_name(dialect, stem)}{fragment}"

    def rewrite(node: Any, own: str | None) -> Any:
        if isinstance(node, dict):
            out = {k: rewrite(v, own) for k, v in node.items() if not (own and k in ("$id", "$schema"))}
            ref = node.get("$ref")
            if isinstance(ref, str):
                out["$ref"] = _rewrite_ref(ref, own, local)
            return out
        if isinstance(node, list):
            return [rewrite(v, own) for v in node]
        return node

    result: dict[str, Any] = rewrite(document, None)
    bundled: dict[str, Any] = result.setdefault("components", {}).setdefault("schemas", {})
    done = 0
    while done < len(wanted):  # a bundled schema may want others (batch_list wants batch)
        dialect, stem = wanted[done]
        done += 1
        raw = json.loads((_JSON_DIR / dialect / f"{stem}.schema.json").read_text(encoding="utf-8"))
        bundled[_schema_name(dialect, stem)] = rewrite(raw, _schema_name(dialect, stem))
    return result


def _rewrite_ref(ref: str, own: str | None, local: Callable[[str, str, str], str]) -> str:
    target, _, fragment = ref.partition("#")
    fragment = f"/{fragment.lstrip('/')}" if fragment else ""
    if not target:
        # Inside a bundled JSON Schema, '#/$defs/x' means that schema's own $defs.
        return f"#/components/schemas/{own}{fragment}" if own else ref
    if target.startswith(_URN):
        dialect, _, stem = target[len(_URN) :].partition("/")
        return local(dialect, stem, fragment)
    path = Path(target)
    if path.suffixes[-2:] == [".schema", ".json"] and path.parent.parent.name == "json":
        return local(path.parent.name, path.name.removesuffix(".schema.json"), fragment)
    raise ValueError(f"$ref {ref!r}: only our JSON Schemas are bundled")


def resolve_pointer(document: dict[str, Any], ref: str) -> Any:
    """The node a local `#/a/b` reference names."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (METHOD, path) the document describes."""
    return {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
        if method in _METHODS
    }
