"""The suite's only way to the target's provider API: one method per profile operation.

`ApiClient` builds every request from the profile (`profile.http.route(op)`, the auth header
and scheme, the project header, query parameter names), so no test hard-codes a path. It
never raises on an HTTP error status: each call returns an `ApiResponse` holding the status,
headers, raw bytes and the parsed JSON body, and the tests decide what the contract says
about it. It validates nothing either; `conformance.invariants` does that.
"""

from __future__ import annotations

import dataclasses
import json as _json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from schemas import Profile

if TYPE_CHECKING:
    from ._storage import ObjectStorage

__all__ = ["ApiClient", "ApiResponse", "UnsupportedOperation"]

# How much of a body a failure message quotes.
_MAX_QUOTE = 400


class UnsupportedOperation(LookupError):
    """The profile's dialect has no route for the requested operation (a harness error:
    tests needing it must be deselected by capability)."""


@dataclass(frozen=True)
class ApiResponse:
    """One HTTP exchange with the target.

    `json` is the parsed body, or None when the body is empty or not JSON (and for successful
    file content downloads, which are never parsed). `operation`, `method` and `url` name the
    request for failure messages.
    """

    status: int
    headers: Mapping[str, str]
    content: bytes
    json: Any
    operation: str = ""
    method: str = ""
    url: str = ""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def describe(self) -> str:
        """`POST /v1/batches -> 400 {"error": ...}` with the body shortened."""
        body = self.content.decode("utf-8", errors="replace")
        if len(body) > _MAX_QUOTE:
            body = body[:_MAX_QUOTE] + f"… ({len(self.content)} bytes)"
        return f"{self.operation} ({self.method} {self.url}) -> HTTP {self.status} {body}"


@dataclass
class _Counter:
    calls: int = 0


@dataclass
class ApiClient:
    """The provider API of one principal (API key, optional project) on one target.

    `http` carries the base URL (with or without the profile's base path: both work) and
    the transport; `with_key` / `with_project` give clients of other principals sharing it.
    `calls` counts the requests made through this client and its copies. `storage` is the
    principal's bucket where the dialect takes its input from object storage (None
    elsewhere): the dialect adapter puts inputs there and reads results from it.
    """

    http: httpx.Client
    profile: Profile
    api_key: str | None = field(default=None, kw_only=True)
    project: str | None = field(default=None, kw_only=True)
    storage: ObjectStorage | None = field(default=None, kw_only=True, repr=False)
    omit_headers: tuple[str, ...] = field(default=(), kw_only=True)
    _counter: _Counter = field(default_factory=_Counter, kw_only=True, repr=False)
    #: Ids of the batches and files this run created (shared by every client of the run and
    #: their copies), so that a check of a list looks only at the run's own items.
    owned: set[str] = field(default_factory=set, kw_only=True, repr=False)

    @property
    def calls(self) -> int:
        """Requests made so far by this client and every copy made with `with_key`."""
        return self._counter.calls

    def with_key(self, api_key: str | None) -> ApiClient:
        """The same target seen with another key (None: no credentials at all)."""
        return dataclasses.replace(self, api_key=api_key)

    def with_project(self, project: str | None) -> ApiClient:
        """The same key scoped to another project (the profile's project header)."""
        return dataclasses.replace(self, project=project)

    def with_profile(self, profile: Profile) -> ApiClient:
        """The same principal, with requests built from `profile` (another base path of the
        same provider, e.g. Azure's pre-v1 `/openai` routes)."""
        return dataclasses.replace(self, profile=profile)

    def without_headers(self, *names: str) -> ApiClient:
        """The same principal sending none of the headers `names` (not even the profile's
        required ones or the HTTP client's defaults)."""
        return dataclasses.replace(self, omit_headers=(*self.omit_headers, *names))

    def supports(self, operation: str) -> bool:
        """Whether the profile has a route for `operation`."""
        return self.profile.http.route(operation) is not None

    # -- Files -------------------------------------------------------------------------------

    def upload_file(
        self,
        content: bytes,
        filename: str = "batch.jsonl",
        purpose: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """Upload `content` (multipart: `file` + `purpose`, default the profile's batch purpose)."""
        data = {"purpose": self.profile.files.batch_purpose if purpose is None else purpose, **(fields or {})}
        files = {"file": (filename, content, "application/octet-stream")}
        return self._own(self.request("create_file", data=data, files=files))

    def list_files(self, **query: Any) -> ApiResponse:
        """List files; `query` holds canonical parameter names (limit, after, order, purpose)."""
        return self.request("list_files", query=query)

    def retrieve_file(self, file_id: str) -> ApiResponse:
        """Retrieve one file object."""
        return self.request("retrieve_file", path={"file_id": file_id})

    def delete_file(self, file_id: str) -> ApiResponse:
        """Delete one file."""
        return self.request("delete_file", path={"file_id": file_id})

    def file_content(self, file_id: str) -> ApiResponse:
        """Download a file's bytes (never parsed as JSON)."""
        return self.request("file_content", path={"file_id": file_id}, parse=False)

    # -- Batches -----------------------------------------------------------------------------

    def create_batch(self, json: Any = None, *, content: bytes | Iterable[bytes] | None = None) -> ApiResponse:
        """Create a batch from a JSON body, or from raw `content` (to send a broken body, or a
        large one produced chunk by chunk)."""
        if content is not None:
            response = self.request("create_batch", content=content, headers={"Content-Type": "application/json"})
        else:
            response = self.request("create_batch", json=json)
        return self._own(response)

    def _own(self, response: ApiResponse) -> ApiResponse:
        if response.ok and isinstance(response.json, dict) and isinstance(response.json.get("id"), str):
            self.owned.add(response.json["id"])
        return response

    def retrieve_batch(self, batch_id: str) -> ApiResponse:
        """Retrieve one batch."""
        return self.request("retrieve_batch", path={"batch_id": batch_id})

    def list_batches(self, **query: Any) -> ApiResponse:
        """List batches; `query` holds canonical parameter names (limit, after)."""
        return self.request("list_batches", query=query)

    def cancel_batch(self, batch_id: str) -> ApiResponse:
        """Ask for a batch to be cancelled."""
        return self.request("cancel_batch", path={"batch_id": batch_id})

    # -- Results behind a URL ---------------------------------------------------------------

    def get_url(self, url: str, *, operation: str = "download_results") -> ApiResponse:
        """GET an absolute URL the target handed out (a `results_url`); the body is never
        parsed as JSON unless the status is an error. The principal's credentials go only to
        the target's own origin: a URL elsewhere (a pre-signed object URL) carries its own."""
        target = self.http.base_url
        parts = httpx.URL(url)
        same_origin = (parts.scheme, parts.host, parts.port) == (target.scheme, target.host, target.port)
        self._counter.calls += 1
        response = self._send(self.http.build_request("GET", url, headers=self._auth_headers() if same_origin else {}))
        body = response.content
        return ApiResponse(
            status=response.status_code,
            headers=response.headers,
            content=body,
            json=_parse_json(body) if response.status_code >= 400 else None,
            operation=operation,
            method="GET",
            url=str(response.request.url),
        )

    # -- Plumbing ----------------------------------------------------------------------------

    def _send(self, request: httpx.Request) -> httpx.Response:
        # A read that meets a dropped connection (a keep-alive the target closed after a
        # 5xx, say) is sent once more on a fresh one: the suite judges answers, and a lost
        # connection is not one. Writes are never repeated (they may have taken effect).
        try:
            return self.http.send(request)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if request.method != "GET":
                raise
            return self.http.send(request)

    def request(
        self,
        operation: str,
        *,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | Iterable[bytes] | None = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        parse: bool = True,
    ) -> ApiResponse:
        """Send one operation of the profile; never raises on an HTTP error status.

        Path parameters are percent-encoded (ids are opaque); query parameters with value
        None are left out and the others renamed through `profile.http.query_params`.
        """
        route = self.profile.http.route(operation)
        if route is None:
            raise UnsupportedOperation(
                f"profile {self.profile.name!r} has no route for operation {operation!r} "
                f"(http.operations: {sorted(self.profile.http.operations)})"
            )
        method, template = route
        url = self._relative(template.format_map({k: quote(str(v), safe="") for k, v in (path or {}).items()}))
        params = {
            self.profile.http.query_params.get(k, k): _query_value(v) for k, v in (query or {}).items() if v is not None
        }
        kwargs: dict[str, Any] = {"params": params, "headers": {**self._auth_headers(), **(headers or {})}}
        if json is not None:
            kwargs["json"] = json
        if content is not None:
            kwargs["content"] = content
        if data is not None:
            kwargs["data"] = dict(data)
        if files is not None:
            kwargs["files"] = dict(files)
        self._counter.calls += 1
        built = self.http.build_request(method, url, **kwargs)
        for name in self.omit_headers:
            built.headers.pop(name, None)
        response = self._send(built)
        body = response.content
        return ApiResponse(
            status=response.status_code,
            headers=response.headers,
            content=body,
            json=_parse_json(body) if parse or response.status_code >= 400 else None,
            operation=operation,
            method=method,
            url=str(response.request.url),
        )

    def _auth_headers(self) -> dict[str, str]:
        http = self.profile.http
        # The profile's required headers (a gateway's provider selector) go on every request.
        headers: dict[str, str] = {k: v for k, v in http.required_headers.items() if k not in self.omit_headers}
        if self.api_key is not None:
            headers[http.auth_header] = f"{http.auth_scheme} {self.api_key}" if http.auth_scheme else self.api_key
        if self.project is not None and http.project_header:
            headers[http.project_header] = self.project
        return headers

    def _relative(self, full_path: str) -> str:
        """The route relative to the client's base URL.

        Routes carry the profile's base path (`/v1/batches`); a base URL that already ends
        with that base path (`https://api.openai.com/v1`) gets only the rest (`batches`).
        """
        base_path = self.profile.http.base_path
        base_url_path = self.http.base_url.path.rstrip("/")
        if base_path and base_url_path.endswith(base_path) and full_path.startswith(base_path + "/"):
            return full_path[len(base_path) + 1 :]
        # httpx appends a relative path to the base URL's path, leading slash or not.
        return full_path.lstrip("/")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_json(body: bytes) -> Any | None:
    if not body:
        return None
    try:
        return _json.loads(body)
    except ValueError:
        return None
