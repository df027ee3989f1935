"""Where a batch's input comes from: a Files API file, an object URL, or inline bytes.

`InputResolver.check` refuses, at create, a reference the emulator can never read (an
unknown scheme, a host that is not its S3 endpoint); `resolve` finds the object when the
batch is validated, or raises `InputMissing` naming the validation error to fail it with.
Nothing is fetched from anywhere but the emulator's own S3 endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from schemas import Profile

from .._mutations import Mutations
from .._storage import ObjectStore
from . import seams
from .access import Access
from .errors import ApiError
from .policy import denied_actions
from .records import InputObject, InputRef, Owner
from .repository import Repository

__all__ = ["InputMissing", "InputResolver", "ObjectAddress"]

# The hosts boto3 signs against for S3 when no endpoint is configured (moto in-process
# answers them): path-style `s3[.region].amazonaws.com/bucket/key` and virtual-hosted
# `bucket.s3[.region].amazonaws.com/key`.
_AWS_SUFFIX = ".amazonaws.com"


class InputMissing(Exception):
    """The input cannot be read: `name` is the profile's validation error, with `fields`."""

    def __init__(self, name: str, **fields: object) -> None:
        self.name = name
        self.fields = fields
        super().__init__(f"{name}: {fields}")


@dataclass(frozen=True)
class ObjectAddress:
    """An object of the emulator's S3 endpoint named by a URL; `form` writes another object's
    URL the same way (a template over `{bucket}` and `{key}`)."""

    bucket: str
    key: str
    form: str = "s3://{bucket}/{key}"


def _template_pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching the URLs a provider's URL template describes."""
    pattern = re.escape(template)
    for name, part in (("bucket", r"[^/]+?"), ("region", r"[^./]+"), ("key", r".+")):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{part})")
    return re.compile(pattern + r"\Z")


class InputResolver:
    """Resolves the input references of one provider surface.

    `files` holds the Files API records a reference may name (the surface's own, or, for a
    dialect without a Files API, those of a compatible surface beside it, reached through
    `file_reference`, e.g. "scaigrid://file/{file_id}").
    """

    def __init__(
        self,
        profile: Profile,
        *,
        store: ObjectStore,
        access: Access,
        files: Repository | None,
        file_reference: str = "",
        principals: tuple[str, ...] = (),
        mutations: Mutations | None = None,
    ) -> None:
        self.profile = profile
        self.store = store
        self.access = access
        self.files = files
        self.mutations = mutations or Mutations()
        prefix, _, _ = file_reference.partition("{file_id}")
        self._file_prefix = prefix
        rules = profile.storage
        self._presigned = rules.presigned_urls if rules is not None else True
        self._actions = rules.principal_actions if rules is not None else ()
        self.principals = principals
        # The provider's own URL forms of an object (http ones; s3:// is handled below).
        self._forms = [
            (template, _template_pattern(template))
            for template in (rules.object_urls if rules is not None else ())
            if not template.startswith("s3://")
        ]

    # -- at create --------------------------------------------------------------------

    def check(self, ref: InputRef) -> None:
        """Refuse (400, `invalid_input_url`) a URL this emulator could never read."""
        if ref.kind != "url":
            return
        self.address(ref.value)

    def address(self, url: str) -> ObjectAddress | str:
        """The object a URL names, or the file id of a file reference; ApiError otherwise."""
        if self._file_prefix and url.startswith(self._file_prefix):
            file_id = url[len(self._file_prefix) :]
            if not file_id or "/" in file_id:
                raise ApiError("invalid_input_url", value=url, reason=f"expected {self._file_prefix}{{file_id}}")
            return file_id
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if parts.query and not self.mutations.apply(seams.INPUT_PRESIGNED, self._presigned):
            reason = "a pre-signed URL (one with query parameters) is not accepted; give the object's URL without them"
            raise ApiError("invalid_input_url", value=url, reason=reason)
        if scheme == "s3":
            key = unquote(parts.path.lstrip("/"))
            if not parts.netloc or not key:
                raise ApiError("invalid_input_url", value=url, reason="expected s3://bucket/key")
            return ObjectAddress(parts.netloc, key)
        bare = f"{scheme}://{parts.netloc.lower()}{parts.path}"
        for template, pattern in self._forms:
            found = pattern.match(bare)
            if found:
                # The provider's own URL of an object: the same bucket and key on our endpoint.
                form = template.replace("{region}", found.groupdict().get("region") or "")
                return ObjectAddress(found["bucket"], unquote(found["key"]), form)
        if scheme in ("http", "https"):
            return self._http_address(url, parts.hostname or "", parts.port, parts.path)
        accepted = ["s3://bucket/key", "an http(s) URL of an object on this emulator's S3 endpoint"]
        if self._file_prefix:
            accepted.append(f"{self._file_prefix}{{file_id}}")
        raise ApiError("invalid_input_url", value=url, reason="the scheme is not one of: " + ", ".join(accepted))

    def _http_address(self, url: str, host: str, port: int | None, path: str) -> ObjectAddress:
        endpoint = self.store.endpoint_url
        host = host.lower()
        if endpoint is not None:
            ep = urlsplit(endpoint)
            same = (
                urlsplit(url).scheme.lower() == ep.scheme.lower()
                and host == (ep.hostname or "").lower()
                and (port or _default_port(url)) == (ep.port or _default_port(endpoint))
            )
            if same:
                return _path_style(url, path, f"{endpoint.rstrip('/')}/{{bucket}}/{{key}}")
            where = f"this emulator's S3 endpoint is {endpoint}"
        else:
            if host.endswith(_AWS_SUFFIX) and (host.startswith("s3.") or host.startswith("s3-")):
                return _path_style(url, path, f"https://{host}/{{bucket}}/{{key}}")
            if ".s3." in host and host.endswith(_AWS_SUFFIX):
                bucket, _, rest = host.partition(".s3.")
                key = unquote(path.lstrip("/"))
                if bucket and key:
                    return ObjectAddress(bucket, key, f"https://{{bucket}}.s3.{rest}/{{key}}")
            where = "this emulator's S3 is in-process (URLs of s3.amazonaws.com, as boto3 presigns them)"
        raise ApiError(
            "invalid_input_url", value=url, reason=f"host {host!r} is not this emulator's S3 endpoint ({where})"
        )

    # -- at validation ----------------------------------------------------------------

    def resolve(self, ref: InputRef, owner: Owner) -> InputObject:
        """The object to read, or `InputMissing`."""
        if ref.kind == "inline":
            return InputObject(ref.value, size=self._size(ref.value, None, ref))
        if ref.kind == "file":
            return self._file(ref.value, owner, ref)
        try:
            where = self.address(ref.value)
        except ApiError as exc:
            raise InputMissing("input_file_not_found", id=ref.value, reason=str(exc.fields.get("reason"))) from None
        if isinstance(where, str):
            return self._file(where, owner, ref)
        size = self._size(where.key, where.bucket, ref)
        if self._actions and self.principals:
            missing = denied_actions(
                self.store.bucket_policy(where.bucket),
                bucket=where.bucket,
                key=where.key,
                principals=self.principals,
                actions=self._actions,
            )
            missing = self.mutations.apply(seams.INPUT_POLICY_DENIES, missing, bucket=where.bucket)
            if missing:
                raise InputMissing(
                    "bucket_policy_denies",
                    bucket=where.bucket,
                    principal=self.principals[-1],
                    missing=" and ".join(missing),
                )
        return InputObject(where.key, bucket=where.bucket, size=size, url_form=where.form)

    def _file(self, file_id: str, owner: Owner, ref: InputRef) -> InputObject:
        record = self.files.file(file_id) if self.files is not None else None
        if record is None or not self.access.owns(owner, record.owner):
            raise InputMissing("input_file_not_found", id=ref.value)
        rules = self.profile.files
        if rules.api and record.purpose != rules.batch_purpose:
            raise InputMissing("input_file_purpose", id=record.id, value=record.purpose)
        return InputObject(record.key, record.parts, size=record.bytes)

    def _size(self, key: str, bucket: str | None, ref: InputRef) -> int:
        try:
            return self.store.size(key, bucket=bucket)
        except KeyError:
            raise InputMissing("input_file_not_found", id=ref.value) from None


def _default_port(url: str) -> int:
    return 443 if url.lower().startswith("https:") else 80


def _path_style(url: str, path: str, form: str) -> ObjectAddress:
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket or not key:
        raise ApiError("invalid_input_url", value=url, reason="expected a path-style URL: /bucket/key")
    return ObjectAddress(bucket, unquote(key), form)
