"""Bucket policies, read the way an object-storage provider's batch principal needs them read.

A provider whose batches read the user's bucket under a managed principal (Scaleway's
`scw-managed-genapi-batch`) needs, when the bucket has a policy at all, statements that allow
that principal the actions the provider names on the input's key. A bucket without a
policy allows everything. `Deny` wins over `Allow`, as in S3.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from typing import Any

__all__ = ["denied_actions"]

_ARN_PREFIXES = ("arn:aws:s3:::", "arn:scw:s3:::")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _names_principal(principal: Any, principals: Iterable[str]) -> bool:
    if principal == "*":
        return True
    values: list[Any] = []
    if isinstance(principal, dict):
        for item in principal.values():
            values.extend(_as_list(item))
    else:
        values = _as_list(principal)
    wanted = set(principals)
    return any(v == "*" or v in wanted for v in values if isinstance(v, str))


def _covers_action(actions: Any, action: str) -> bool:
    return any(isinstance(a, str) and fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _as_list(actions))


def _covers_resource(resources: Any, bucket: str, key: str) -> bool:
    target = f"{bucket}/{key}"
    for resource in _as_list(resources):
        if not isinstance(resource, str):
            continue
        for prefix in _ARN_PREFIXES:
            resource = resource.removeprefix(prefix)
        if fnmatch.fnmatchcase(target, resource):
            return True
    return False


def denied_actions(
    policy: str | None, *, bucket: str, key: str, principals: Iterable[str], actions: Iterable[str]
) -> list[str]:
    """The `actions` the policy does not let any of `principals` perform on `bucket/key`
    (none when there is no policy). A policy that is not JSON allows nothing."""
    wanted = list(actions)
    if policy is None:
        return []
    try:
        document = json.loads(policy)
    except ValueError:
        return wanted
    statements = _as_list(document.get("Statement", [])) if isinstance(document, dict) else []
    names = list(principals)
    missing = []
    for action in wanted:
        applicable = [
            s
            for s in statements
            if isinstance(s, dict)
            and _names_principal(s.get("Principal"), names)
            and _covers_action(s.get("Action"), action)
            and _covers_resource(s.get("Resource"), bucket, key)
        ]
        allowed = any(s.get("Effect") == "Allow" for s in applicable)
        denied = any(s.get("Effect") == "Deny" for s in applicable)
        if denied or not allowed:
            missing.append(action)
    return missing
