"""Configuration layering and validation (`conformance._config`), without pytest runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance._config import ConfigError, resolve
from schemas import profile_names


def _resolve(tmp_path: Path, cli: dict[str, object] | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return resolve(cli or {}, env=env or {}, rootdir=tmp_path, cwd=tmp_path)


def test_defaults_target_the_emulator_with_short_waits(tmp_path: Path) -> None:
    config = _resolve(tmp_path)
    assert config.target_kind == "emulator"
    assert config.profile.name == "openai"
    assert config.poll_interval == 0
    assert config.max_requests is None
    assert config.timeouts["terminal"] == 30
    assert config.source("profile") == "default"


def test_a_url_target_gets_a_budget_and_bounded_waits(tmp_path: Path) -> None:
    """A URL target gets a request budget and waits of minutes, not a day: a stuck target
    leaves batches pending (resumable), it does not hang the run."""
    config = _resolve(tmp_path, {"target_url": "http://127.0.0.1:8000/v1/"}, {"BATCHCONF_API_KEY": "k"})
    assert config.target_url == "http://127.0.0.1:8000/v1"
    assert config.max_requests == 500
    assert config.poll_interval == 10
    assert 600 <= config.timeouts["terminal"] <= 3_600
    assert all(seconds <= 3_600 for seconds in config.timeouts.values())


def test_precedence_is_pyproject_then_conformance_toml_then_env_then_cli(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.batchconf]\nseed = 1\nmax_requests = 10\npoll_interval = 1\n")
    (tmp_path / "conformance.toml").write_text("max_requests = 20\npoll_interval = 2\n")
    env = {"BATCHCONF_POLL_INTERVAL": "3", "BATCHCONF_SEED": "4"}
    config = _resolve(tmp_path, {"seed": "5"}, env)
    assert config.seed == 5
    assert config.source("seed") == "--seed"
    assert config.poll_interval == 3
    assert config.source("poll_interval") == "env BATCHCONF_POLL_INTERVAL"
    assert config.max_requests == 20
    assert config.source("max_requests").endswith("conformance.toml")


def test_timeouts_merge_name_by_name(tmp_path: Path) -> None:
    (tmp_path / "conformance.toml").write_text("[timeouts]\nterminal = 100\ncancel = 7\n")
    config = _resolve(tmp_path, {"timeouts": ["terminal=5"]}, {"BATCHCONF_TIMEOUTS": "expiry=9, cancel=8"})
    assert config.timeouts["terminal"] == 5
    assert config.timeouts["cancel"] == 8
    assert config.timeouts["expiry"] == 9
    assert config.timeouts["request"] == 30


def test_paths_are_relative_to_their_source(tmp_path: Path) -> None:
    (tmp_path / "conformance.toml").write_text('results = "out/results.jsonl"\n')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    config = resolve({"state_file": "state.json"}, env={}, rootdir=tmp_path, cwd=elsewhere)
    assert config.results == tmp_path / "out" / "results.jsonl"
    assert config.state_file == elsewhere / "state.json"


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, {"profile": "nope"})
    message = str(info.value)
    assert "profile = 'nope' (from --profile)" in message
    assert all(name in message for name in profile_names())


@pytest.mark.parametrize(
    ("cli", "key", "expected"),
    [
        ({"target_url": "ftp://example.com/v1"}, "target_url", "http:// or https:// URL"),
        ({"target_url": "https://user:pw@example.com/v1"}, "target_url", "without user:password@"),
        ({"max_requests": "-3"}, "max_requests", "positive integer"),
        ({"max_requests": "many"}, "max_requests", "positive integer"),
        ({"seed": "x"}, "seed", "integer >= 0"),
        ({"poll_interval": "-1"}, "poll_interval", "seconds >= 0"),
        ({"timeouts": ["terminal=0"]}, "timeouts.terminal", "seconds > 0"),
        ({"timeouts": ["forever=3"]}, "timeouts.forever", "one of: request, terminal"),
        ({"timeouts": ["terminal"]}, "timeouts", "NAME=SECONDS"),
        ({"target_controls": "maybe"}, "target_controls", "true, false or auto"),
    ],
)
def test_bad_values_name_the_key_the_value_and_the_expectation(
    tmp_path: Path, cli: dict[str, object], key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, cli, {"BATCHCONF_API_KEY": "k"})
    assert info.value.key == key
    assert expected in str(info.value)
    assert "(from --" in str(info.value)


def test_the_url_target_key_must_be_set_and_only_its_name_is_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, {"target_url": "http://127.0.0.1:1/v1", "api_key_env": "MY_KEY"}, {"OTHER": "secret"})
    assert info.value.key == "api_key_env"
    assert "MY_KEY" in str(info.value)
    assert "unset or empty" in str(info.value)


def test_a_pasted_key_in_api_key_env_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, {"api_key_env": "sk-live-abc/def"})
    assert "sk-live" not in str(info.value)


def test_unknown_file_keys_are_errors_but_subtables_belong_to_others(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.batchconf]\nprofile = 'openai'\n[tool.batchconf.serve]\nport = 1\n")
    assert _resolve(tmp_path).profile.name == "openai"
    (tmp_path / "conformance.toml").write_text("profil = 'openai'\n")
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path)
    assert info.value.key == "profil"
    assert "conformance.toml" in str(info.value)


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "conformance.toml").write_text("profile = \n")
    with pytest.raises(ConfigError, match="valid TOML"):
        _resolve(tmp_path)


def test_env_selects_profile_and_cli_wins(tmp_path: Path) -> None:
    assert _resolve(tmp_path, env={"BATCHCONF_PROFILE": "scaleway"}).profile.name == "scaleway"
    assert _resolve(tmp_path, {"profile": "openai"}, {"BATCHCONF_PROFILE": "scaleway"}).profile.name == "openai"


def test_model_names_default_to_the_profiles_and_can_be_overridden(tmp_path: Path) -> None:
    """Generated requests use the profile's documented models unless the run names its own
    (an Azure deployment, a gateway's model); the two names must differ."""
    assert _resolve(tmp_path, {"profile": "ovhcloud"}).profile.models.default == "gpt-oss-20b"
    config = _resolve(tmp_path, {"profile": "azure-openai"}, {"BATCHCONF_MODEL": "my-deployment"})
    assert config.profile.models.default == "my-deployment"
    assert config.profile.models.other == "gpt-4.1-mini-batch"
    with pytest.raises(ConfigError, match="other_model"):
        _resolve(tmp_path, {"model": "same", "other_model": "same"})


def test_mutations_are_refused_for_a_url_target(tmp_path: Path) -> None:
    """--emulator-mutation only makes sense against the in-process emulator."""
    with pytest.raises(ConfigError, match="emulator_mutations"):
        _resolve(
            tmp_path,
            {"target_url": "http://127.0.0.1:8000/v1", "emulator_mutations": ["drop_output_line"]},
            {"BATCHCONF_API_KEY": "k"},
        )
    assert _resolve(tmp_path, {"emulator_mutations": ["a,b", "b"]}).emulator_mutations == ("a", "b")


def test_object_storage_options_are_normalised_and_layered(tmp_path: Path) -> None:
    """The bucket of an object-storage target: --s3-endpoint-url, --s3-bucket, --s3-prefix
    (or BATCHCONF_S3_* and the files); the prefix gets its trailing '/'; none is needed
    in-process, where the suite uses the emulator's store and a bucket of its own."""
    config = _resolve(tmp_path, {"profile": "scaleway"})
    assert (config.s3_endpoint_url, config.s3_bucket, config.s3_prefix) == (None, None, "")
    (tmp_path / "conformance.toml").write_text('s3_prefix = "team/runs"\n')
    env = {"BATCHCONF_S3_BUCKET": "my-bucket.v2", "BATCHCONF_API_KEY": "k"}
    cli = {
        "profile": "scaleway",
        "target_url": "https://api.scaleway.ai/v1",
        "s3_endpoint_url": "https://s3.fr-par.scw.cloud/",
    }
    config = _resolve(tmp_path, cli, env)
    assert config.s3_endpoint_url == "https://s3.fr-par.scw.cloud"
    assert config.s3_bucket == "my-bucket.v2" and config.source("s3_bucket") == "env BATCHCONF_S3_BUCKET"
    assert config.s3_prefix == "team/runs/" and config.source("s3_prefix").endswith("conformance.toml")


@pytest.mark.parametrize(
    ("cli", "key", "expected"),
    [
        ({"s3_endpoint_url": "s3://bucket"}, "s3_endpoint_url", "URL of an S3 endpoint"),
        ({"s3_endpoint_url": "https://s3.fr-par.scw.cloud/my-bucket"}, "s3_endpoint_url", "without a path"),
        ({"s3_endpoint_url": "https://AK:SK@s3.example.com"}, "s3_endpoint_url", "credentials come from the AWS"),
        ({"s3_bucket": "My_Bucket"}, "s3_bucket", "lower-case letters"),
        ({"s3_bucket": "ab"}, "s3_bucket", "3 to 63"),
        ({"s3_bucket": "a..b"}, "s3_bucket", "no '..'"),
        ({"s3_prefix": "/abs"}, "s3_prefix", "no leading '/'"),
        ({"s3_prefix": "a//b"}, "s3_prefix", "no empty"),
        ({"s3_prefix": "a/../b"}, "s3_prefix", "'..'"),
    ],
)
def test_bad_object_storage_values_are_refused(tmp_path: Path, cli: dict[str, object], key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, {"profile": "scaleway", **cli})
    assert info.value.key == key
    assert expected in str(info.value)
    assert "AK:SK" not in str(info.value)


def test_an_object_storage_url_target_without_controls_needs_an_endpoint(tmp_path: Path) -> None:
    """Against a provider (no admin routes to name its endpoint) the bucket's endpoint must be
    given; with controls left to the probe it is looked up at the start of the run."""
    cli: dict[str, object] = {"profile": "scaleway", "target_url": "https://api.scaleway.ai/v1"}
    env = {"BATCHCONF_API_KEY": "k"}
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, {**cli, "target_controls": "false"}, env)
    assert info.value.key == "s3_endpoint_url" and "--s3-endpoint-url" in str(info.value)
    assert _resolve(tmp_path, cli, env).s3_endpoint_url is None
    given = {**cli, "target_controls": "false", "s3_endpoint_url": "https://s3.fr-par.scw.cloud"}
    assert _resolve(tmp_path, given, env).s3_endpoint_url == "https://s3.fr-par.scw.cloud"
