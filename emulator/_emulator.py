"""`Emulator`: an emulated provider in your process, with ready clients and no socket."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from schemas import Profile, load_profile

from ._api_faults import ApiFaultSet
from ._backend import ModelBackend
from ._clock import Clock, VirtualClock
from ._faults import FaultSet
from ._mutations import Mutations
from ._provider import DEFAULT_LEASE_SECONDS, DEFAULT_WEBHOOK_HOSTS, Provider
from ._storage import ObjectStore
from ._timing import TimingModel
from ._transport import AsyncASGITransport, SyncASGITransport
from ._webhooks import WebhookDispatcher
from .http._app import create_app
from .model.consistency import ConsistencyFaults
from .model.storage_faults import StorageFaultSet

if TYPE_CHECKING:
    import openai

__all__ = ["Emulator", "version"]

ROOT_URL = "http://batchconf.emulator"
#: The bucket state in the store lives in when none is named.
STATE_BUCKET = "batchconf-state"


def version() -> str:
    """The installed batchconf version."""
    try:
        return metadata.version("batchconf")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Emulator(AbstractContextManager["Emulator"]):
    """An emulated batch provider for one profile.

    ```python
    with Emulator() as emu:
        client = emu.openai_client()          # the official SDK, no socket
        ...
        emu.clock.advance(86_400)             # a 24 h window passes at once
    ```

    Progression defaults to "per_poll": each retrieve of a batch moves it one status, so an
    unmodified polling loop finishes at once. `api_keys` default to one generated key
    (`emu.api_key`). Storage is moto in-process unless `s3_endpoint_url` is given;
    `emu.s3_client()` reaches it (a user's bucket, for dialects that take input by URL).
    `webhook_hosts` are the hosts webhooks may reach (this machine by default);
    `result_naming` picks, for results written beside the input, the profile's primary key
    names or the alternative its documents give ("alternative": Scaleway's `-output`).
    `admin=False` leaves out the `/_emulator` routes; `admin_token` requires that token in
    the `X-Batchconf-Admin-Token` header on each of them.
    `state="store"` keeps every record in the store (it needs `s3_endpoint_url`; the bucket
    defaults to `batchconf-state` and is kept at close), so that another Emulator or
    `batchconf serve` on the same store sees and resumes its batches; `lease_seconds` is how
    long a server's claim on a batch lasts without renewal.
    """

    def __init__(
        self,
        profile: str | Path | Profile = "openai",
        *,
        api_keys: tuple[str, ...] | list[str] | None = None,
        progression: str = "per_poll",
        timing: TimingModel | None = None,
        clock: Clock | None = None,
        backend: ModelBackend | None = None,
        seed: int | None = None,
        s3_endpoint_url: str | None = None,
        s3_bucket: str | None = None,
        webhook_hosts: tuple[str, ...] | list[str] = DEFAULT_WEBHOOK_HOSTS,
        public_url: str = ROOT_URL,
        result_naming: str = "primary",
        admin: bool = True,
        admin_token: str | None = None,
        state: str = "memory",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        if state == "store":
            if s3_endpoint_url is None:
                raise ValueError("state 'store' needs a persistent S3 endpoint (s3_endpoint_url / --s3-endpoint-url)")
            s3_bucket = s3_bucket or STATE_BUCKET
        keys = tuple(api_keys) if api_keys else ("sk-batchconf-" + secrets.token_hex(12),)
        if timing is None:
            timing = TimingModel(progression=progression)
        store = ObjectStore(endpoint_url=s3_endpoint_url, bucket=s3_bucket)
        try:
            self.provider = Provider(
                self.profile,
                api_keys=keys,
                clock=clock or VirtualClock(),
                timing=timing,
                store=store,
                backend=backend,
                seed=seed,
                webhook_hosts=tuple(webhook_hosts),
                public_url=public_url,
                result_naming=result_naming,
                state=state,
                lease_seconds=lease_seconds,
            )
            self.app = create_app(self.provider, version(), admin=admin, admin_token=admin_token)
            self.provider.start_notifications()
        except BaseException:
            store.close()
            raise
        self.api_keys = keys
        self._sync: SyncASGITransport | None = None
        self._closed = False

    # -- addresses and clients --------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The first configured key."""
        return self.api_keys[0]

    @property
    def root_url(self) -> str:
        """The in-process origin (admin routes live under `/_emulator`)."""
        return ROOT_URL

    @property
    def base_url(self) -> str:
        """The API base URL, e.g. `http://batchconf.emulator/v1`."""
        return ROOT_URL + self.profile.http.base_path

    @property
    def sync_transport(self) -> SyncASGITransport:
        """The shared sync transport into the app (started on first use)."""
        if self._sync is None:
            self._sync = SyncASGITransport(self.app)
        return self._sync

    def _headers(self, api_key: str | None) -> dict[str, str]:
        http = self.profile.http
        key = self.api_key if api_key is None else api_key
        # The profile's required headers (a gateway's provider selector) go on every request.
        headers = dict(http.required_headers)
        if key:
            headers[http.auth_header] = f"{http.auth_scheme} {key}".strip()
        return headers

    def http_client(self, api_key: str | None = None, base_url: str | None = None, **kwargs: Any) -> httpx.Client:
        """A sync `httpx.Client` wired to the app (auth header set; pass api_key="" for none)."""
        return httpx.Client(
            transport=_Unclosable(self.sync_transport),
            base_url=base_url or ROOT_URL,
            headers=self._headers(api_key),
            **kwargs,
        )

    def async_http_client(
        self, api_key: str | None = None, base_url: str | None = None, **kwargs: Any
    ) -> httpx.AsyncClient:
        """An async `httpx.AsyncClient` wired to the app."""
        return httpx.AsyncClient(
            transport=AsyncASGITransport(self.app),
            base_url=base_url or ROOT_URL,
            headers=self._headers(api_key),
            **kwargs,
        )

    def openai_client(self, api_key: str | None = None, **kwargs: Any) -> openai.OpenAI:
        """The official sync SDK client, pointed at this emulator (max_retries 0 by default)."""
        import openai

        kwargs.setdefault("max_retries", 0)
        self._sdk_auth(api_key, kwargs)
        return openai.OpenAI(
            api_key=api_key or self.api_key,
            base_url=self.base_url,
            # The SDK is typed for httpx2 clients but accepts a legacy httpx client at run time.
            http_client=httpx.Client(transport=_Unclosable(self.sync_transport)),  # type: ignore[arg-type]
            **kwargs,
        )

    def async_openai_client(self, api_key: str | None = None, **kwargs: Any) -> openai.AsyncOpenAI:
        """The official async SDK client, pointed at this emulator."""
        import openai

        kwargs.setdefault("max_retries", 0)
        self._sdk_auth(api_key, kwargs)
        return openai.AsyncOpenAI(
            api_key=api_key or self.api_key,
            base_url=self.base_url,
            http_client=httpx.AsyncClient(transport=AsyncASGITransport(self.app)),  # type: ignore[arg-type]
            **kwargs,
        )

    def _sdk_auth(self, api_key: str | None, kwargs: dict[str, Any]) -> None:
        """The SDK sends `Authorization: Bearer`; other dialects' auth goes in default headers."""
        http = self.profile.http
        if http.auth_header.lower() != "authorization" or http.auth_scheme.lower() != "bearer":
            headers = dict(kwargs.get("default_headers") or {})
            headers.update(self._headers(api_key))
            kwargs["default_headers"] = headers
        elif http.required_headers:
            kwargs["default_headers"] = {**http.required_headers, **(kwargs.get("default_headers") or {})}

    @contextmanager
    def intercept(self, base_url: str | None = None) -> Iterator[Any]:
        """Route `httpx` traffic for `base_url` (default the provider's public URL) here."""
        from ._intercept import intercept

        with intercept(self, base_url) as router:
            yield router

    # -- control ----------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The emulator's clock (`advance(seconds)`, `now()`)."""
        return self.provider.clock

    @property
    def timing(self) -> TimingModel:
        """The timing model in force."""
        return self.provider.timing

    @timing.setter
    def timing(self, value: TimingModel) -> None:
        self.provider.timing = value

    @property
    def faults(self) -> FaultSet:
        """Per-line fault rules (`faults.add("req-3", status_code=500)`)."""
        return self.provider.faults

    @property
    def api_faults(self) -> ApiFaultSet:
        """API-level faults: `api_faults.add("retrieve_batch", status_code=429, retry_after=1,
        count=2)` fails the next two retrieves; `stall_seconds=5` holds calls, then 504."""
        return self.provider.api_faults

    @property
    def storage_faults(self) -> StorageFaultSet:
        """Storage faults during a batch: `storage_faults.add(operation="put", status=503,
        count=2)` fails the next two result writes with 503 SlowDown (retried: the batch
        still completes); `operation="get"` reads the input; `fraction=0.1` a seeded share;
        `delay=30` makes the operation's phase last 30 clock seconds longer. An operation
        failing on every attempt (`storage_faults.attempts`, 3) fails the batch with a
        `storage_error` naming the store failure."""
        return self.provider.storage_faults

    @property
    def consistency(self) -> ConsistencyFaults:
        """Eventual-consistency faults: `consistency.add(kind="late_output_file", polls=2)`
        reports a batch completed two polls before its output file id appears;
        `consistency.add(kind="stuck_validating")` holds batches in validation until their
        window passes and they expire. `count=N` limits a rule to the next N batches."""
        return self.provider.consistency

    @property
    def mutations(self) -> Mutations:
        """Named contract violations this profile offers (off by default)."""
        return self.provider.mutations

    @property
    def webhooks(self) -> WebhookDispatcher | None:
        """Webhook deliveries (`events()`, `deliveries()`, `deliver_due()`), for dialects with them."""
        return self.provider.webhooks

    @property
    def store(self) -> ObjectStore:
        """The object store every byte lives in."""
        return self.provider.store

    def s3_client(self) -> Any:
        """A boto3 S3 client of the emulator's store: create buckets and put input objects
        with it, then name them by `s3://bucket/key` or a (pre-signed) URL. In-process (moto),
        every emulator of the process shares this client and moto's S3, each with a bucket of
        its own: a bucket you make is seen by all of them, and so is an event hook you
        register on the client."""
        return self.provider.store.client

    @property
    def batch_principals(self) -> tuple[str, ...]:
        """The managed principal a bucket policy must allow (name, then `application_id:...`),
        for object-storage profiles; () elsewhere."""
        return self.provider.principals

    def step(self, batch_id: str, lines: int | None = None) -> dict[str, Any]:
        """Move a batch one status (or process `lines` more lines); returns its wire shape."""
        found = self.provider.batch(batch_id)
        if found is None:
            raise KeyError(f"no batch {batch_id!r}")
        surface, b = found
        surface.batches.step(b.id, lines)
        return surface.batch_json(b)

    def reset(self) -> None:
        """Forget all files, batches, faults, mutations and webhook deliveries."""
        self.provider.reset()

    def close(self) -> None:
        """Release the transport and the storage (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._sync is not None:
            self._sync.close()
        self.provider.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Unclosable(httpx.BaseTransport):
    """Shares the emulator's transport among clients: closing a client leaves it running."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        pass
