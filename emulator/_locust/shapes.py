"""Load shapes for loadtests/locustfile.py: steady, ramp and spike, each bounded in time.

The locustfile exposes exactly one of them, chosen by the `BATCHCONF_SHAPE` environment
variable (`steady`, `ramp` or `spike`; unset means no shape: plain `-u/-r/-t`). Every shape
reads Locust's common options, so one command line drives any of them:

- `-u N`: the peak number of users;
- `-r R`: the spawn rate (users per second) for ordinary changes;
- `-t 20s`: the duration. A shape always stops: without `-t` it runs `DEFAULT_SECONDS`, and
  never longer than `MAX_SECONDS`.

Importing this module imports locust (and so gevent's monkey-patching): only Locust itself,
in its own process, should import it. Nothing under loadtests/ is collected by pytest.
"""

from __future__ import annotations

import math
from typing import ClassVar

from locust import LoadTestShape

__all__ = ["SHAPES", "RampShape", "SpikeShape", "SteadyShape"]

DEFAULT_SECONDS = 20.0
MAX_SECONDS = 600.0
DEFAULT_USERS = 10


class _BoundedShape(LoadTestShape):
    """A shape that reads -u/-r/-t and returns None (stop) once its duration is over."""

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = True

    def _options(self) -> tuple[int, float, float]:
        users, rate, seconds = DEFAULT_USERS, float(DEFAULT_USERS), DEFAULT_SECONDS
        runner = self.runner
        opts = getattr(getattr(runner, "environment", None), "parsed_options", None)
        if opts is not None:
            users = int(getattr(opts, "num_users", None) or users)
            rate = float(getattr(opts, "spawn_rate", None) or users)
            seconds = float(getattr(opts, "run_time", None) or seconds)
        return max(1, users), max(0.1, rate), min(max(1.0, seconds), MAX_SECONDS)

    def tick(self) -> tuple[int, float] | None:
        users, rate, seconds = self._options()
        t = self.get_run_time()
        if t >= seconds:
            return None
        return self.at(t, users, rate, seconds)

    def at(self, t: float, users: int, rate: float, seconds: float) -> tuple[int, float]:
        """(user count, spawn rate) at `t` seconds into a run of `seconds`."""
        raise NotImplementedError


class SteadyShape(_BoundedShape):
    """`-u` users (spawned at `-r` per second) for the whole run."""

    def at(self, t: float, users: int, rate: float, seconds: float) -> tuple[int, float]:
        return users, rate


class RampShape(_BoundedShape):
    """From 1 user up to `-u` in 5 equal steps over the first 60 % of the run, then hold."""

    STEPS = 5
    RAMP_FRACTION = 0.6

    def at(self, t: float, users: int, rate: float, seconds: float) -> tuple[int, float]:
        ramp = seconds * self.RAMP_FRACTION
        if t >= ramp:
            return users, rate
        step = math.floor(t / (ramp / self.STEPS)) + 1
        return max(1, math.ceil(users * step / self.STEPS)), rate


class SpikeShape(_BoundedShape):
    """A fifth of `-u` users, then all `-u` at once (spawned within a second) for the middle
    20 % of the run, then back down: does the target recover, and lose nothing?"""

    def at(self, t: float, users: int, rate: float, seconds: float) -> tuple[int, float]:
        base = max(1, users // 5)
        if 0.4 * seconds <= t < 0.6 * seconds:
            return users, float(max(users, rate))
        return base, float(max(users, rate))


SHAPES: dict[str, type[_BoundedShape]] = {"steady": SteadyShape, "ramp": RampShape, "spike": SpikeShape}
