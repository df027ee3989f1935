"""batchconf's conformance suite and its pytest plugin.

Run it with `pytest --pyargs conformance [options]` or `batchconf check`. The plugin
(`conformance.plugin`, loaded through the `pytest11` entry point) provides the target,
the clients, the waiter and the scenarios; the tests live in `conformance.suite`.

This module stays import-light: pytest imports it in every run of the environment when it
loads the plugin, so the re-exports below are resolved on first access.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .scenarios import Finished, ScenarioContext, Submitted, scenario

__all__ = ["Finished", "ScenarioContext", "Submitted", "__version__", "scenario"]

try:
    __version__: str = metadata.version("batchconf")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

_LAZY = {"Finished", "ScenarioContext", "Submitted", "scenario"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import scenarios

        return getattr(scenarios, name)
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
