"""How `batchconf` starts the conformance suite: a fresh `python -m pytest --pyargs conformance`
with only the pytest plugins the suite needs.

pytest loads every plugin installed in the environment by default (schemathesis, locust, ...),
which costs seconds before the first check; the suite needs batchconf's own plugin and
Hypothesis'. Plain `pytest --pyargs conformance` still loads whatever the environment offers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

__all__ = ["SUITE_PLUGINS", "suite_process"]

#: The pytest plugins a run of the suite loads (module names for `-p`).
SUITE_PLUGINS = ("conformance.plugin", "_hypothesis_pytestplugin")


def suite_process(args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of a suite run with `args` (pytest and batchconf options)."""
    argv = [sys.executable, "-m", "pytest"]
    for plugin in SUITE_PLUGINS:
        argv += ["-p", plugin]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return [*argv, "--pyargs", "conformance", *args], env
