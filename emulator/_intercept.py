"""Route `httpx` traffic for a base URL into an emulator, for code that builds its own client.

The `openai` SDK 3.x sends through `httpx2`, which respx does not patch: give the SDK
`http_client=emulator.http_client()` instead (see the README).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import respx

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["intercept"]


@contextmanager
def intercept(emulator: Emulator, base_url: str | None = None) -> Iterator[Any]:
    """Within the block, every `httpx` request to `base_url` (default: the profile's public
    base URL, e.g. https://api.openai.com/v1) is answered by `emulator`, sync or async.

    Requests to other hosts pass through untouched.
    """
    target = (base_url or emulator.profile.http.default_base_url).rstrip("/")
    root = emulator.root_url

    def forward(request: Any) -> Any:
        import httpx

        path = request.url.raw_path.decode()
        url = target.split("://", 1)[1]
        prefix = url[url.find("/") :] if "/" in url else ""
        # Map the public base path onto the profile's own base path.
        local = emulator.profile.http.base_path + path[len(prefix) :] if path.startswith(prefix) else path
        resp = emulator.sync_transport.handle_request(
            httpx.Request(request.method, root + local, headers=request.headers, content=request.read())
        )
        resp.read()
        return httpx.Response(resp.status_code, headers=resp.headers, content=resp.content)

    with respx.mock(assert_all_called=False, assert_all_mocked=False) as router:
        router.route(url__startswith=target).mock(side_effect=forward)
        router.route().pass_through()
        yield router
