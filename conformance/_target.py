"""The target under test: the in-process emulator (default) or a provider's URL.

This is the only module of `conformance` that imports `emulator`, and only inside
`build_target` when no URL is configured, so a run against a real provider never loads it.
Tests see a `Target` (a descriptor plus one shared `httpx.Client`); the keys stay in a
`Credentials` object whose repr shows nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from schemas import Profile

from ._config import SuiteConfig
from ._storage import ObjectStorage, StorageError, connect

__all__ = [
    "Credentials",
    "Target",
    "TargetError",
    "build_target",
    "describe",
    "emulator_info",
    "object_storage",
    "split_url",
    "takes_object_storage",
]

# Sent instead of a real key by `bad_key_api`: looks like a key, is nobody's.
BAD_KEY = "sk-batchconf-invalid-0000000000000000"


class TargetError(RuntimeError):
    """The target could not be built or reached (a harness error: exit status 2)."""


class Credentials:
    """The run's API keys. Never printed: repr and str show only which keys exist."""

    def __init__(self, primary: str, secondary: str | None, labels: tuple[str, str]) -> None:
        self._primary = primary
        self._secondary = secondary
        self.labels = labels

    @property
    def primary(self) -> str:
        """The main principal's key."""
        return self._primary

    @property
    def secondary(self) -> str | None:
        """A second principal's key (isolation tests), or None."""
        return self._secondary

    def __repr__(self) -> str:
        return f"<Credentials primary=<redacted ${self.labels[0]}> secondary={'set' if self._secondary else 'none'}>"

    __str__ = __repr__

    @classmethod
    def generated(cls) -> Credentials:
        """Two fresh random keys for the in-process emulator."""
        # A short public prefix: the redactor also removes 10-character fragments of a key,
        # and a long shared prefix ("sk-batchconf-") would make it redact innocent text.
        return cls(
            "sk-emu-" + secrets.token_hex(16),
            "sk-emu-" + secrets.token_hex(16),
            ("emulator key 1", "emulator key 2"),
        )


@dataclass
class Target:
    """What the suite tests against.

    `kind` is "emulator" (in-process) or "url"; `base_url` is the API base (root + the
    profile's base path) and `root_url` the origin where `/_emulator` admin routes would
    live; `controls` whether those routes answer; `second_key` whether a second principal
    is configured; `api_key_env` names the variable holding the key (never the key).
    `http` is the one client every fixture shares (its base URL is `root_url`). `storage`
    is the run's bucket for a profile that takes its input from object storage (else None).
    """

    kind: Literal["emulator", "url"]
    base_url: str
    root_url: str
    profile: Profile
    controls: bool
    seed: int
    second_key: bool
    api_key_env: str
    http: httpx.Client = field(repr=False)
    storage: ObjectStorage | None = field(default=None, repr=False)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def description(self) -> str:
        """How the target is named in reports: "emulator (in-process)" or the URL."""
        return "emulator (in-process)" if self.kind == "emulator" else self.base_url

    def close(self) -> None:
        """Release the client and, for the emulator, the emulator (idempotent)."""
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            close()


def describe(config: SuiteConfig) -> str:
    """How a configuration's target is named in headers and reports."""
    return config.target_url or "emulator (in-process)"


def split_url(url: str, profile: Profile) -> tuple[str, str]:
    """(root_url, base_url) of a configured URL: a URL ending with the profile's base path is
    the base (`http://h:8000/v1`); any other is the root, and the base path is appended."""
    url = url.rstrip("/")
    base_path = profile.http.base_path
    path = urlsplit(url).path.rstrip("/")
    if base_path and path.endswith(base_path):
        return url[: len(url) - len(base_path)], url
    return url, url + base_path


def build_target(
    config: SuiteConfig,
    credentials: Credentials,
    *,
    user_agent: str,
    probe: bool = True,
) -> Target:
    """Build the configured target.

    The emulator is created with both generated keys, "per_poll" progression and the run's
    seed. A URL target gets a plain `httpx.Client`; whether it has controls is the
    configured `target_controls`, else (with `probe`) whether `GET {root}/_emulator/info`
    answers 200 with JSON. A profile whose input comes from object storage also gets the
    run's bucket (`object_storage`). Raises `TargetError` when the emulator cannot be built
    or the bucket cannot be reached.
    """
    profile = config.profile
    timeout = config.timeouts.get("request", 60.0)
    if config.target_url is None:
        try:
            from emulator import Emulator  # the only import of emulator in conformance
        except ImportError as exc:  # pragma: no cover - packaging problem
            raise TargetError(f"the in-process emulator cannot be imported: {exc}") from exc
        keys = (credentials.primary, credentials.secondary or credentials.primary)
        try:
            emu = Emulator(
                profile=profile,
                api_keys=keys,
                progression="per_poll",
                seed=config.seed,
                s3_endpoint_url=config.s3_endpoint_url,
            )
            if config.emulator_mutations:
                emu.mutations.enable(*config.emulator_mutations)
            # api_key="" leaves the client without a default auth header: each ApiClient
            # sets its own, and anon_api must send none.
            http = emu.http_client(api_key="", timeout=timeout)
        except Exception as exc:
            raise TargetError(
                f"the in-process emulator failed to start for profile {profile.name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        http.headers["User-Agent"] = user_agent
        storage = None
        if takes_object_storage(profile):
            # The user's bucket is in the emulator's own store, reached through its client.
            storage = object_storage(
                config,
                endpoint_url=emu.store.endpoint_url,
                client=emu.s3_client(),
                emulator=True,
                close=_closing(http.close, emu.close),
            )
        return Target(
            kind="emulator",
            base_url=emu.base_url,
            root_url=emu.root_url,
            profile=profile,
            # --no-target-controls holds the in-process emulator to what a provider offers:
            # no admin routes, so lines fail only as they would anywhere.
            controls=config.target_controls is not False,
            seed=config.seed,
            second_key=credentials.secondary is not None,
            api_key_env="",
            http=http,
            storage=storage,
            _closers=[emu.close, http.close],
        )
    root, base = split_url(config.target_url, profile)
    http = httpx.Client(base_url=root, timeout=timeout, headers={"User-Agent": user_agent})
    controls = config.target_controls
    if controls is None:
        controls = probe and probe_controls(http, root)
    storage = None
    if takes_object_storage(profile):
        endpoint, emulator = config.s3_endpoint_url, False
        if endpoint is None and config.target_controls is not False:
            # A batchconf emulator names the S3 endpoint it reads buckets from.
            info = emulator_info(http, root) or {}
            found = info.get("s3_endpoint_url")
            endpoint, emulator = (found, True) if isinstance(found, str) and found else (None, False)
        if endpoint is None:
            http.close()
            raise TargetError(
                f"profile {profile.name!r} takes its input from object storage, and no S3 endpoint is known: give "
                "--s3-endpoint-url (with --s3-bucket and --s3-prefix as needed), or serve the emulator with its admin "
                f"routes (GET {root}/_emulator/info names its endpoint)"
            )
        storage = object_storage(config, endpoint_url=endpoint, emulator=emulator, close=http.close)
    return Target(
        kind="url",
        base_url=base,
        root_url=root,
        profile=profile,
        controls=controls,
        seed=config.seed,
        second_key=credentials.secondary is not None,
        api_key_env=config.api_key_env,
        http=http,
        storage=storage,
        _closers=[http.close],
    )


def _closing(*closers: Callable[[], None]) -> Callable[[], None]:
    def close() -> None:
        for closer in closers:
            closer()

    return close


def takes_object_storage(profile: Profile) -> bool:
    """Whether the profile's batches read their input from (and write results to) a bucket."""
    return profile.output.location == "object_storage"


def object_storage(
    config: SuiteConfig,
    *,
    endpoint_url: str | None,
    client: Any = None,
    emulator: bool = False,
    close: Callable[[], None] | None = None,
) -> ObjectStorage:
    """The run's bucket: `s3_bucket` (created on the emulator's endpoint when missing) or a
    fresh `batchconf-suite-<hex>`, under `s3_prefix`. `close` releases what was built so
    far when that fails (`TargetError`)."""
    try:
        return connect(
            endpoint_url=endpoint_url,
            bucket=config.s3_bucket,
            prefix=config.s3_prefix,
            run=secrets.token_hex(6),
            client=client,
            emulator=emulator,
        )
    except StorageError as exc:
        if close is not None:
            close()
        raise TargetError(f"object storage for profile {config.profile.name!r}: {exc}") from None


def probe_controls(http: httpx.Client, root: str) -> bool:
    """Whether `GET {root}/_emulator/info` answers 200 with a JSON object (a batchconf
    emulator served at that URL). Any failure means no controls."""
    return emulator_info(http, root) is not None


def emulator_info(http: httpx.Client, root: str) -> dict[str, Any] | None:
    """The body of `GET {root}/_emulator/info` when it is a JSON object, else None (with the
    admin token of `BATCHCONF_ADMIN_TOKEN`, when set)."""
    from .control import ADMIN_TOKEN_ENV, ADMIN_TOKEN_HEADER

    token = os.environ.get(ADMIN_TOKEN_ENV)
    headers = {ADMIN_TOKEN_HEADER: token} if token else {}
    try:
        response = http.get(root.rstrip("/") + "/_emulator/info", timeout=10.0, headers=headers)
        body: Any = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return body if isinstance(body, dict) else None
