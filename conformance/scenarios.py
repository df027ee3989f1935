"""Scenarios: the batches the suite submits up front, then polls together.

A scenario is a function that submits one batch and says what it submitted:

```python
from conformance.scenarios import scenario, ScenarioContext, Submitted

@scenario("all_succeed", capability="lifecycle", requests=3)
def all_succeed(ctx: ScenarioContext) -> Submitted:
    ids = ctx.custom_ids(3)
    batch = ctx.submit([ctx.chat_line(cid) for cid in ids])   # upload + create, or inline
    return Submitted(batch_id=batch["id"], input_custom_ids=ids, created=batch)
```

A test declares the scenarios it reads, so the plugin knows them before any test runs:

```python
@pytest.mark.capability("records")
@pytest.mark.scenarios("all_succeed")
def test_every_line_once(finished):
    done = finished("all_succeed")     # a Finished: polled, files downloaded and parsed
```

(`pytestmark = pytest.mark.scenarios(...)` declares them for a whole module.) After
collection the plugin submits every scenario that a selected test declares, within the
request budget, records the batch ids in the state file, polls all of them through the
waiter, fetches and parses their results through the profile's dialect adapter
(`conformance.dialects`) and caches one `Finished` per scenario. A
scenario whose submission, polling or download fails makes exactly the tests declaring it
error at setup, with the reason; the rest of the run goes on.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from ._waiter import Observation, Waiter, WaitError, WaitTimeout
from .dialects import BatchParams, Dialect, Input, Results, ResultsUnavailable, SubmitError, adapter_for, parse_records

if TYPE_CHECKING:
    from schemas import Profile

    from ._target import Target
    from .client import ApiClient, ApiResponse
    from .control import Control

__all__ = [
    "Budget",
    "BudgetExceeded",
    "Finished",
    "ScenarioContext",
    "ScenarioError",
    "ScenarioRunner",
    "ScenarioSpec",
    "StateFileError",
    "Submitted",
    "registered",
    "scenario",
]


# -- registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioSpec:
    """A registered scenario: its builder, the capability it exercises, how many requests
    (input lines) it submits (the budget counts these), the named timeout its wait uses,
    whether it applies to a profile, and whether a later run may resume it from the state
    file (not when what it checks happened during the run that submitted it, e.g. webhook
    deliveries to that run's receiver)."""

    name: str
    builder: Callable[[ScenarioContext], Submitted]
    capability: str
    requests: int
    timeout: str = "terminal"
    applies: Callable[[Profile], str | None] | None = None
    resumable: bool = True

    def lack(self, profile: Profile) -> str | None:
        """Why this scenario cannot run against `profile` (None when it can)."""
        return self.applies(profile) if self.applies is not None else None

    @property
    def doc(self) -> str:
        """The builder's docstring (what the scenario submits)."""
        return (self.builder.__doc__ or "").strip()


_REGISTRY: dict[str, ScenarioSpec] = {}

F = TypeVar("F", bound=Callable[["ScenarioContext"], "Submitted"])


def scenario(
    name: str,
    *,
    capability: str,
    requests: int,
    timeout: str = "terminal",
    applies: Callable[[Profile], str | None] | None = None,
    resumable: bool = True,
) -> Callable[[F], F]:
    """Register the decorated builder as scenario `name`.

    `applies(profile)` returns why the scenario does not apply to a profile (a test needing
    it is then deselected with that reason), or None when it does. `resumable` False: a
    later run submits it again rather than resuming it from the state file.

    `requests` must be the number of input lines it submits (at least 1). Registering a name
    twice is an error, unless the first registration came from a module that has since been
    unloaded (a re-import, as in nested pytest runs), which it then replaces.
    """
    if requests < 1:
        raise ValueError(f"scenario {name!r}: requests must be >= 1, got {requests}")

    def register(builder: F) -> F:
        old = _REGISTRY.get(name)
        if old is not None and old.builder is not builder and _alive(old.builder):
            raise ValueError(
                f"scenario {name!r} is already registered by {old.builder.__module__}.{old.builder.__qualname__}"
            )
        _REGISTRY[name] = ScenarioSpec(name, builder, capability, requests, timeout, applies, resumable)
        return builder

    return register


def _alive(builder: Callable[..., Any]) -> bool:
    module = sys.modules.get(builder.__module__)
    return module is not None and getattr(module, builder.__name__, None) is builder


def registered() -> Mapping[str, ScenarioSpec]:
    """Every registered scenario, by name (a read-only view)."""
    return MappingProxyType(_REGISTRY)


# -- what a scenario returns and what a test gets ------------------------------------------


@dataclass(frozen=True)
class Submitted:
    """What a scenario submitted: the batch id, the custom_ids of its input lines (each must
    come back exactly once) and the create response body."""

    batch_id: str
    input_custom_ids: Sequence[str]
    created: Mapping[str, Any]


@dataclass(frozen=True)
class Finished:
    """A scenario's batch polled to a terminal status, with its results.

    `observation` holds every polled snapshot; `final` is the last one. `output_lines` and
    `error_lines` are the parsed success and failure records (OpenAI: the output and the
    error file; ScaiGrid: the "ok" and the "error" records of the results file; empty when
    there are none); `raw_results` the downloaded bytes by result reference (None where the
    reference is null), `raw_output` / `raw_error` those of the output and the error file
    (a results file that holds both is `raw_output`); `parse_errors` names lines that are
    not JSON objects. `resumed` is True when the batch id came from the state file of an
    earlier run.
    """

    name: str
    batch_id: str
    created: Mapping[str, Any]
    observation: Observation
    input_custom_ids: Sequence[str]
    output_lines: Sequence[Mapping[str, Any]] = ()
    error_lines: Sequence[Mapping[str, Any]] = ()
    raw_output: bytes | None = None
    raw_error: bytes | None = None
    parse_errors: Sequence[str] = ()
    resumed: bool = False
    raw_results: Mapping[str, bytes | None] = field(default_factory=dict)

    @property
    def final(self) -> Mapping[str, Any]:
        """The last polled batch body."""
        return self.observation.final


class ScenarioError(Exception):
    """A scenario could not be submitted, polled or downloaded; tests declaring it error."""


class BudgetExceeded(Exception):
    """Submitting would exceed the request budget (`--max-requests`)."""


class StateFileError(Exception):
    """The state file is unreadable or was written for another target or profile."""


# -- budget --------------------------------------------------------------------------------


class Budget:
    """The number of requests (input lines) one run may submit; None means unbounded.

    The plugin charges scenarios up front; a test that submits batches of its own charges
    them through the `bc_budget` fixture and is skipped when the budget is spent.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = 0

    @property
    def remaining(self) -> int | None:
        """Requests left, or None when unbounded."""
        return None if self.limit is None else self.limit - self.spent

    def check(self, requests: int, what: str) -> None:
        """Raise `BudgetExceeded` if `requests` more would exceed the limit."""
        remaining = self.remaining
        if remaining is not None and requests > remaining:
            raise BudgetExceeded(
                f"request budget exceeded: {what} needs {requests} request(s) but only {remaining} of "
                f"max_requests = {self.limit} remain ({self.spent} already spent); raise --max-requests "
                "or select fewer tests"
            )

    def charge(self, requests: int, what: str) -> None:
        """Check, then count `requests` as spent."""
        self.check(requests, what)
        self.spent += requests

    def __repr__(self) -> str:
        return f"<Budget spent={self.spent} limit={self.limit}>"


# -- the context a builder gets ------------------------------------------------------------


class ScenarioContext:
    """What a scenario builder works with: the main principal's `api`, the `profile` and its
    `dialect` adapter, the `target` descriptor, `control` (None without admin routes), the
    run's `seed` and an `rng` seeded from it and the scenario's name, `webhook_url` (the
    run's webhook receiver, None when none runs), plus helpers that raise `ScenarioError`
    when the target refuses."""

    def __init__(
        self,
        name: str,
        *,
        api: ApiClient,
        profile: Profile,
        target: Target | None,
        control: Control | None,
        seed: int,
        webhook_url: str | None = None,
    ) -> None:
        self.name = name
        self.api = api
        self.profile = profile
        self.dialect: Dialect = adapter_for(profile)
        self.target = target
        self.control = control
        self.seed = seed
        self.webhook_url = webhook_url
        self.rng = random.Random(f"{seed}:{name}")

    def custom_ids(self, count: int, prefix: str | None = None) -> list[str]:
        """`count` distinct custom_ids, `<prefix or name>-<seed>-<i>`."""
        stem = prefix or self.name
        return [f"{stem}-{self.seed}-{i}" for i in range(count)]

    def chat_line(self, custom_id: str, content: str = "Say hello.", **body: Any) -> dict[str, Any]:
        """One chat input line for the profile's chat endpoint and default model (unless
        `body` says otherwise)."""
        profile = self.profile
        chat = next((e for e in profile.endpoints if e.endswith("/chat/completions")), profile.endpoints[0])
        payload: dict[str, Any] = {"model": profile.models.default, "messages": [{"role": "user", "content": content}]}
        payload.update(body)
        return {"custom_id": custom_id, "method": "POST", "url": chat, "body": payload}

    @staticmethod
    def jsonl(lines: Iterable[Mapping[str, Any] | str | bytes]) -> bytes:
        """JSONL bytes: mappings are serialised, str/bytes lines kept as given."""
        out = bytearray()
        for line in lines:
            if isinstance(line, bytes):
                out += line
            elif isinstance(line, str):
                out += line.encode("utf-8")
            else:
                out += json.dumps(line, separators=(",", ":")).encode("utf-8")
            out += b"\n"
        return bytes(out)

    def _filename(self) -> str:
        return f"batchconf-{self.name}-{self.seed}{self.profile.files.batch_file_extension}"

    def stage(self, lines: Iterable[Mapping[str, Any] | str | bytes], filename: str | None = None) -> Input:
        """Make the lines referable by a create request, as the dialect does (OpenAI: upload
        them as a batch input file; ScaiGrid: keep them inline); returns the input."""
        try:
            staged = self.dialect.stage(self.api, self.jsonl(lines), filename=filename or self._filename())
        except SubmitError as exc:
            raise ScenarioError(f"scenario {self.name!r}: {exc}") from None
        if staged.input is None:
            detail = staged.response.describe() if staged.response is not None else "no reference"
            raise ScenarioError(f"scenario {self.name!r}: could not upload the input file: {detail}")
        return staged.input

    def upload_jsonl(self, lines: Iterable[Mapping[str, Any] | str | bytes], filename: str | None = None) -> str:
        """Upload the lines as a batch input file through the Files API; returns the file id
        (dialects without a Files API: `submit` or `stage` instead)."""
        source = self.stage(lines, filename)
        if source.file_id is None:
            raise ScenarioError(
                f"scenario {self.name!r}: profile {self.profile.name!r} ({self.dialect.name} dialect) takes its input "
                f"as {source.describe()}, not as an uploaded file; use ScenarioContext.submit"
            )
        return source.file_id

    def create(
        self,
        source: Input | str,
        *,
        endpoint: str | None = None,
        window: str | None = None,
        metadata: Mapping[str, str] | None = None,
        webhook_url: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a batch of a staged input (a str is a file id) with the canonical parameters
        (the dialect's defaults unless given); returns the 200 body."""
        source = Input.of_file(source) if isinstance(source, str) else source
        params = BatchParams(window=window, endpoint=endpoint, metadata=metadata, webhook_url=webhook_url, extra=extra)
        response = self.api.create_batch(self.dialect.create_body(source, params))
        created = _expect(response, "create the batch", self.name)
        if not isinstance(created.get("id"), str):
            raise ScenarioError(f"scenario {self.name!r}: the created batch has no string 'id': {response.describe()}")
        return created

    def create_batch(
        self,
        input_file_id: str,
        *,
        endpoint: str | None = None,
        completion_window: str | None = None,
        metadata: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a batch of an uploaded file (the profile's default window unless given);
        returns the 200 body."""
        return self.create(input_file_id, endpoint=endpoint, window=completion_window, metadata=metadata, **extra)

    def submit(
        self,
        lines: Iterable[Mapping[str, Any] | str | bytes],
        *,
        endpoint: str | None = None,
        window: str | None = None,
        metadata: Mapping[str, str] | None = None,
        webhook_url: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Stage the lines and create the batch, the dialect's way; returns the 200 body."""
        return self.create(
            self.stage(lines), endpoint=endpoint, window=window, metadata=metadata, webhook_url=webhook_url, **extra
        )


def _expect(response: ApiResponse, what: str, name: str) -> dict[str, Any]:
    if response.status != 200 or not isinstance(response.json, dict):
        raise ScenarioError(f"scenario {name!r}: could not {what}: {response.describe()}")
    return response.json


# -- result files --------------------------------------------------------------------------


def parse_jsonl(raw: bytes | None, label: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON objects of a JSONL file, and a note per line that is not one."""
    return parse_records(raw, label)


# -- state file ----------------------------------------------------------------------------

_STATE_VERSION = 1


class StateFile:
    """Batch ids submitted by a run, so a later run against the same target and profile polls
    them instead of submitting (and paying) again. Written after every submission."""

    def __init__(self, path: Path, target: str, profile: str) -> None:
        self.path = path
        self.target = target
        self.profile = profile
        self.scenarios: dict[str, dict[str, Any]] = {}

    def load(self) -> None:
        """Read the file if it exists; raise `StateFileError` if it is malformed or belongs to
        another target or profile."""
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateFileError(f"state file {self.path} cannot be read as JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
            raise StateFileError(f"state file {self.path}: expected a version {_STATE_VERSION} batchconf state file")
        if (data.get("target"), data.get("profile")) != (self.target, self.profile):
            raise StateFileError(
                f"state file {self.path} was written for target {data.get('target')!r} with profile "
                f"{data.get('profile')!r}, but this run targets {self.target!r} with profile {self.profile!r}; "
                "remove it or pass another --state-file"
            )
        scenarios = data.get("scenarios")
        if not isinstance(scenarios, dict):
            raise StateFileError(f"state file {self.path}: 'scenarios' must be an object")
        for name, entry in scenarios.items():
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("batch_id"), str)
                and isinstance(entry.get("input_custom_ids"), list)
                and isinstance(entry.get("created"), dict)
            ):
                raise StateFileError(
                    f"state file {self.path}: scenario {name!r} needs batch_id, input_custom_ids and created"
                )
            self.scenarios[name] = entry

    def record(self, name: str, submitted: Submitted) -> None:
        """Remember a submission and rewrite the file (atomically)."""
        self.scenarios[name] = {
            "batch_id": submitted.batch_id,
            "input_custom_ids": list(submitted.input_custom_ids),
            "created": dict(submitted.created),
            "submitted_at": time.time(),
        }
        self.save()

    def save(self) -> None:
        """Write the file (via a temporary file and rename)."""
        data = {"version": _STATE_VERSION, "target": self.target, "profile": self.profile, "scenarios": self.scenarios}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)


# -- the runner ----------------------------------------------------------------------------


@dataclass
class _Outcome:
    finished: Finished | None = None
    error: str | None = None
    #: Still running when its wait ran out (a URL target): not a verdict; resumable.
    pending: bool = False


@dataclass
class ScenarioRunner:
    """Submits, polls and downloads the scenarios of one run; `result(name)` serves them.

    `announce` receives progress lines for the terminal; `redact` cleans every message;
    `webhook_url` is handed to the builders (the run's webhook receiver, if any).
    """

    api: ApiClient
    profile: Profile
    waiter: Waiter
    budget: Budget
    target: Target | None = None
    control: Control | None = None
    seed: int = 0
    state: StateFile | None = None
    announce: Callable[[str], None] = field(default=lambda line: None)
    redact: Callable[[str], str] = field(default=lambda text: text)
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    webhook_url: str | None = None
    #: A batch still running when its wait runs out is *pending* (True: a URL target, whose
    #: batches may take longer than any wait worth making) rather than a failure (False:
    #: the emulator, where it means a batch that never ends).
    pending_on_timeout: bool = False
    submitted: dict[str, Submitted] = field(default_factory=dict)

    def plan(self, names: Iterable[str]) -> tuple[list[str], list[str]]:
        """(names to resume from the state file, names to submit)."""
        resume: list[str] = []
        submit: list[str] = []
        for name in dict.fromkeys(names):
            if name in self.outcomes:
                continue
            stored = self.state is not None and name in self.state.scenarios
            resumable = name not in _REGISTRY or _REGISTRY[name].resumable
            (resume if stored and resumable else submit).append(name)
        return resume, submit

    def check_budget(self, names: Iterable[str]) -> None:
        """Raise `BudgetExceeded` if submitting `names` would exceed the budget (nothing is
        submitted then: a run either fits or does not start)."""
        names = list(names)
        cost = sum(_REGISTRY[n].requests for n in names)
        if names:
            self.budget.check(cost, f"submitting {len(names)} scenario(s) ({', '.join(names)})")

    def run(self, names: Iterable[str]) -> None:
        """Submit (or resume), poll together, download; record an outcome per scenario.

        Raises `BudgetExceeded` before submitting anything if the budget does not fit.
        """
        resume, submit = self.plan(names)
        self.check_budget(submit)
        submitted: dict[str, tuple[Submitted, bool]] = {}
        for name in resume:
            assert self.state is not None
            entry = self.state.scenarios[name]
            submitted[name] = (Submitted(entry["batch_id"], list(entry["input_custom_ids"]), entry["created"]), True)
            self.submitted[name] = submitted[name][0]
            # A resumed batch is the run's own too (a list check may look for it).
            self.api.owned.add(entry["batch_id"])
        if resume:
            self.announce(
                f"resuming {len(resume)} scenario(s) from {self.state.path if self.state else '?'}: {', '.join(resume)}"
            )
        if submit:
            cost = sum(_REGISTRY[n].requests for n in submit)
            self.announce(f"submitting {len(submit)} scenario(s), {cost} request(s): {', '.join(submit)}")
        # A provider that caps a principal's open batches gets them in waves of that size,
        # each polled to its end before the next is submitted.
        wave = self.profile.limits.max_concurrent_batches or len(submit) or 1
        for start in range(0, max(len(submit), 1), wave):
            for name in submit[start : start + wave]:
                spec = _REGISTRY[name]
                self.budget.charge(spec.requests, f"scenario {name!r}")
                try:
                    result = self._submit(spec)
                except Exception as exc:
                    self.outcomes[name] = _Outcome(error=self._message("submitted", name, exc))
                    continue
                submitted[name] = (result, False)
                self.submitted[name] = result
                if self.state is not None:
                    self.state.record(name, result)
            self._poll(submitted)
            submitted = {}

    def _submit(self, spec: ScenarioSpec) -> Submitted:
        ctx = ScenarioContext(
            spec.name,
            api=self.api,
            profile=self.profile,
            target=self.target,
            control=self.control,
            seed=self.seed,
            webhook_url=self.webhook_url,
        )
        result = spec.builder(ctx)
        if not isinstance(result, Submitted):
            raise ScenarioError(f"the builder returned {type(result).__name__}, not a Submitted")
        return result

    def _poll(self, submitted: Mapping[str, tuple[Submitted, bool]]) -> None:
        # One wait per named timeout (usually just "terminal"), all batches of it together.
        groups: dict[str, list[str]] = {}
        for name in submitted:
            groups.setdefault(_REGISTRY[name].timeout if name in _REGISTRY else "terminal", []).append(name)
        for timeout, names in groups.items():
            by_batch = {submitted[n][0].batch_id: n for n in names}
            try:
                observations = self.waiter.wait_many(self.api, list(by_batch), timeout=timeout, raise_errors=False)
            except Exception as exc:
                for name in names:
                    self.outcomes[name] = _Outcome(error=self._message("polled", name, exc))
                continue
            for batch_id, obs in observations.items():
                name = by_batch[batch_id]
                sub, resumed = submitted[name]
                if isinstance(obs.error, WaitTimeout) and self.pending_on_timeout:
                    self.outcomes[name] = _Outcome(
                        error=self._message("finished in time", name, obs.error), pending=True
                    )
                    continue
                if obs.error is not None:
                    hint = " (resumed from the state file: remove it to submit again)" if resumed else ""
                    self.outcomes[name] = _Outcome(error=self._message("polled", name, obs.error) + hint)
                    continue
                try:
                    self.outcomes[name] = _Outcome(finished=self._finish(name, sub, obs, resumed))
                except Exception as exc:
                    self.outcomes[name] = _Outcome(error=self._message("downloaded", name, exc))

    def _finish(self, name: str, sub: Submitted, obs: Observation, resumed: bool) -> Finished:
        try:
            results: Results = adapter_for(self.profile).fetch_results(self.api, obs.final)
        except ResultsUnavailable as exc:
            raise ScenarioError(str(exc)) from None
        refs = list(results.raw)
        raw_output = results.raw.get(refs[0]) if refs else None
        raw_error = results.raw.get(refs[1]) if len(refs) > 1 else None
        return Finished(
            name=name,
            batch_id=sub.batch_id,
            created=sub.created,
            observation=obs,
            input_custom_ids=tuple(sub.input_custom_ids),
            output_lines=results.successes,
            error_lines=results.failures,
            raw_output=raw_output,
            raw_error=raw_error,
            parse_errors=results.problems,
            resumed=resumed,
            raw_results=dict(results.raw),
        )

    def _message(self, phase: str, name: str, exc: BaseException) -> str:
        # The harness's own errors explain themselves; anything else is named by its type.
        text = str(exc) if isinstance(exc, (ScenarioError, WaitError)) else f"{type(exc).__name__}: {exc}"
        return self.redact(f"scenario {name!r} could not be {phase}: {text}")

    def result(self, name: str) -> Finished:
        """The `Finished` of a scenario that ran; raises `ScenarioError` with the reason if it
        failed, or if it never ran (not declared by the test)."""
        outcome = self.outcomes.get(name)
        if outcome is None:
            raise ScenarioError(f"scenario {name!r} was not submitted in this run")
        if outcome.error is not None:
            raise ScenarioError(outcome.error)
        assert outcome.finished is not None
        return outcome.finished

    def failure(self, name: str) -> str | None:
        """The failure message of scenario `name` (or why it is still pending), or None."""
        outcome = self.outcomes.get(name)
        return outcome.error if outcome is not None else None

    def pending(self) -> list[str]:
        """The scenarios whose batches were still running when their wait ran out."""
        return [name for name, outcome in self.outcomes.items() if outcome.pending]
