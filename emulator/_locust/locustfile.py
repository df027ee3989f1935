"""Locust entry point: the users of one dialect (users.py), an optional shape (shapes.py),
and a summary written when Locust quits. Run it through `batchconf load` (or
`python loadtests/run_load.py`), which starts the emulator on 127.0.0.1 and sets:

- `BATCHCONF_DIALECT` (`openai`, `scaigrid`, `scaleway`; default openai): whose users run;
  `scaigrid` also runs OpenAI-compatible users on `/oai/v1` (stats prefixed `compat.`);
- `BATCHCONF_API_KEY`, or several keys comma-separated in `BATCHCONF_API_KEYS` (each user
  takes the next, so that a per-key concurrent-batch limit is not what the run measures);
  never printed (anything a server echoes back is redacted);
- `BATCHCONF_LINES` (default 10): request lines per batch; `BATCHCONF_MAX_LINES` (0: none):
  the input lines this Locust process may submit (a URL target's budget);
- `BATCHCONF_SHAPE` (`steady`, `ramp`, `spike`; default none); `BATCHCONF_POLL_TIMEOUT`
  (default 30 s); `BATCHCONF_SUMMARY`: where the JSON summary goes;
- Scaleway: `BATCHCONF_S3_ENDPOINT_URL`, `BATCHCONF_S3_BUCKET`, `BATCHCONF_S3_PREFIX` and
  the usual AWS credential variables.

By hand: `BATCHCONF_API_KEY=... locust -f loadtests/locustfile.py --headless -u 10 -r 10
-t 20s --host http://127.0.0.1:8000`. Importing locust monkey-patches the process with
gevent: never import this file from anything pytest collects; run Locust as a subprocess.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import SHAPES
from users import USERS

#: Pseudo-request types: never HTTP, kept out of the HTTP totals.
PSEUDO = ("AUDIT", "FLOW", "SUBMIT")

_dialect = os.environ.get("BATCHCONF_DIALECT", "openai").strip().lower() or "openai"
if _dialect not in USERS:
    raise SystemExit(f"BATCHCONF_DIALECT must be one of {sorted(USERS)}, got {_dialect!r}")
# Locust runs every User class it finds in this module: expose exactly the chosen dialect's.
globals().update({cls.__name__: cls for cls in USERS[_dialect]})

_shape_name = os.environ.get("BATCHCONF_SHAPE", "").strip().lower()
if _shape_name and _shape_name != "none":
    if _shape_name not in SHAPES:
        raise SystemExit(f"BATCHCONF_SHAPE must be one of {sorted(SHAPES)} or none, got {_shape_name!r}")
    # Likewise for shapes: exactly the chosen one.
    globals()[SHAPES[_shape_name].__name__] = SHAPES[_shape_name]


@events.test_start.add_listener
def _require_key(environment: Environment, **_: Any) -> None:
    if not (os.environ.get("BATCHCONF_API_KEY") or os.environ.get("BATCHCONF_API_KEYS")):
        print("locustfile: set BATCHCONF_API_KEY to the target's API key", file=sys.stderr)
        if environment.runner is not None:
            environment.runner.quit()


@events.quitting.add_listener
def _write_summary(environment: Environment, **_: Any) -> None:
    """Per-operation rows and HTTP-only totals, to $BATCHCONF_SUMMARY as JSON.

    Written when Locust quits (by the master in distributed mode, whose stats merge the
    workers'), so it includes the requests of the stop timeout. Locust's own "Aggregated"
    row mixes the pseudo-requests in; the "http" totals merge real requests only.
    """
    from locust.runners import WorkerRunner
    from locust.stats import StatsEntry

    path = os.environ.get("BATCHCONF_SUMMARY")
    if not path or isinstance(environment.runner, WorkerRunner) or environment.stats is None:
        return
    totals = {kind: StatsEntry(environment.stats, kind, "") for kind in ("HTTP", *PSEUDO)}
    for entry in environment.stats.entries.values():
        totals[entry.method if entry.method in PSEUDO else "HTTP"].extend(entry)

    def figures(e: StatsEntry) -> dict[str, Any]:
        pct = {q: e.get_response_time_percentile(q / 100) if e.num_requests else None for q in (50, 95, 99)}
        return {
            "requests": e.num_requests,
            "failures": e.num_failures,
            "rps": round(e.total_rps, 2),
            "p50_ms": pct[50],
            "p95_ms": pct[95],
            "p99_ms": pct[99],
            "length": e.total_content_length,
        }

    rows = [
        {"type": e.method, "name": e.name, **figures(e)}
        for e in sorted(environment.stats.entries.values(), key=lambda e: (e.method in PSEUDO, e.method, e.name))
    ]
    out = {
        "dialect": _dialect,
        "http": figures(totals["HTTP"]),
        "audit": figures(totals["AUDIT"]),
        "flow": figures(totals["FLOW"]),
        "submit": figures(totals["SUBMIT"]),
        "rows": rows,
        "errors": [
            {"method": e.method, "name": e.name, "error": str(e.error)[:300], "occurrences": e.occurrences}
            for e in environment.stats.errors.values()
        ][:20],
    }
    with open(path, "w") as fh:
        json.dump(out, fh)
