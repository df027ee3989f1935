"""`batchconf serve` as a process: keys from the environment or generated, real-time timed
progression, raw (curl-like) HTTP, S3 elsewhere, shutdown, and CLI errors.

The SDK flows against a server run in the other modules (the `sdk` fixture's server-*
variants); this module covers what only a process has. Three extra servers start in
parallel, once for the module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from emulator.cli import main
from tests.emulator._support import CHAT, TLS, ServerProcess, chat_line, read_lines, start_server, to_jsonl

ENV_KEYS = ("sk-env-one", "sk-env-two")


@dataclass
class Servers:
    """The module's extra servers."""

    timed: ServerProcess  # BATCHCONF_API_KEYS, real clock, small timed phases
    generated: ServerProcess  # no key configured, manual progression, virtual clock
    s3: ServerProcess  # storage on a moto S3 server, stopped by a test
    moto_url: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Start the three servers in parallel, wait for each, and stop them at the end."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    workdir = tmp_path_factory.mktemp("serve-extra")
    timing = ["--validation-seconds", "0.2", "--request-seconds", "0.01", "--finalization-seconds", "0.2"]
    started = [
        start_server(timing, workdir, env={"BATCHCONF_API_KEYS": ",".join(ENV_KEYS)}),
        start_server(["--progression", "manual", "--clock", "virtual", "--seed", "3"], workdir),
        start_server(["--api-key", "sk-s3", "--progression", "per_poll", "--s3-endpoint-url", moto_url], workdir),
    ]
    try:
        for s in started:
            s.wait_ready()
        yield Servers(timed=started[0], generated=started[1], s3=started[2], moto_url=moto_url)
    finally:
        for s in started:
            s.stop()
        moto.stop()
    for s in started:
        assert "Traceback" not in s.stderr(), s.stderr()[-4000:]


def _sdk(base_url: str, key: str) -> openai.OpenAI:
    """A sync SDK client on a server (closing it closes its httpx client)."""
    http = httpx.Client(verify=TLS)
    return openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, http_client=http)  # type: ignore[arg-type]


def _get(url: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(verify=TLS, timeout=10) as http:
        return http.get(url, headers=headers)


def test_env_keys_are_honoured(servers: Servers) -> None:
    """BATCHCONF_API_KEYS=a,b: both keys work, others get 401, and the keys are never printed."""
    url = servers.timed.root_url + "/v1/batches"
    for key in ENV_KEYS:
        assert _get(url, key).status_code == 200
    assert _get(url, "sk-other").status_code == 401
    assert _get(url).status_code == 401
    out = servers.timed.stdout()
    assert "API keys: 2 configured" in out
    assert all(key not in out + servers.timed.stderr() for key in ENV_KEYS)


def test_generated_key_is_printed_and_accepted(servers: Servers) -> None:
    """With no key configured the server prints one generated key on stdout, and accepts only it."""
    match = re.search(r"API key \(generated\): (\S+)", servers.generated.stdout())
    assert match, servers.generated.stdout()
    key = match.group(1)
    url = servers.generated.root_url + "/v1/batches"
    assert _get(url, key).status_code == 200
    assert _get(url, key + "x").status_code == 401
    assert f"on {servers.generated.root_url}/v1" in servers.generated.stdout()


def test_manual_progression_and_virtual_clock_flags(servers: Servers) -> None:
    """--progression manual --clock virtual: polls never move a batch; steps and clock advances do."""
    root = servers.generated.root_url
    match = re.search(r"API key \(generated\): (\S+)", servers.generated.stdout())
    assert match
    with (
        httpx.Client(base_url=root, verify=TLS, timeout=10) as admin,
        _sdk(root + "/v1", match.group(1)) as client,
    ):
        info = admin.get("/_emulator/info").json()
        assert info["clock"]["kind"] == "virtual" and info["timing"]["progression"] == "manual"
        f = client.files.create(file=("in.jsonl", to_jsonl([chat_line("a"), chat_line("b")])), purpose="batch")
        b = client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
        assert client.batches.retrieve(b.id).status == "validating"
        assert admin.post(f"/_emulator/batches/{b.id}/step").json()["status"] == "in_progress"
        admin.post("/_emulator/clock/advance", json={"seconds": 86_400})
        done = client.batches.retrieve(b.id)
        assert done.status == "expired" and done.expired_at == b.created_at + 86_400
        assert done.error_file_id is not None
        assert {line["error"]["code"] for line in read_lines(client, done.error_file_id)} == {"batch_expired"}


def test_timed_progression_in_real_time(servers: Servers) -> None:
    """The default timed progression finishes a small batch in real time, statuses in graph order."""
    with _sdk(servers.timed.root_url + "/v1", ENV_KEYS[1]) as client:
        f = client.files.create(file=("in.jsonl", to_jsonl([chat_line(f"r{i}") for i in range(3)])), purpose="batch")
        b = client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
        assert b.status == "validating"
        seen = ["validating"]
        deadline = time.monotonic() + 10
        snap = b
        while snap.status != "completed":
            assert time.monotonic() < deadline, f"not completed in 10 s; seen {seen}"
            time.sleep(0.05)  # real-time server: wait between polls (the phases last 0.2 s)
            snap = client.batches.retrieve(b.id)
            if snap.status != seen[-1]:
                seen.append(snap.status)
        order = ["validating", "in_progress", "finalizing", "completed"]
        assert seen == sorted(seen, key=order.index) and seen[0] == "validating" and seen[-1] == "completed"
        stamps = [snap.created_at, snap.in_progress_at, snap.finalizing_at, snap.completed_at]
        assert all(isinstance(s, int) for s in stamps) and stamps == sorted(stamps)  # type: ignore[type-var]
        assert snap.request_counts is not None and snap.request_counts.completed == 3
        assert snap.output_file_id is not None
        assert len(read_lines(client, snap.output_file_id)) == 3


def test_timed_cancel_in_real_time(servers: Servers) -> None:
    """On the timed server, cancel answers cancelling; the batch is cancelled after the cancellation time."""
    with _sdk(servers.timed.root_url + "/v1", ENV_KEYS[0]) as client:
        f = client.files.create(file=("in.jsonl", to_jsonl([chat_line("a")])), purpose="batch")
        b = client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
        c = client.batches.cancel(b.id)
        assert c.status == "cancelling" and c.cancelling_at is not None
        deadline = time.monotonic() + 10
        while (snap := client.batches.retrieve(b.id)).status == "cancelling":
            assert time.monotonic() < deadline
            time.sleep(0.1)  # real-time server: the cancellation phase lasts 1 s
        assert snap.status == "cancelled"


def test_curl_like_requests(server: Any) -> None:
    """Plain HTTP as curl sends it (multipart -F, JSON -d, Bearer header) works against the server."""
    key = server.api_keys[0]
    headers = {"Authorization": f"Bearer {key}"}
    base = server.base_url
    server.reset()
    with httpx.Client(verify=TLS, timeout=10) as http:
        up = http.post(
            f"{base}/files",
            headers=headers,
            files={"file": ("batch.jsonl", to_jsonl([chat_line("c1")]), "application/octet-stream")},
            data={"purpose": "batch"},
        )
        assert up.status_code == 200, up.text
        assert up.headers["content-type"].startswith("application/json")
        created = http.post(
            f"{base}/batches",
            headers={**headers, "Content-Type": "application/json"},
            content=b'{"input_file_id": "%s", "endpoint": "/v1/chat/completions", "completion_window": "24h"}'
            % up.json()["id"].encode(),
        ).json()
        for _ in range(3):
            batch = http.get(f"{base}/batches/{created['id']}", headers=headers).json()
        assert batch["status"] == "completed"
        content = http.get(f"{base}/files/{batch['output_file_id']}/content", headers=headers)
        assert content.status_code == 200 and content.headers["x-request-id"]
        assert int(content.headers["content-length"]) == len(content.content)
        assert b'"custom_id":"c1"' in content.content


def test_cli_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`batchconf serve` with an unknown profile or a bad timing/clock value exits 2 naming the problem."""
    assert main(["serve", "--profile", "no-such-provider"]) == 2
    assert "no-such-provider" in capsys.readouterr().err
    assert main(["serve", "--time-scale", "0"]) == 2
    assert "scale" in capsys.readouterr().err
    assert main(["serve", "--concurrency", "0"]) == 2
    assert "concurrency" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--progression", "warp"])
    assert exc.value.code == 2
    capsys.readouterr()


def _buckets(s3: httpx.Client, moto_url: str) -> set[str]:
    return set(re.findall(r"<Name>(batchconf-[0-9a-f]+)</Name>", s3.get(moto_url + "/").text))


def test_s3_endpoint_stores_bytes_there(servers: Servers) -> None:
    """--s3-endpoint-url puts every input and result file in a batchconf-* bucket of that S3."""
    with _sdk(servers.s3.root_url + "/v1", "sk-s3") as client:
        f = client.files.create(file=("in.jsonl", to_jsonl([chat_line("a")])), purpose="batch")
        b = client.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
        for _ in range(3):
            done = client.batches.retrieve(b.id)
        assert done.status == "completed" and done.output_file_id is not None
        assert client.files.content(f.id).content == to_jsonl([chat_line("a")])
    with httpx.Client(verify=TLS, timeout=10) as s3:
        buckets = _buckets(s3, servers.moto_url)
        assert buckets
        keys = {
            k for name in buckets for k in re.findall(r"<Key>([^<]+)</Key>", s3.get(f"{servers.moto_url}/{name}").text)
        }
    assert {f"files/{f.id}", f"files/{done.output_file_id}"} <= keys


# Keep this test last in the module: it stops servers.s3.
def test_sigterm_exits_0_and_drops_its_bucket(servers: Servers) -> None:
    """SIGTERM stops the server with exit code 0 after it dropped the bucket it created.

    Other tests may leave buckets of their own on the shared moto server: exactly one (the
    server's) must disappear.
    """
    with httpx.Client(verify=TLS, timeout=10) as s3:
        before = _buckets(s3, servers.moto_url)
        code = servers.s3.stop()
        after = _buckets(s3, servers.moto_url)
    assert code == 0
    assert after < before and len(before - after) == 1, (before, after)
