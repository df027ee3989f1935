"""The command line a new user meets: `batchconf --version`, `profiles`, `check --help`,
`check-all` and the CI scripts (strict), `mutants` (progress, and exit 2 when the unmutated
run cannot start), `serve` on an address it cannot bind (exit 2, no banner).

The serve and mutants harness-error tests run real processes; the progress and pass-through
tests replace the suite run (a pytest subprocess) with a recorded stand-in.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from emulator import _mutants
from emulator._cli import check as check_cmd
from emulator._mutants import MutantResult, run_mutants
from emulator.cli import main, served_profiles
from schemas import load_profile

ROOT = Path(__file__).resolve().parents[1]


def _run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


# -- --version, profiles ----------------------------------------------------------------------


def test_version_prints_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    """`batchconf --version` prints "batchconf X.Y.Z", the installed distribution's version."""
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out == f"batchconf {metadata.version('batchconf')}\n"
    assert re.fullmatch(r"batchconf \d+\.\d+\S*\n", out)


def _table(out: str) -> dict[str, list[str]]:
    rows = [re.split(r" {2,}", line) for line in out.splitlines() if line and not line.startswith("Give ")]
    assert rows[0] == ["PROFILE", "DIALECT", "RESULTS", "PROVIDER"], rows[0]
    return {row[0]: row[1:] for row in rows[1:]}


def test_profiles_table_lists_every_profile_and_variant(capsys: pytest.CaptureFixture[str]) -> None:
    """`batchconf profiles` is a table: every served profile and variant, its dialect, where
    its results go, and the provider (a variant names its backend header)."""
    assert main(["profiles"]) == 0
    table = _table(capsys.readouterr().out)
    assert list(table) == served_profiles()
    places = {"files_api": "Files API", "object_storage": "objects in the user's bucket", "results_url": "results URL"}
    for name, (dialect, results, provider) in table.items():
        profile = load_profile(name.split("+")[0])
        assert dialect == profile.dialect
        assert results == places[profile.output.location]
        assert provider.startswith(profile.display_name)
    assert table["scaigrid"][:2] == ["scaigrid", "results URL"]
    assert table["truefoundry+bedrock"][2].endswith("x-tfy-provider-name: bedrock")


def test_profiles_names_prints_bare_names_for_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    """`batchconf profiles --names` prints the served names, one a line, nothing else."""
    assert main(["profiles", "--names"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert names == served_profiles()
    assert {"openai", "azure-openai", "scaleway", "scaigrid", "truefoundry+bedrock"} <= set(names)


def test_a_profile_without_emulator_is_listed_but_not_served(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bundled profile whose dialect the emulator lacks shows in the table, marked suite
    only, and is left out of --names (which CI serves one by one)."""
    from emulator.dialects import DIALECTS

    monkeypatch.delitem(DIALECTS, "scaigrid")
    assert main(["profiles"]) == 0
    assert _table(capsys.readouterr().out)["scaigrid"][2].endswith("(suite only: no emulator yet)")
    assert main(["profiles", "--names"]) == 0
    assert "scaigrid" not in capsys.readouterr().out.splitlines()


# -- check ----------------------------------------------------------------------------------


@pytest.fixture
def pytest_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Record the commands `batchconf check` would run, answering each with exit code 0."""
    calls: list[list[str]] = []

    def call(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> int:
        # Only the suite's own plugins: the environment's others are not loaded.
        assert env is not None and env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1"
        calls.append(list(cmd))
        return 0

    monkeypatch.setattr(check_cmd.subprocess, "call", call)
    yield calls


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_check_help_shows_batchconfs_options_first(
    flag: str, pytest_calls: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """`batchconf check --help` (and -h) prints batchconf's options with the plugin's flags,
    metavars and words, then one line on pytest's options, then examples; it runs no pytest."""
    from conformance._options import NO_CONTROLS, OPTIONS

    assert main(["check", "-q", flag]) == 0
    assert pytest_calls == []
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert out.startswith("usage: batchconf check")
    options_at = out.index("batchconf options:")
    pytest_line = out.index("Any other option is passed to pytest")
    examples_at = out.index("examples:")
    assert options_at < pytest_line < examples_at
    assert "`batchconf check --pytest-help` shows pytest's" in flat
    for option in (*OPTIONS, NO_CONTROLS):
        at = out.index(f"  {option.flag}")
        assert options_at < at < pytest_line, option.flag
        assert " ".join(option.help.split()) in flat, option.flag
        if option.metavar:
            assert f"{option.flag} {option.metavar}" in out
    examples = out[examples_at:]
    for flag_used in ("--target-url", "--no-target-controls", "--target-name", "--strict"):
        assert f"{flag_used} " in examples or examples.rstrip().endswith(flag_used), flag_used


def test_check_passes_other_arguments_to_pytest(pytest_calls: list[list[str]]) -> None:
    """Every other argument goes to `pytest --pyargs conformance`, with batchconf's --strict
    spelled --batchconf-strict; a --help after `--` is not batchconf's."""
    assert main(["check", "--profile", "scaigrid", "--strict", "-k", "cancel"]) == 0
    assert main(["check", "-x", "--", "--help"]) == 0
    plugins = ["-p", "conformance.plugin", "-p", "_hypothesis_pytestplugin"]
    head = [sys.executable, "-m", "pytest", *plugins, "--pyargs", "conformance"]
    assert pytest_calls == [
        [*head, "--profile", "scaigrid", "--batchconf-strict", "-k", "cancel"],
        [*head, "-x", "--", "--help"],
    ]


@pytest.mark.parametrize(("pytest_code", "expected"), [(0, 0), (1, 1), (2, 2), (4, 2), (5, 2)])
def test_check_maps_pytests_harness_codes_to_2(
    monkeypatch: pytest.MonkeyPatch, pytest_code: int, expected: int
) -> None:
    """pytest's usage, internal and no-tests codes are harness errors: exit 2."""
    monkeypatch.setattr(check_cmd.subprocess, "call", lambda cmd, env=None: pytest_code)
    assert main(["check"]) == expected


def test_check_pytest_help_shows_pytests_options(capfd: pytest.CaptureFixture[str]) -> None:
    """`batchconf check --pytest-help` prints pytest's own help (the batchconf group among it)."""
    assert main(["check", "--pytest-help"]) == 0
    out = capfd.readouterr().out
    assert "--junit-xml=path" in out and "batchconf conformance suite:" in out


def test_check_all_runs_each_profile_strict(
    pytest_calls: list[list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`batchconf check-all` checks each profile with --strict (pytest: --batchconf-strict):
    the emulator implements its profiles, so inferred facts must hold there too."""
    assert main(["check-all", "--out", str(tmp_path), "--profile", "openai", "--profile", "scaigrid"]) == 0
    assert len(pytest_calls) == 2
    for cmd, name in zip(pytest_calls, ("openai", "scaigrid"), strict=True):
        assert "--batchconf-strict" in cmd and cmd[cmd.index("--profile") + 1] == name
    assert "== batchconf check --strict --profile scaigrid" in capsys.readouterr().out


def test_ci_serves_each_bare_name_and_checks_it_strict() -> None:
    """.ci/run loops over `batchconf profiles --names` (the table is for people), and
    .ci/served-check runs `batchconf check --strict` against the served emulator."""
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "for profile in $(batchconf profiles --names); do" in run
    served = (ROOT / ".ci" / "served-check").read_text(encoding="utf-8")
    commands = [line for line in served.splitlines() if line.startswith("batchconf check ")]
    assert len(commands) == 1 and " --strict " in commands[0], commands


# -- mutants --------------------------------------------------------------------------------


def _fake_suite(
    monkeypatch: pytest.MonkeyPatch, baseline: MutantResult, missed: frozenset[str] = frozenset()
) -> list[str | None]:
    """Replace each suite run by a canned result; the list records which runs were asked for."""
    asked: list[str | None] = []

    def run(mutation: str | None, **_: object) -> MutantResult:
        asked.append(mutation)
        if mutation is None:
            return baseline
        if mutation in missed:
            return MutantResult(mutation, 0, (), 2.5, 136)
        return MutantResult(mutation, 1, (f"conformance/suite/test_x.py::test_{mutation}",), 1.5, 1)

    monkeypatch.setattr(_mutants, "run_mutant", run)
    return asked


def test_mutants_prints_progress_on_stderr_and_the_table_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first line for the unmutated run, then one per finished mutation (name, verdict,
    catching test, seconds) on stderr; the table alone on stdout; exit 0 when all are caught."""
    _fake_suite(monkeypatch, MutantResult(None, 0, (), 7.25, 136))
    assert main(["mutants", "skip_finalizing", "drop_output_line", "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[0] == "batchconf mutants: profile openai, 2 mutations, 2 suite runs at a time, after one unmutated run"
    assert err[1] == "unmutated: exit 0, 136 checks, conformant (7.2 s)"
    # The two runs finish in either order; the counter follows the order they finish in.
    assert [line.split("] ", 1)[0] for line in err[2:]] == ["[1/2", "[2/2"]
    assert sorted(line.split("] ", 1)[1] for line in err[2:]) == [
        f"{name}: caught by test_x.py::test_{name} (1.5 s)" for name in ("drop_output_line", "skip_finalizing")
    ]
    assert captured.out.startswith("Profile openai. Unmutated emulator: exit 0, 136 checks (conformant).\n")
    assert "| `skip_finalizing` |" in captured.out and "Mutation score: 2/2 caught (100%)." in captured.out


def test_mutants_exit_1_and_says_missed_when_a_mutation_survives(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A surviving mutation is "MISSED" in the progress, SURVIVED in the table, exit 1."""
    _fake_suite(monkeypatch, MutantResult(None, 0, (), 7.0, 136), missed=frozenset({"drop_output_line"}))
    assert main(["mutants", "drop_output_line", "--jobs", "1"]) == 1
    captured = capsys.readouterr()
    assert "[1/1] drop_output_line: MISSED (exit 0) (2.5 s)" in captured.err.splitlines()
    assert "SURVIVED (exit 0)" in captured.out and "Mutation score: 0/1 caught (0%)." in captured.out


def test_a_harness_error_in_the_unmutated_run_stops_before_any_mutation(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the unmutated run is a harness error, no mutation runs and no score is made."""
    tail = (
        "ImportError while loading conftest\nE   ModuleNotFoundError: No module named 'gone'\n=== 1 error in 0.1s ==="
    )
    asked = _fake_suite(monkeypatch, MutantResult(None, 4, (), 0.5, 0, tail))
    baseline, results = run_mutants(["skip_finalizing", "drop_output_line"], jobs=2)
    assert asked == [None] and results == [] and baseline.harness_error
    assert baseline.reason().splitlines() == [
        "ImportError while loading conftest",
        "E   ModuleNotFoundError: No module named 'gone'",
        "1 error in 0.1s",
    ]


def test_reason_keeps_the_last_meaningful_lines() -> None:
    """pytest's separators (a summary line keeps its words), blank lines and the stdout/stderr
    repeat of an exit reason are dropped; at most the last `lines` are kept."""
    tail = (
        "! _pytest.outcomes.Exit: batchconf: invalid configuration: seed = 'x' !\n\n"
        "=== no tests ran in 0.01s ===\nExit: batchconf: invalid configuration: seed = 'x'"
    )
    result = MutantResult(None, 2, (), 0.1, 0, tail)
    assert result.reason() == "batchconf: invalid configuration: seed = 'x'\nno tests ran in 0.01s"
    assert result.reason(lines=1) == "no tests ran in 0.01s"
    assert not MutantResult(None, 1, (), 0.1, 0).harness_error and MutantResult(None, 3, (), 0.1, 0).harness_error


def test_mutants_exit_2_with_the_reason_when_the_unmutated_run_cannot_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real unmutated run refused by the plugin (a bad BATCHCONF_SEED) gives exit 2, the
    plugin's reason on stderr, no mutation run and no table (not a 0% score)."""
    monkeypatch.setenv("BATCHCONF_SEED", "not-a-number")
    started = time.perf_counter()
    assert main(["mutants", "skip_finalizing", "--jobs", "1"]) == 2
    assert time.perf_counter() - started < 60
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the unmutated run could not start (pytest exit 2); no mutation was run:" in captured.err
    assert "seed = 'not-a-number' (from env BATCHCONF_SEED)" in captured.err
    assert "skip_finalizing" not in captured.err.split("\n", 1)[1]


def test_mutants_exit_2_on_a_profile_that_fails_to_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown profile, or a profile file that does not load, is exit 2 with the loader's
    message, before any suite run."""
    assert main(["mutants", "--profile", "no-such-provider"]) == 2
    assert "batchconf mutants: unknown profile 'no-such-provider'" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text('[profile]\nname = "broken"\n', encoding="utf-8")
    assert main(["mutants", "--profile", str(broken)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "broken.toml" in captured.err and "Traceback" not in captured.err


# -- serve ----------------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that a listening socket of this test holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


@pytest.mark.parametrize("profile", ["openai", "scaleway"])
def test_serve_on_a_port_in_use_exits_2_without_a_banner(taken_port: int, profile: str) -> None:
    """`batchconf serve` on a taken port prints one message and no banner, and exits 2 (for
    Scaleway too, whose moto server would start first)."""
    done = _run_cli("serve", "--port", str(taken_port), "--profile", profile)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr == (f"batchconf serve: port {taken_port} on 127.0.0.1 is in use; choose another with --port\n")


def test_serve_checks_the_port_before_starting_a_moto_server(
    taken_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An object-storage profile starts its moto server only once the port is bound, so a
    refused port leaves nothing running."""
    import moto.server

    started: list[object] = []

    class Recorded(moto.server.ThreadedMotoServer):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(moto.server, "ThreadedMotoServer", Recorded)
    assert main(["serve", "--profile", "scaleway", "--port", str(taken_port)]) == 2
    assert started == []
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--host", "192.0.2.1", "--port", "0"],
            "192.0.2.1 is not an address of this machine; choose another with --host (e.g. 127.0.0.1)",
        ),
        (["--port", "70000"], "port 70000 is not a TCP port (0-65535); choose another with --port"),
    ],
)
def test_serve_on_an_address_it_cannot_bind_exits_2(args: list[str], message: str) -> None:
    """An address of no local interface (TEST-NET-1), or a port out of range: exit 2, one
    message, no banner."""
    done = _run_cli("serve", *args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"batchconf serve: {message}\n")


def test_serve_on_port_0_prints_and_serves_the_port_it_got() -> None:
    """--port 0 binds a free port; the banner names that port, which answers, and SIGTERM
    stops the server with exit 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator.cli", "serve", "--port", "0", "--api-key", "sk-port0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        found = re.search(r" on http://127\.0\.0\.1:(\d+)/v1$", banner.strip())
        assert found and found.group(1) != "0", banner
        url = f"http://127.0.0.1:{found.group(1)}/v1/batches"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(url, headers={"Authorization": "Bearer sk-port0"}, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.05)  # waiting for uvicorn to start serving the socket, not emulating time
        assert answer.status_code == 200 and answer.json()["object"] == "list"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err[-2000:]
