"""`batchconf serve`: the emulator under uvicorn, on a socket bound before anything is printed.

`--state store` keeps every file and batch record, and each batch's progress, in the S3 store
named by `--s3-endpoint-url` (bucket `--s3-bucket`, default `batchconf-state`), so that a
server killed mid-batch and started again on the same store resumes its batches, and two
servers on one store serve the same files and batches (`emulator.model.store_repository`).
SIGTERM (like SIGINT) stops accepting requests, lets the driver finish its tick (the work in
hand is committed), releases the server's leases so another server takes over at once, and
exits 0.
"""

from __future__ import annotations

import argparse
import errno
import gc
import os
import secrets
import signal
import socket
import sys

__all__ = ["KEYS_ENV", "BindError", "add_state_arguments", "bind", "serve"]

KEYS_ENV = "BATCHCONF_API_KEYS"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class BindError(Exception):
    """The address cannot be bound; the message says why and what to change."""


#: Container allocations between young collections while serving (CPython's default: 700).
_YOUNG_THRESHOLD = 20_000


def _settle_collector() -> None:
    """Tune the cyclic garbage collector for a long-running server (this process is ours).

    Everything built at start-up (botocore's service models, moto, the app: about half a
    million objects) lives as long as the server: `gc.freeze()` takes it out of every later
    collection, so that a full collection scans the batches' records only. And a served
    create leaves a dozen containers behind (its record) while the requests around it
    allocate many more that die young: at the default threshold the collector ran about
    once every 50 creates. Measured under wrk (POST /v1/batches, 5 s, 2 cores): time in
    the collector 0.75 s -> 0.3 s, requests/s +5 to 15 %."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_THRESHOLD, older, oldest)


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), as uvicorn would bind it, ready to hand to
    `uvicorn.Server.run(sockets=...)`.

    Binding here rather than in uvicorn means a port in use is known before the banner is
    printed and before a moto server is started, and no one can take the port in between."""
    # uvicorn's own rule: a host with a colon is IPv6; SO_REUSEADDR lets a restart reuse a
    # port still in TIME_WAIT, but never one another socket is listening on.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(f"port {port} on {host} is in use; choose another with --port") from exc
        if exc.errno == errno.EACCES:
            raise BindError(f"port {port} on {host} needs privileges to bind; choose another with --port") from exc
        if exc.errno == errno.EADDRNOTAVAIL:
            raise BindError(
                f"{host} is not an address of this machine; choose another with --host (e.g. 127.0.0.1)"
            ) from exc
        reason = exc.strerror or str(exc)
        raise BindError(f"cannot bind {host} port {port}: {reason}; check --host and --port") from exc
    except OverflowError as exc:  # a port outside 0-65535
        sock.close()
        raise BindError(f"port {port} is not a TCP port (0-65535); choose another with --port") from exc
    return sock


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `batchconf serve` that choose where its state lives."""
    parser.add_argument(
        "--state",
        choices=("memory", "store"),
        default="memory",
        help="where files, batches and their progress live: this process's memory (default), or the S3 store "
        "of --s3-endpoint-url (a restarted server resumes, several servers share it)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=None,
        metavar="S",
        help="--state store: how long a server's claim on a batch lasts unrenewed; another server takes a "
        "batch over this long after its server died (default 10)",
    )


def _keys(args: argparse.Namespace) -> tuple[tuple[str, ...], bool]:
    keys = [k for k in args.api_key if k]
    if not keys:
        keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    if keys:
        return tuple(keys), False
    return ("sk-batchconf-" + secrets.token_hex(16),), True


def serve(args: argparse.Namespace) -> int:
    """Run the emulator under uvicorn until interrupted: exit 0 on SIGINT or SIGTERM, 2 (with
    one message on stderr, and nothing left running) when the address, the profile or an
    option is refused."""
    import uvicorn

    from schemas import ProfileError, UnknownProfileError, load_profile

    from .._clock import RealClock, VirtualClock
    from .._emulator import Emulator
    from .._provider import DEFAULT_LEASE_SECONDS, DEFAULT_WEBHOOK_HOSTS
    from .._timing import TimingModel

    keys, generated = _keys(args)
    timing = TimingModel.quick() if args.progression == "timed" else TimingModel(progression=args.progression)
    changes = {
        name: getattr(args, name)
        for name in ("validation_seconds", "request_seconds", "concurrency", "finalization_seconds")
        if getattr(args, name) is not None
    }
    changes["progression"] = args.progression
    admin_token = os.environ.get(args.admin_token_env) if args.admin_token_env else None
    if args.admin_token_env and not admin_token:
        print(f"batchconf serve: {args.admin_token_env} is not set (--admin-token-env)", file=sys.stderr)
        return 2
    token_generated = False
    if not args.no_admin and admin_token is None and args.host not in _LOOPBACK_HOSTS:
        # Anyone who reaches the server could move its clock or switch on mutations.
        admin_token = secrets.token_urlsafe(24)
        token_generated = True
    state = getattr(args, "state", "memory")
    lease_seconds = getattr(args, "lease_seconds", None)
    if state == "store" and not args.s3_endpoint_url:
        print("batchconf serve: --state store needs a persistent --s3-endpoint-url", file=sys.stderr)
        return 2
    if lease_seconds is not None and (state != "store" or lease_seconds <= 0):
        print("batchconf serve: --lease-seconds needs --state store and a number > 0", file=sys.stderr)
        return 2
    try:
        sock = bind(args.host, args.port)
    except BindError as exc:
        print(f"batchconf serve: {exc}", file=sys.stderr)
        return 2
    # --port 0 asks the system for a free port: print and advertise the one it gave.
    port = int(sock.getsockname()[1])
    moto_server = None
    s3_endpoint_url = args.s3_endpoint_url
    try:
        profile = load_profile(args.profile)
        if s3_endpoint_url is None and profile.output.location == "object_storage":
            # The user's bucket must be reachable by the user's own client (boto3, the aws
            # CLI): a moto server on 127.0.0.1 stands in for the provider's Object Storage.
            from moto.server import ThreadedMotoServer

            moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto_server.start()
            host, moto_port = moto_server.get_host_and_port()
            s3_endpoint_url = f"http://{host}:{moto_port}"
        timing = timing.updated(changes)
        clock = RealClock(args.time_scale) if args.clock == "real" else VirtualClock()
        backend = None
        if args.backend_url:
            from .._backend import HttpBackend

            key = os.environ.get(args.backend_api_key_env) if args.backend_api_key_env else None
            backend = HttpBackend(args.backend_url, api_key=key)
        emu = Emulator(
            profile,
            api_keys=keys,
            timing=timing,
            clock=clock,
            seed=args.seed,
            s3_endpoint_url=s3_endpoint_url,
            s3_bucket=args.s3_bucket,
            backend=backend,
            webhook_hosts=tuple(args.webhook_allow_host) or DEFAULT_WEBHOOK_HOSTS,
            public_url=f"http://{args.host}:{port}",
            result_naming=args.result_naming,
            admin=not args.no_admin,
            admin_token=admin_token,
            state=state,
            lease_seconds=lease_seconds or DEFAULT_LEASE_SECONDS,
        )
    except (ValueError, UnknownProfileError, ProfileError, NotImplementedError) as exc:
        sock.close()
        if moto_server is not None:
            moto_server.stop()
        print(f"batchconf serve: {exc}", file=sys.stderr)
        return 2
    root = f"http://{args.host}:{port}"
    for surface in emu.provider.surfaces:
        what = f"{surface.profile.name} profile" if surface is emu.provider.main else f"{emu.profile.name}'s compatible"
        print(
            f"batchconf emulator ({what}, {surface.dialect.name} dialect) on {root}{surface.profile.http.base_path}",
            flush=True,
        )
    store = emu.store
    where = store.endpoint_url or "in-process (moto)"
    if moto_server is not None:
        where += " (a moto server started for this run; region us-east-1, any credentials)"
    print(f"S3: {where}; the emulator's own bucket {store.bucket}", flush=True)
    if state == "store":
        provider = emu.provider
        print(
            f"state: in the store under s3://{store.bucket}/state/ (server {provider.server_id}, "
            f"leases of {provider.lease_seconds:g} s)",
            flush=True,
        )
    if emu.batch_principals:
        name, application = emu.batch_principals
        print(f"batch principal: {name} ({application}); a bucket policy must allow it", flush=True)
    if emu.webhooks is not None:
        print(f"webhooks to: {', '.join(emu.webhooks.allowed_hosts)}", flush=True)
    if args.no_admin:
        print("admin routes: off", flush=True)
    elif token_generated:
        # The operator must learn it once; it is printed nowhere else.
        print(f"admin routes need X-Batchconf-Admin-Token: {admin_token}", flush=True)
    elif admin_token is not None:
        print(f"admin routes need the token in {args.admin_token_env}", flush=True)
    if generated:
        # The one time a key is printed: the operator asked for none and must learn this one.
        print(f"API key (generated): {keys[0]}", flush=True)
    else:
        print(f"API keys: {len(keys)} configured", flush=True)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into a normal exit so
    # the `finally` below releases storage (a bucket on a shared S3 must not be left behind).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _settle_collector()
    server = uvicorn.Server(
        uvicorn.Config(emu.app, host=args.host, port=port, log_level=args.log_level, lifespan="off")
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn re-raises SIGINT after its graceful shutdown (uvicorn.run swallows it too)
    finally:
        sock.close()
        emu.close()
        if moto_server is not None:
            moto_server.stop()
    if not server.started:
        print("batchconf serve: uvicorn could not start (its log above says why)", file=sys.stderr)
        return 2
    return 0
