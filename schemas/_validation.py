"""Load the wire-object JSON Schemas and validate instances against them.

The schemas ship as package data under ``schemas/json/<dialect>/<name>.schema.json``
and are addressed by ``"<dialect>/<name>"`` (e.g. ``"openai/batch"``). Each one has
``$id`` ``urn:batchconf:schema:<dialect>/<name>``, and ``$ref`` between them resolves
offline through a registry holding all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "SchemaValidationError",
    "SchemaValidator",
    "SchemaViolation",
    "UnknownSchemaError",
    "get_validator",
    "load_schema",
    "schema_names",
    "validate",
]

_ID_PREFIX: Final = "urn:batchconf:schema:"
_SUFFIX: Final = ".schema.json"
# A received value longer than this is shortened in messages: a whole batch object
# quoted in a one-line message hides the part that matters.
_MAX_REPR: Final = 120
# How many failing alternatives of an anyOf/oneOf a message spells out.
_MAX_ALTERNATIVES: Final = 3
# Keywords whose value maps names to subschemas, or lists subschemas: in a schema path the
# next item is a name or an index, then a subschema. Other applicators hold one subschema.
_MAP_KEYWORDS: Final = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_LIST_KEYWORDS: Final = frozenset({"anyOf", "allOf", "oneOf", "prefixItems"})
_SCHEMA_KEYWORDS: Final = frozenset(
    {
        "items",
        "additionalProperties",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
# Keywords whose default message does not say how big the received value was.
_SIZE_KEYWORDS: Final = {
    "maxLength": "characters",
    "minLength": "characters",
    "maxProperties": "properties",
    "minProperties": "properties",
    "maxItems": "items",
    "minItems": "items",
}


class UnknownSchemaError(KeyError):
    """No schema has the requested name; the message lists the known names."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown schema {self.name!r}; known schemas: {', '.join(self.known)}"


@dataclass(frozen=True)
class SchemaViolation:
    """One way in which an instance breaks a schema.

    ``path`` is a JSON path into the instance (``$``, ``$.request_counts.total``,
    ``$.data[0].status``); ``message`` says what was received and what the rule
    expected; ``validator`` is the JSON Schema keyword that failed (``required``,
    ``enum``, ``type``, ...).

    ``source`` says where the contract states the broken rule: the ``$comment`` (else the
    ``description``) of the innermost schema on the failing keyword's path that has one,
    ``$ref``s followed; ``rule`` locates that schema (``openai/batch#/$defs/request_counts``).
    ``received`` is the part of the instance the rule judged (not compared).
    """

    path: str
    message: str
    validator: str
    source: str = ""
    rule: str = ""
    received: object = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SchemaValidationError(ValueError):
    """An instance does not validate against a named schema.

    Attributes: ``schema`` (the schema name), ``path`` (JSON path of the most
    relevant violation) and ``violations`` (all of them, most relevant first).
    The message reads ``<schema>: <path>: <what broke>``, followed by the other
    violations, one per line, when there are several.
    """

    def __init__(self, schema: str, violations: list[SchemaViolation]) -> None:
        if not violations:
            raise ValueError("a SchemaValidationError needs at least one violation")
        self.schema = schema
        self.violations = violations
        self.path = violations[0].path
        lines = [f"{schema}: {violations[0]}"]
        if len(violations) > 1:
            lines.append(f"  ({len(violations) - 1} more)")
            lines.extend(f"  {schema}: {violation}" for violation in violations[1:])
        super().__init__("\n".join(lines))


class SchemaValidator:
    """Validates instances against one named schema (draft 2020-12).

    Obtain instances through :func:`get_validator`, which builds each one once.
    """

    def __init__(self, name: str, schema: Mapping[str, Any], registry: Registry[Any]) -> None:
        self._name = name
        self._validator = Draft202012Validator(
            schema,
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    @property
    def name(self) -> str:
        """The schema's name, e.g. ``"openai/batch"``."""
        return self._name

    def errors(self, instance: object) -> list[SchemaViolation]:
        """Return every violation of the schema by ``instance``, most relevant first.

        An empty list means the instance is valid.
        """
        found = sorted(self._validator.iter_errors(instance), key=relevance, reverse=True)
        return [_violation(self._name, error) for error in found]

    def is_valid(self, instance: object) -> bool:
        """Return whether ``instance`` validates against the schema."""
        return bool(self._validator.is_valid(instance))

    def validate(self, instance: object) -> None:
        """Raise :class:`SchemaValidationError` unless ``instance`` validates."""
        violations = self.errors(instance)
        if violations:
            raise SchemaValidationError(self._name, violations)

    def __repr__(self) -> str:
        return f"SchemaValidator({self._name!r})"


def schema_names() -> tuple[str, ...]:
    """Return the names of all shipped schemas, sorted (``"openai/batch"``, ...)."""
    return tuple(sorted(_schema_files()))


def load_schema(name: str) -> Mapping[str, Any]:
    """Return the parsed JSON of the schema called ``name``.

    Each call returns a fresh object, so callers may modify it freely.
    Raises :class:`UnknownSchemaError` for an unknown name.
    """
    return _parse(name)


def get_validator(name: str) -> SchemaValidator:
    """Return the validator of the schema called ``name``, built once and cached.

    Raises :class:`UnknownSchemaError` for an unknown name.
    """
    return _cached_validator(name)


def validate(name: str, instance: object) -> None:
    """Validate ``instance`` against the schema called ``name``.

    Raises :class:`SchemaValidationError` (a ``ValueError``) naming the schema, the
    JSON path and the broken rule, or :class:`UnknownSchemaError` for an unknown name.
    """
    get_validator(name).validate(instance)


@cache
def _cached_validator(name: str) -> SchemaValidator:
    return SchemaValidator(name, _parse(name), _registry())


@cache
def _schema_files() -> dict[str, Traversable]:
    root = files(__package__ or "schemas") / "json"
    found: dict[str, Traversable] = {}
    for dialect in root.iterdir():
        if not dialect.is_dir():
            continue
        for entry in dialect.iterdir():
            if entry.is_file() and entry.name.endswith(_SUFFIX):
                found[f"{dialect.name}/{entry.name.removesuffix(_SUFFIX)}"] = entry
    return found


@cache
def _schema_text(name: str) -> str:
    known = _schema_files()
    if name not in known:
        raise UnknownSchemaError(name, sorted(known))
    return known[name].read_text(encoding="utf-8")


def _parse(name: str) -> dict[str, Any]:
    parsed = json.loads(_schema_text(name))
    if not isinstance(parsed, dict):
        raise TypeError(f"schema {name!r} is not a JSON object")
    return parsed


@cache
def _registry() -> Registry[Any]:
    resources: list[tuple[str, Resource[Any]]] = []
    for name in schema_names():
        contents = _parse(name)
        expected = _ID_PREFIX + name
        if contents.get("$id") != expected:
            raise ValueError(f"schema {name!r} must have $id {expected!r}, has {contents.get('$id')!r}")
        resources.append((expected, DRAFT202012.create_resource(contents)))
    return Registry().with_resources(resources).crawl()


def _violation(name: str, error: ValidationError) -> SchemaViolation:
    leaf = _leaf(error)
    source, rule = rule_source(name, list(leaf.absolute_schema_path))
    return SchemaViolation(
        path=leaf.json_path,
        message=_message(leaf),
        validator=str(leaf.validator),
        source=source,
        rule=rule,
        received=leaf.instance,
    )


def rule_source(name: str, schema_path: Sequence[str | int]) -> tuple[str, str]:
    """(source, location) of the rule at ``schema_path`` in schema ``name``.

    ``schema_path`` is a failing keyword's path as jsonschema gives it (``$ref`` is
    transparent there: the path goes on inside the referenced schema). The source is the
    ``$comment`` of the innermost schema along the path that has one, else the innermost
    ``description``; the location is that schema's ``<name>#<JSON pointer>``.
    """
    nodes = _path_nodes(name, schema_path)
    for key in ("$comment", "description"):
        for where, node in reversed(nodes):
            text = node.get(key)
            if isinstance(text, str) and text.strip():
                return text, where
    return "", f"{name}#"


def _path_nodes(name: str, schema_path: Sequence[str | int]) -> list[tuple[str, Mapping[str, Any]]]:
    """The schemas a failing keyword's path goes through, outermost first, each with its location."""
    doc, pointer = name, ""
    node: Any = _document(name)
    nodes: list[tuple[str, Mapping[str, Any]]] = [(f"{doc}#", node)]
    index = 0
    while index < len(schema_path) and isinstance(node, Mapping):
        part = schema_path[index]
        if part not in node and isinstance(node.get("$ref"), str):
            doc, pointer, node = _resolve(doc, node["$ref"])
            nodes.append((f"{doc}#{pointer}", node))
            continue
        if part in _MAP_KEYWORDS or part in _LIST_KEYWORDS:
            if index + 1 >= len(schema_path):
                break
            key = schema_path[index + 1]
            try:
                node = node[part][key]
            except (KeyError, IndexError, TypeError):
                break
            pointer += f"/{part}/{_escape(key)}"
            index += 2
        elif part in _SCHEMA_KEYWORDS:
            node = node.get(part)
            pointer += f"/{part}"
            index += 1
        else:
            break  # the failing keyword itself
        if isinstance(node, Mapping):
            nodes.append((f"{doc}#{pointer}", node))
    return nodes


def _resolve(doc: str, ref: str) -> tuple[str, str, Any]:
    """(document, JSON pointer, subschema) of a local (``#/...``) or batchconf (``urn:...``) ref."""
    target, _, pointer = ref.partition("#")
    if target:
        doc = target.removeprefix(_ID_PREFIX)
    node: Any = _document(doc)
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return doc, pointer, node


def _escape(key: str | int) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


@cache
def _document(name: str) -> Mapping[str, Any]:
    """The parsed schema, shared: read it, never change it."""
    return _parse(name)


def _message(error: ValidationError) -> str:
    """jsonschema's message, completed where it omits what was received."""
    message = _shorten(error.message, error.instance)
    keyword, limit, instance = error.validator, error.validator_value, error.instance
    if keyword == "const":
        message = f"{message}, got {_short_repr(instance)}"
    elif keyword in _SIZE_KEYWORDS and isinstance(instance, (str, dict, list)):
        unit = _SIZE_KEYWORDS[str(keyword)]
        bound = "at most" if str(keyword).startswith("max") else "at least"
        message = f"{message} ({len(instance)} {unit}, {bound} {limit})"
    elif error.context:
        message = f"{message}: {_alternatives(error)}"
    if "propertyNames" in error.absolute_schema_path:
        message = f"property name {message}"
    return message


def _leaf(error: ValidationError) -> ValidationError:
    """Descend through anyOf/oneOf errors while only one alternative is plausible.

    An alternative is implausible when all it says is that the value has another
    type (the ``null`` of a nullable object, say). With several plausible
    alternatives the combinator's own error is kept; its message lists them.
    """
    while error.context:
        plausible = [
            subs
            for subs in _branches(error).values()
            if not all(sub.validator == "type" and not sub.relative_path for sub in subs)
        ]
        if len(plausible) != 1:
            break
        error = max(plausible[0], key=relevance)
    return error


def _branches(error: ValidationError) -> dict[int, list[ValidationError]]:
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        index = sub.relative_schema_path[0] if sub.relative_schema_path else -1
        branches.setdefault(index if isinstance(index, int) else -1, []).append(sub)
    return branches


def _alternatives(error: ValidationError) -> str:
    """Say why each alternative of an anyOf/oneOf failed."""
    options = error.validator_value if isinstance(error.validator_value, list) else []
    reasons = []
    for index, subs in list(_branches(error).items())[:_MAX_ALTERNATIVES]:
        option = options[index] if 0 <= index < len(options) else None
        ref = option.get("$ref") if isinstance(option, dict) else None
        label = _ref_label(ref) if isinstance(ref, str) else f"alternative {index}"
        best = _leaf(max(subs, key=relevance))
        reasons.append(f"as {label}: {best.json_path}: {_message(best)}")
    return "; ".join(reasons)


def _ref_label(ref: str) -> str:
    if ref.startswith("#"):
        return ref.rpartition("/")[2]
    return ref.removeprefix(_ID_PREFIX)


def _short_repr(value: object) -> str:
    text = repr(value)
    if len(text) <= _MAX_REPR:
        return text
    keep = _MAX_REPR // 2
    return f"{text[:keep]}…{text[-keep // 2 :]}"


def _shorten(message: str, instance: object) -> str:
    text = repr(instance)
    if len(text) > _MAX_REPR and text in message:
        return message.replace(text, _short_repr(instance), 1)
    return message
