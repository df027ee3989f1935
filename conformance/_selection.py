"""Which collected tests a target can run, and why the others are deselected."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from schemas import Profile

    from ._reports import ItemInfo

__all__ = [
    "ALWAYS_ON",
    "CAPABILITY_MAP",
    "KNOWN_CAPABILITIES",
    "PACKAGE_DIR",
    "apply_deviations",
    "in_package",
    "item_info",
    "lack",
    "needs_receiver",
    "receiver_unreachable",
]

PACKAGE_DIR = Path(__file__).resolve().parent

#: Capability marker name -> the profile capability that must be true for it to run.
CAPABILITY_MAP: dict[str, str] = {
    "files": "files_api",
    "cancel": "cancel",
    "expiry": "expiry",
    "pagination": "pagination",
    "auth": "auth",
    "isolation": "isolation",
    "metadata": "metadata",
    "usage": "usage",
    "storage_layout": "storage_layout",
    "webhooks": "webhooks",
    "file_delete": "file_delete",
    "output_expires_after": "output_expires_after",
}
#: Capabilities every batch API has: never deselected.
ALWAYS_ON = frozenset({"create", "lifecycle", "records", "validation"})
KNOWN_CAPABILITIES = ALWAYS_ON | CAPABILITY_MAP.keys()


def in_package(item: pytest.Item) -> bool:
    try:
        path = Path(str(item.path)).resolve()
    except (OSError, ValueError):
        return False
    return PACKAGE_DIR in path.parents


def item_info(item: pytest.Item, marker: pytest.Mark, specs: Any) -> tuple[ItemInfo, list[str]]:
    from ._reports import ItemInfo

    problems: list[str] = []
    capability: str | None = None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or marker.kwargs:
        problems.append(f"{item.nodeid}: capability marker takes exactly one name, got {marker.args!r}")
    else:
        capability = marker.args[0]
        if capability not in KNOWN_CAPABILITIES:
            problems.append(
                f"{item.nodeid}: unknown capability {capability!r} (known: {', '.join(sorted(KNOWN_CAPABILITIES))})"
            )
    names: list[str] = []
    for mark in item.iter_markers("scenarios"):
        for name in mark.args:
            if not isinstance(name, str):
                problems.append(f"{item.nodeid}: scenario names must be strings, got {name!r}")
            elif name not in specs:
                known = ", ".join(sorted(specs)) or "none"
                problems.append(f"{item.nodeid}: declares unknown scenario {name!r} (registered: {known})")
            elif name not in names:
                names.append(name)
    for mark in item.iter_markers("dialect"):
        if not mark.args or not all(isinstance(a, str) for a in mark.args) or mark.kwargs:
            problems.append(f"{item.nodeid}: dialect marker takes dialect names, got {mark.args!r}")
    for mark in item.iter_markers("applies"):
        if not mark.args or not all(callable(a) for a in mark.args) or mark.kwargs:
            problems.append(
                f"{item.nodeid}: applies marker takes predicates profile -> reason | None, got {mark.args!r}"
            )
    test = getattr(item, "originalname", None) or item.name
    return ItemInfo(item.nodeid, test, capability, tuple(names), item.path), problems


#: Hosts from which a target reaches the suite's webhook receiver on 127.0.0.1.
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def receiver_unreachable(target_url: str | None) -> str | None:
    """Why the target cannot reach a webhook receiver on 127.0.0.1 (None: it can: the
    in-process emulator, or a URL target on loopback)."""
    if target_url is None:
        return None
    from urllib.parse import urlsplit

    host = urlsplit(target_url).hostname or ""
    if host in _LOOPBACK:
        return None
    return (
        "needs a webhook receiver the target can reach: the suite's receiver listens on 127.0.0.1, "
        f"and the target host {host!r} is not on loopback"
    )


def needs_receiver(caps: list[str], info: ItemInfo, specs: Any) -> bool:
    """Whether a test (by its capabilities and its scenarios') checks webhook deliveries."""
    return "webhooks" in caps or any(specs[n].capability == "webhooks" for n in info.scenarios)


def lack(
    item: pytest.Item,
    info: ItemInfo,
    profile: Profile,
    specs: Any,
    controls: bool,
    unreachable: str | None = None,
) -> tuple[str, str] | None:
    """Why the target cannot run this test, as (reason, kind), or None."""
    name = profile.name
    # The closest marker is the test's capability in reports, but a test inherits the
    # module's too (a cancel test of expired batches needs expiry as well): all must hold.
    caps = [info.capability] + [m.args[0] for m in item.iter_markers("capability") if len(m.args) == 1]
    for cap in dict.fromkeys(c for c in caps if isinstance(c, str)):
        if cap in ALWAYS_ON or cap not in CAPABILITY_MAP:
            continue
        key = CAPABILITY_MAP[cap]
        if not profile.has(key):
            return f"profile {name!r} does not offer capability {cap!r} (capabilities.{key} is not true)", "capability"
    for mark in item.iter_markers("dialect"):
        if profile.dialect not in mark.args:
            dialects = " / ".join(str(a) for a in mark.args)
            return (
                f"a check of the {dialects} dialect; profile {name!r} speaks the {profile.dialect!r} dialect",
                "dialect",
            )
    for mark in item.iter_markers("applies"):
        for predicate in mark.args:
            why = predicate(profile)
            if why is not None:
                return f"does not apply to profile {name!r}: {why}", "applies"
    for scenario_name in info.scenarios:
        spec = specs[scenario_name]
        scap = spec.capability
        if scap not in ALWAYS_ON and scap in CAPABILITY_MAP and not profile.has(CAPABILITY_MAP[scap]):
            return (
                f"needs scenario {scenario_name!r} of capability {scap!r}, which profile {name!r} does not offer",
                "scenario",
            )
        why = spec.lack(profile)
        if why is not None:
            return f"needs scenario {scenario_name!r}, which does not apply to profile {name!r}: {why}", "scenario"
    if item.get_closest_marker("needs_control") is not None and not controls:
        return (
            "needs the emulator's admin routes (/_emulator), which the target does not answer "
            "(pass --target-controls if it does)",
            "controls",
        )
    if unreachable is not None and needs_receiver([c for c in caps if isinstance(c, str)], info, specs):
        return unreachable, "receiver"
    return None


def apply_deviations(notes: list[str], profile: Profile, items: list[pytest.Item]) -> None:
    for deviation in profile.deviations:
        matched = False
        for item in items:
            original = getattr(item, "originalname", None) or item.name
            if deviation.check in (original, item.name) or item.nodeid.endswith(deviation.check):
                item.add_marker(
                    pytest.mark.xfail(
                        strict=True,
                        reason=f"known deviation of {profile.name}: {deviation.reason} (source: {deviation.source})",
                    )
                )
                matched = True
        if not matched:
            notes.append(f"profile deviation {deviation.check!r} matches no collected test")
