"""The composition root: one emulated provider, its surfaces and the services behind them.

`Provider` builds, for a profile, the model layer's services with their collaborators
given explicitly (repository, store, clock, engine, sink, input resolver, notifier), and a
`Surface` per dialect it serves: the profile's own, plus the OpenAI-compatible surface a
profile may declare beside it (`[compat]`, ScaiGrid's `/oai/v1`), sharing one store, clock,
backend, faults and mutations. Nothing here knows a wire field name.

`state` picks where records live: "memory" (the default: `MemoryRepository`, nothing else
changes) or "store" (`StoreRepository` under `state/<profile>/` of the store's bucket, the
engine checkpointing into it, and a `Driver` thread that leases and moves unfinished
batches; see `emulator.model.store_repository`, `lease` and `driver`). With "store", ids
come from the system's entropy even when a seed is given (a restarted server must not make
the ids it made before); the seed still orders results.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import uuid
from typing import Any

from schemas import Profile, load_profile

from ._api_faults import ApiFaultSet
from ._backend import CatalogueBackend, MockBackend, ModelBackend
from ._clock import Clock, VirtualClock
from ._faults import FaultSet
from ._ids import IdFactory
from ._mutations import Mutations
from ._storage import ObjectStore
from ._timing import TimingModel
from ._webhooks import WebhookDispatcher
from .dialects import Surface, catalogue_for, dialect_for
from .model import seams
from .model.access import Access
from .model.batches import BatchService
from .model.codec import OwnerCodec
from .model.consistency import ConsistencyFaults
from .model.driver import Driven, Driver
from .model.engine import Engine
from .model.files import FileService
from .model.inputs import InputResolver
from .model.lease import Leases
from .model.lifecycle import Transitions
from .model.notify import NoNotifier, Notifier, WebhookNotifier
from .model.records import BatchRecord
from .model.repository import NO_JOURNAL, Journal, MemoryRepository, Repository
from .model.results import sink_for
from .model.storage_faults import BatchStore, StorageFaultSet
from .model.store_repository import StoreRepository

__all__ = ["DEFAULT_LEASE_SECONDS", "DEFAULT_WEBHOOK_HOSTS", "STATES", "Provider"]

#: Where records can live.
STATES = ("memory", "store")
#: How long a server's lease on a batch lasts without renewal (state in the store).
DEFAULT_LEASE_SECONDS = 10.0

#: Hosts a webhook may be delivered to unless configured otherwise: this machine only.
DEFAULT_WEBHOOK_HOSTS = ("127.0.0.1", "localhost", "::1")


class Provider:
    """Everything one emulated provider holds."""

    def __init__(
        self,
        profile: Profile,
        *,
        api_keys: tuple[str, ...],
        clock: Clock | None = None,
        timing: TimingModel | None = None,
        store: ObjectStore | None = None,
        backend: ModelBackend | None = None,
        seed: int | None = None,
        webhook_hosts: tuple[str, ...] = DEFAULT_WEBHOOK_HOSTS,
        public_url: str = "",
        result_naming: str = "primary",
        state: str = "memory",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        if lease_seconds <= 0:
            raise ValueError(f"lease seconds must be > 0, got {lease_seconds}")
        self.profile = profile
        self.state = state
        self.lease_seconds = lease_seconds
        #: This server among those sharing a store (names its leases and result chunks).
        self.server_id = f"{socket.gethostname()[:20]}.{os.getpid()}.{uuid.uuid4().hex[:8]}".replace("/", "_")
        self._owners = OwnerCodec(api_keys)
        self._driven: list[Driven] = []
        self.driver: Driver | None = None
        self.clock: Clock = clock or VirtualClock()
        self._timing = timing or TimingModel()
        self.store = store or ObjectStore()
        self.backend: ModelBackend = backend or MockBackend.for_profile(profile)
        if profile.models.catalogue:
            self.backend = CatalogueBackend(self.backend, profile.models.catalogue, self._served_models)
        self.seed = seed if seed is not None else 0
        self.ids = IdFactory(seed if state == "memory" else None)
        self.faults = FaultSet()
        self.api_faults = ApiFaultSet(self.seed)
        self.storage_faults = StorageFaultSet(self.seed)
        self.consistency = ConsistencyFaults(profile)
        # What a batch's engine and result sink read and write: the store, with the
        # storage faults applied.
        self.batch_store = BatchStore(self.store, self.storage_faults)
        self.mutations = Mutations(catalogue_for(profile))
        self.access = Access(api_keys, self.mutations)
        self.lock = threading.RLock()
        self.public_url = public_url
        self.result_naming = result_naming
        # The managed principal that reads and writes a user's bucket (Scaleway's
        # scw-managed-genapi-batch), with the application id a bucket policy names it by.
        self.principals: tuple[str, ...] = ()
        if profile.storage is not None and profile.storage.batch_principal:
            self.principals = (profile.storage.batch_principal, "application_id:" + self.ids.make(""))
        self.webhooks: WebhookDispatcher | None = None
        # Only a dialect whose batches subscribe to their own end (a create field) gets a
        # dispatcher; OpenAI's project-level webhooks are registered outside the API.
        if profile.webhooks is not None and profile.has("webhooks") and profile.webhooks.subscribe_field:
            self.webhooks = WebhookDispatcher(
                clock=self.clock,
                allowed_hosts=webhook_hosts,
                max_attempts=profile.webhooks.max_attempts,
                backoff_seconds=profile.webhooks.backoff_seconds,
            )
        compat: Surface | None = None
        if profile.compat is not None:
            base = load_profile(profile.compat.openai_profile)
            http = dataclasses.replace(base.http, base_path=profile.compat.openai_base_path)
            compat = self._surface(dataclasses.replace(base, http=http), files_of=None)
        self.main = self._surface(
            profile,
            files_of=compat.repo if compat is not None else None,
            file_reference=profile.compat.file_reference if profile.compat is not None else "",
        )
        self.surfaces: tuple[Surface, ...] = (self.main,) if compat is None else (self.main, compat)
        if self._driven:
            self.driver = Driver(self._driven)

    def _served_models(self, models: frozenset[str]) -> frozenset[str] | None:
        """The catalogue's models as the active mutations leave them (None: any model)."""
        if not self.mutations.active(seams.BACKEND_CATALOGUE):
            return models
        served: frozenset[str] | None = self.mutations.apply(seams.BACKEND_CATALOGUE, models)
        return served

    def _surface(self, profile: Profile, *, files_of: Repository | None, file_reference: str = "") -> Surface:
        dialect = dialect_for(profile)
        repo: Repository
        journal: Journal = NO_JOURNAL
        store_repo: StoreRepository | None = None
        if self.state == "store":
            prefix = f"state/{profile.name}/"
            leases = Leases(self.store, prefix, holder=self.server_id, ttl=self.lease_seconds)
            repo = journal = store_repo = StoreRepository(self.store, prefix=prefix, owners=self._owners, leases=leases)
        else:
            repo = MemoryRepository()
        common: dict[str, Any] = {"store": self.store, "ids": self.ids, "lock": self.lock}
        files = None
        if profile.files.api:
            files = FileService(
                profile, repo=repo, clock=self.clock, access=self.access, mutations=self.mutations, **common
            )
        inputs = InputResolver(
            profile,
            store=self.store,
            access=self.access,
            files=repo if profile.files.api else files_of,
            file_reference=file_reference,
            principals=self.principals if profile is self.profile else (),
            mutations=self.mutations,
        )
        transitions = Transitions(profile)
        surface_ref: list[Surface] = []
        notifier: Notifier = NoNotifier()
        check_webhook_url = None
        if self.webhooks is not None and profile is self.profile:
            check_webhook_url = self.webhooks.check_url
            notifier = WebhookNotifier(
                profile,
                dispatcher=self.webhooks,
                render=lambda b, eid, kind, at: dialect.event_json(surface_ref[0], b, eid, kind, at),
                clock=self.clock,
                ids=self.ids,
                mutations=self.mutations,
            )
        engine = Engine(
            profile,
            transitions=transitions,
            clock=self.clock,
            timing=self._timing,
            store=self.batch_store,
            backend=self.backend,
            faults=self.faults,
            lines=dialect.line_writer(profile),
            sink=sink_for(
                profile,
                repo=repo,
                clock=self.clock,
                mutations=self.mutations,
                naming=self.result_naming,
                **{**common, "store": self.batch_store},
            ),
            inputs=inputs,
            notifier=notifier,
            mutations=self.mutations,
            seed=self.seed,
            journal=journal,
        )
        engine.storage_faults = self.storage_faults
        engine.consistency = self.consistency
        batches = BatchService(
            profile,
            repo=repo,
            engine=engine,
            inputs=inputs,
            transitions=transitions,
            clock=self.clock,
            access=self.access,
            mutations=self.mutations,
            check_webhook_url=check_webhook_url,
            **common,
        )
        surface = Surface(
            profile=profile,
            dialect=dialect,
            repo=repo,
            files=files,
            batches=batches,
            engine=engine,
            access=self.access,
            mutations=self.mutations,
            clock=self.clock,
            lock=self.lock,
            public_url=lambda: self.public_url,
        )
        surface_ref.append(surface)
        if store_repo is not None:
            self._driven.append(Driven(store_repo, batches))
        return surface

    # -- shared knobs -----------------------------------------------------------------

    @property
    def timing(self) -> TimingModel:
        """The timing model every surface's engine follows."""
        return self._timing

    @timing.setter
    def timing(self, value: TimingModel) -> None:
        with self.lock:
            self._timing = value
            for surface in self.surfaces:
                surface.engine.timing = value

    def batch(self, batch_id: str) -> tuple[Surface, BatchRecord] | None:
        """A batch of any surface, by id (admin routes)."""
        for surface in self.surfaces:
            b = surface.batches.get_any(batch_id)
            if b is not None:
                return surface, b
        return None

    def start_notifications(self) -> None:
        """Start the background threads: webhook deliveries (catching watched batches up to
        the clock) and, with state in the store, the driver that leases and moves batches."""
        if self.driver is not None:
            self.driver.start()
        if self.webhooks is not None:
            self.webhooks.start(tick=self.main.batches.catch_up_watched)

    def reset(self) -> None:
        """Forget every file and batch, fault, mutation and delivery (the clock keeps its time).

        With state in the store this forgets them for every server sharing the store."""
        with self.lock:
            for surface in self.surfaces:
                surface.repo.clear()
                surface.batches.clear()
                surface.forget_bodies()
            self.faults.clear()
            self.api_faults.clear()
            self.storage_faults.clear()
            self.consistency.clear()
            self.mutations.clear()
            if self.webhooks is not None:
                self.webhooks.clear()
            self.store.clear()

    def close(self) -> None:
        """Stop deliveries and release storage. With state in the store, the driver first
        commits the work in hand and releases its leases, and the records stay in the store."""
        if self.driver is not None:
            self.driver.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        with self.lock:
            for surface in self.surfaces:
                if isinstance(surface.repo, StoreRepository):
                    surface.repo.forget_cache()
                else:
                    surface.repo.clear()
            self.store.close()
