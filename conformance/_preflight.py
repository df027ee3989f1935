"""The preflight: one cheap probe of a URL target before anything is selected or submitted.

A run against a target that is not there, or that refuses the key, has no verdict to give:
every check would fail for the same reason, in pages of tracebacks, and the matrix would
call the provider "not conformant". The preflight asks once, with a short connect timeout:

1. is the host reachable at all;
2. does the API answer under the base path (a cheap read: list batches, limit 1; or a
   retrieve of a batch that does not exist for a dialect that cannot list);
3. is the key accepted (and the second principal's key, when one is given)?

Any "no" is a `PreflightError` whose message names what failed (the URL, the variable that
holds the key, the status and the target's own words) and never the key itself. A target
that answers otherwise, even with a 5xx, passes: its checks will say what is wrong, which is
a verdict, where a preflight failure is none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ._config import SuiteConfig
    from ._target import Credentials
    from .client import ApiClient, ApiResponse

__all__ = ["CONNECT_TIMEOUT", "PreflightError", "preflight"]

#: Seconds to wait for a connection: a preflight answers in seconds or says why not.
CONNECT_TIMEOUT = 4.0

# How much of the target's answer the message quotes.
_QUOTE = 160


class PreflightError(Exception):
    """The target cannot be tested as configured; the message says what to fix."""


def preflight(
    config: SuiteConfig,
    credentials: Credentials,
    *,
    user_agent: str,
    redact: Callable[[str], str],
) -> None:
    """Probe the URL target of `config`; raise `PreflightError` on the first thing wrong."""
    from ._target import split_url
    from .client import ApiClient

    assert config.target_url is not None
    root, _ = split_url(config.target_url, config.profile)
    read_timeout = min(config.timeouts.get("request", 60.0), 15.0)
    timeout = httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT)
    principals = [(credentials.primary, credentials.labels[0])]
    if credentials.secondary is not None:
        principals.append((credentials.secondary, credentials.labels[1]))
    with httpx.Client(base_url=root, timeout=timeout, headers={"User-Agent": user_agent}) as http:
        for key, variable in principals:
            if not key:
                raise PreflightError(
                    f"no API key: the environment variable {variable} is empty or not set "
                    "(name another one with --api-key-env)"
                )
            api = ApiClient(http, config.profile, api_key=key, project=config.project)
            try:
                response = _probe(api, config)
            except httpx.TransportError as exc:
                raise PreflightError(
                    f"cannot reach the target at {config.target_url}: {type(exc).__name__}: {exc or 'no answer'}"
                ) from None
            _judge(response, config, variable, redact)


def _probe(api: ApiClient, config: SuiteConfig) -> ApiResponse:
    if config.profile.http.route("list_batches") is not None:
        return api.list_batches(limit=1)
    return api.retrieve_batch(f"{config.profile.ids.batch}batchconf_preflight")


def _judge(response: ApiResponse, config: SuiteConfig, variable: str, redact: Callable[[str], str]) -> None:
    said = redact(response.content.decode("utf-8", errors="replace").strip())
    said = said if len(said) <= _QUOTE else said[:_QUOTE] + "…"
    asked = f"{response.method} {response.url}"
    if response.status in (401, 403):
        raise PreflightError(
            f"the target refused the key in ${variable}: {asked} answered HTTP {response.status} {said}".rstrip()
        )
    listing = config.profile.http.route("list_batches") is not None
    if response.ok or (not listing and response.status == 404 and _is_json(response)):
        return
    if response.status in (404, 405):
        raise PreflightError(
            f"the API does not answer under {config.target_url}: {asked} answered HTTP {response.status}; "
            f"is --target-url the API's base URL (the {config.profile.name} profile expects paths like "
            f"{config.profile.http.base_path or '/'}…)?"
        )
    # Anything else (a 5xx, a 400 on the probe) is the target answering, however badly: the
    # suite judges it, check by check, rather than giving no verdict at all.


def _is_json(response: ApiResponse) -> bool:
    return response.json is not None
