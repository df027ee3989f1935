"""The suite's configuration: one `SuiteConfig`, from four layers, validated once.

Precedence, lowest first: defaults < `[tool.batchconf]` in pyproject.toml < conformance.toml
(both at pytest's rootdir) < `BATCHCONF_*` environment variables < command-line options.
Every value is parsed and checked here; a bad one raises `ConfigError`, whose message names
the key, the bad value, where it came from and what is expected. Secrets never pass through
here: the configuration names the environment variable that holds the key, not the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from schemas import ModelRules, Profile, ProfileError, UnknownProfileError, load_profile, profile_names

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_SECOND_API_KEY_ENV",
    "KEYS",
    "TIMEOUT_NAMES",
    "ConfigError",
    "SuiteConfig",
    "resolve",
]

DEFAULT_API_KEY_ENV = "BATCHCONF_API_KEY"
DEFAULT_SECOND_API_KEY_ENV = "BATCHCONF_SECOND_API_KEY"
ENV_PREFIX = "BATCHCONF_"

#: The named timeouts (seconds) and what each bounds.
TIMEOUT_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "request": "one HTTP request to the target",
        "terminal": "a batch reaching a terminal status (scenarios use it unless they name another)",
        "validation": "a batch leaving its initial (validating) status",
        "cancel": "a cancelled batch reaching its cancelled status",
        "expiry": "a batch reaching its expired status",
        "webhook": "the target delivering the webhooks of ended batches",
    }
)

# The in-process emulator moves a batch one status per poll, so its waits are short; a real
# provider may take the whole 24 h window plus finalization (OpenAI: cancelling up to 10 min).
_DEFAULT_TIMEOUTS: Mapping[str, Mapping[str, float]] = {
    "emulator": {"request": 30, "terminal": 30, "validation": 30, "cancel": 30, "expiry": 30, "webhook": 30},
    # Bounded on a URL target too: a stuck provider must not hang a run for a day. A batch
    # still running when its wait ends is pending, and a later run resumes it (--state-file).
    "url": {"request": 60, "terminal": 1_800, "validation": 600, "cancel": 600, "expiry": 1_800, "webhook": 600},
}
_DEFAULT_POLL_INTERVAL = {"emulator": 0.0, "url": 10.0}
# A paid target gets a budget unless one is configured: a run must not submit without bound.
_DEFAULT_URL_MAX_REQUESTS = 500

TargetKind = Literal["emulator", "url"]


class ConfigError(ValueError):
    """A configuration value is wrong: names the key, the value, its source and what is
    expected. The plugin turns it into exit status 2."""

    def __init__(self, key: str, value: object, source: str, expected: str) -> None:
        self.key = key
        self.value = value
        self.source = source
        self.expected = expected
        super().__init__(f"{key} = {value!r} (from {source}): expected {expected}")


@dataclass(frozen=True)
class SuiteConfig:
    """The resolved configuration of one run.

    `profile` is the loaded contract; `sources` says where each key's value came from
    ("default", "--profile", "env BATCHCONF_PROFILE", "pyproject.toml [tool.batchconf]", ...);
    `explicit` holds the keys given on the command line. `s3_endpoint_url`, `s3_bucket` and
    `s3_prefix` name the bucket an object-storage target reads its inputs from (None: the
    emulator's endpoint, a bucket the suite creates; the prefix is '' or ends with '/').
    """

    profile: Profile
    target_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    second_api_key_env: str = DEFAULT_SECOND_API_KEY_ENV
    project: str | None = None
    seed: int = 0
    results: Path | None = None
    state_file: Path | None = None
    max_requests: int | None = None
    timeouts: Mapping[str, float] = field(default_factory=dict)
    poll_interval: float = 0.0
    target_controls: bool | None = None
    emulator_mutations: tuple[str, ...] = ()
    strict: bool = False
    target_name: str | None = None
    observe: Path | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    explicit: frozenset[str] = frozenset()

    @property
    def target_kind(self) -> TargetKind:
        """The kind of target: "emulator" (in-process, the default) or "url"."""
        return "url" if self.target_url else "emulator"

    @property
    def profile_name(self) -> str:
        """The profile's name, with its variant if any ("truefoundry+bedrock")."""
        p = self.profile
        return f"{p.name}+{p.variant}" if p.variant else p.name

    def source(self, key: str) -> str:
        """Where the value of `key` came from."""
        return self.sources.get(key, "default")


# -- parsers: (raw value, source, base dir for relative paths) -> value -------------------

Parser = Callable[[str, Any, str, Path], Any]


def _expect_str(key: str, raw: Any, source: str, what: str) -> str:
    if not isinstance(raw, str):
        raise ConfigError(key, raw, source, what)
    return raw.strip()


def _http_url(key: str, raw: Any, source: str, what: str, credentials: str) -> tuple[str, SplitResult] | None:
    """An http(s) URL with a host and no user:password@ (`credentials` says where those come
    from instead), split; None for an empty value."""
    text = _expect_str(key, raw, source, what)
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ConfigError(key, raw, source, what) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, raw, source, what)
    if parts.username or parts.password:
        # Credentials in a URL would be printed in every header and report.
        raise ConfigError(key, _strip_userinfo(text), source, f"a URL without user:password@ ({credentials})")
    return text, parts


def _url(key: str, raw: Any, source: str, base: Path) -> str | None:
    what = "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1"
    found = _http_url(key, raw, source, what, "the key comes from api_key_env")
    if found is None:
        return None
    text, parts = found
    if parts.query or parts.fragment:
        raise ConfigError(key, raw, source, "a base URL without ?query or #fragment")
    return text.rstrip("/")


def _s3_url(key: str, raw: Any, source: str, base: Path) -> str | None:
    what = "the http:// or https:// URL of an S3 endpoint, e.g. https://s3.fr-par.scw.cloud or http://127.0.0.1:5000"
    found = _http_url(key, raw, source, what, "credentials come from the AWS variables")
    if found is None:
        return None
    text, parts = found
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise ConfigError(
            key, raw, source, "an endpoint URL without a path, ?query or #fragment (the bucket is s3_bucket)"
        )
    return text.rstrip("/")


def _s3_bucket(key: str, raw: Any, source: str, base: Path) -> str | None:
    from ._storage import bucket_name_problem

    text = _expect_str(key, raw, source, "an S3 bucket name")
    if not text:
        return None
    problem = bucket_name_problem(text)
    if problem is not None:
        raise ConfigError(key, raw, source, f"an S3 bucket name: {problem}")
    return text


def _s3_prefix(key: str, raw: Any, source: str, base: Path) -> str:
    """A key prefix: no leading '/', no empty or '.'/'..' segment; a trailing '/' is added."""
    what = "a key prefix such as batchconf/ or team/runs/ (no leading '/', no empty, '.' or '..' segment)"
    text = _expect_str(key, raw, source, what)
    if not text:
        return ""
    segments = text.removesuffix("/").split("/")
    if text.startswith("/") or any(seg in ("", ".", "..") for seg in segments) or len(text) > 512:
        raise ConfigError(key, raw, source, what)
    return text.removesuffix("/") + "/"


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=f"***@{host}").geturl()


def _profile(key: str, raw: Any, source: str, base: Path) -> Profile:
    text = _expect_str(key, raw, source, "a profile name")
    try:
        return load_profile(text)
    except UnknownProfileError:
        raise ConfigError(key, raw, source, f"one of the known profiles: {', '.join(profile_names())}") from None
    except ProfileError as exc:
        raise ConfigError(key, raw, source, f"a valid profile ({exc})") from None


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _env_name(key: str, raw: Any, source: str, base: Path) -> str:
    what = "the name of an environment variable (letters, digits, _), not the key itself"
    text = _expect_str(key, raw, source, what)
    if not _ENV_NAME.match(text):
        # Do not echo the value: someone may have pasted the key here.
        raise ConfigError(key, "<not shown>", source, what)
    return text


def _text(key: str, raw: Any, source: str, base: Path) -> str | None:
    text = _expect_str(key, raw, source, "a string")
    return text or None


def _int(key: str, raw: Any, source: str, minimum: int, what: str) -> int:
    if isinstance(raw, bool):
        raise ConfigError(key, raw, source, what)
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(key, raw, source, what) from None
    else:
        raise ConfigError(key, raw, source, what)
    if value < minimum:
        raise ConfigError(key, raw, source, what)
    return value


def _seed(key: str, raw: Any, source: str, base: Path) -> int:
    return _int(key, raw, source, 0, "an integer >= 0")


def _max_requests(key: str, raw: Any, source: str, base: Path) -> int | None:
    if isinstance(raw, str) and raw.strip().lower() in ("", "none", "unlimited"):
        return None
    return _int(key, raw, source, 1, "a positive integer (or 'unlimited')")


def _number(key: str, raw: Any, source: str, *, positive: bool) -> float:
    what = "a number of seconds > 0" if positive else "a number of seconds >= 0"
    if isinstance(raw, bool):
        raise ConfigError(key, raw, source, what)
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(key, raw, source, what) from None
    else:
        raise ConfigError(key, raw, source, what)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(key, raw, source, what)
    return value


def _poll_interval(key: str, raw: Any, source: str, base: Path) -> float:
    return _number(key, raw, source, positive=False)


def _path(key: str, raw: Any, source: str, base: Path) -> Path | None:
    text = _expect_str(key, raw, source, "a file path")
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(key: str, raw: Any, source: str, base: Path) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if text in ("", "auto"):
            return None
    raise ConfigError(key, raw, source, "true, false or auto")


def _timeouts(key: str, raw: Any, source: str, base: Path) -> dict[str, float]:
    """NAME=SECONDS pairs: a TOML table, a comma-separated string (env) or a list (CLI)."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        pairs = [(str(k), v) for k, v in raw.items()]
    else:
        items = raw if isinstance(raw, list) else [raw]
        for item in items:
            if not isinstance(item, str):
                raise ConfigError(key, item, source, "NAME=SECONDS")
            for part in filter(None, (p.strip() for p in item.split(","))):
                name, sep, value = part.partition("=")
                if not sep:
                    raise ConfigError(key, part, source, f"NAME=SECONDS with NAME one of: {', '.join(TIMEOUT_NAMES)}")
                pairs.append((name.strip(), value))
    out: dict[str, float] = {}
    for name, value in pairs:
        if name not in TIMEOUT_NAMES:
            raise ConfigError(f"{key}.{name}", value, source, f"a timeout name, one of: {', '.join(TIMEOUT_NAMES)}")
        out[name] = _number(f"{key}.{name}", value, source, positive=True)
    return out


def _names(key: str, raw: Any, source: str, base: Path) -> tuple[str, ...]:
    """Names from a list (CLI, TOML) or a comma-separated string (env)."""
    items = raw if isinstance(raw, list) else [raw]
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(key, item, source, "mutation names (strings)")
        out.extend(n.strip() for n in item.split(",") if n.strip())
    return tuple(dict.fromkeys(out))


#: Every configuration key, with its parser. Names are the TOML keys; the environment
#: variable is `BATCHCONF_` + the upper-cased key; the CLI option is documented in plugin.py.
KEYS: Mapping[str, Parser] = MappingProxyType(
    {
        "target_url": _url,
        "profile": _profile,
        "api_key_env": _env_name,
        "second_api_key_env": _env_name,
        "project": _text,
        "seed": _seed,
        "results": _path,
        "state_file": _path,
        "max_requests": _max_requests,
        "timeouts": _timeouts,
        "poll_interval": _poll_interval,
        "target_controls": _bool,
        "strict": _bool,
        "target_name": _text,
        "observe": _path,
        "emulator_mutations": _names,
        "model": _text,
        "other_model": _text,
        "s3_endpoint_url": _s3_url,
        "s3_bucket": _s3_bucket,
        "s3_prefix": _s3_prefix,
    }
)


@dataclass(frozen=True)
class _Layer:
    source: str
    values: Mapping[str, Any]
    base: Path


def _read_toml(path: Path, source: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", str(path), source, f"valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError("(file)", str(path), source, f"a readable file ({exc.strerror})") from None


def _file_layer(values: Mapping[str, Any], source: str, base: Path) -> _Layer:
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if key in KEYS:
            kept[key] = value
        elif isinstance(value, Mapping):
            # Sub-tables ([tool.batchconf.serve], ...) belong to other batchconf components.
            continue
        else:
            raise ConfigError(key, value, source, f"a known key, one of: {', '.join(KEYS)}")
    return _Layer(source, kept, base)


def file_layers(rootdir: Path) -> list[_Layer]:
    """The configuration files at `rootdir`, lowest precedence first."""
    layers: list[_Layer] = []
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file():
        source = f"{pyproject} [tool.batchconf]"
        table = _read_toml(pyproject, source).get("tool", {}).get("batchconf")
        if table is not None:
            if not isinstance(table, Mapping):
                raise ConfigError("tool.batchconf", table, source, "a table")
            layers.append(_file_layer(table, source, rootdir))
    conformance = rootdir / "conformance.toml"
    if conformance.is_file():
        source = str(conformance)
        layers.append(_file_layer(_read_toml(conformance, source), source, rootdir))
    return layers


def env_layer(env: Mapping[str, str], cwd: Path) -> _Layer:
    """`BATCHCONF_<KEY>` variables (other BATCHCONF_* names, such as the key itself, are not
    configuration and are ignored)."""
    values = {key: env[ENV_PREFIX + key.upper()] for key in KEYS if ENV_PREFIX + key.upper() in env}
    return _Layer("env", values, cwd)


def resolve(
    cli: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    rootdir: Path,
    cwd: Path | None = None,
    cli_names: Mapping[str, str] | None = None,
) -> SuiteConfig:
    """Build and validate the configuration.

    `cli` maps keys to raw command-line values (None: not given); `cli_names` maps keys to
    the option spelled in messages. Raises `ConfigError` for the first bad value, including
    a URL target whose key variable is unset.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    layers = [*file_layers(rootdir), env_layer(env, cwd)]
    cli_values = {k: v for k, v in cli.items() if v is not None and v != []}
    layers.append(_Layer("cli", cli_values, cwd))

    raw: dict[str, tuple[Any, str, Path]] = {}
    timeouts_layers: list[tuple[Any, str, Path]] = []
    for layer in layers:
        for key, value in layer.values.items():
            if layer.source == "cli":
                source = (cli_names or {}).get(key, f"--{key.replace('_', '-')}")
            elif layer.source == "env":
                source = f"env {ENV_PREFIX}{key.upper()}"
            else:
                source = layer.source
            if key == "timeouts":
                # Timeouts merge name by name: a layer overrides only the names it gives.
                timeouts_layers.append((value, source, layer.base))
            raw[key] = (value, source, layer.base)

    def get(key: str, default: Any) -> Any:
        if key not in raw:
            return default
        value, source, base = raw[key]
        return KEYS[key](key, value, source, base)

    profile = get("profile", None)
    if profile is None:
        profile = _profile("profile", "openai", "default", cwd)
    model, other_model = get("model", None), get("other_model", None)
    if model or other_model:
        # The account's own model (or deployment) names replace the profile's examples.
        models = ModelRules(model or profile.models.default, other_model or profile.models.other)
        if models.default == models.other:
            raise ConfigError("other_model", models.other, "model/other_model", "a model other than --model")
        profile = dataclasses.replace(profile, models=models)
    target_url: str | None = get("target_url", None)
    kind: TargetKind = "url" if target_url else "emulator"
    timeouts = dict(_DEFAULT_TIMEOUTS[kind])
    for value, source, base in timeouts_layers:
        timeouts.update(_timeouts("timeouts", value, source, base))
    max_requests = get("max_requests", _DEFAULT_URL_MAX_REQUESTS if kind == "url" else None)
    config = SuiteConfig(
        profile=profile,
        target_url=target_url,
        api_key_env=get("api_key_env", DEFAULT_API_KEY_ENV),
        second_api_key_env=get("second_api_key_env", DEFAULT_SECOND_API_KEY_ENV),
        project=get("project", None),
        seed=get("seed", 0),
        results=get("results", None),
        state_file=get("state_file", None),
        max_requests=max_requests,
        timeouts=MappingProxyType(timeouts),
        poll_interval=get("poll_interval", _DEFAULT_POLL_INTERVAL[kind]),
        target_controls=get("target_controls", None),
        strict=bool(get("strict", False)),
        target_name=get("target_name", None),
        observe=get("observe", None),
        emulator_mutations=get("emulator_mutations", ()),
        s3_endpoint_url=get("s3_endpoint_url", None),
        s3_bucket=get("s3_bucket", None),
        s3_prefix=get("s3_prefix", ""),
        sources=MappingProxyType({k: source for k, (_, source, _) in raw.items()}),
        explicit=frozenset(cli_values),
    )
    if config.emulator_mutations and kind == "url":
        raise ConfigError(
            "emulator_mutations",
            ",".join(config.emulator_mutations),
            config.source("emulator_mutations"),
            "no mutations with a URL target (they switch on contract violations of the in-process emulator)",
        )
    _check_target(config, env)
    return config


def _check_target(config: SuiteConfig, env: Mapping[str, str]) -> None:
    if config.target_url is None:
        return
    if (
        config.profile.output.location == "object_storage"
        and config.s3_endpoint_url is None
        and config.target_controls is False
    ):
        # Without admin routes nothing names the endpoint the target reads: it must be given.
        raise ConfigError(
            "s3_endpoint_url",
            None,
            config.source("s3_endpoint_url"),
            f"the S3 endpoint of the bucket the target reads (profile {config.profile.name!r} takes its input from "
            "object storage, and the target has no admin routes to name one), e.g. --s3-endpoint-url "
            "https://s3.fr-par.scw.cloud",
        )
    if not env.get(config.api_key_env):
        # Name the variable, never a value.
        raise ConfigError(
            "api_key_env",
            config.api_key_env,
            config.source("api_key_env"),
            f"the environment variable {config.api_key_env} to hold the target's API key (it is unset or empty)",
        )
    if "second_api_key_env" in config.sources and not env.get(config.second_api_key_env):
        raise ConfigError(
            "second_api_key_env",
            config.second_api_key_env,
            config.source("second_api_key_env"),
            f"the environment variable {config.second_api_key_env} to hold a second API key (it is unset or empty)",
        )
