"""Fixtures of the authz tests: a real nats-server with the auth callout, and authz running on it.

A nats-server runs with an `auth_callout` block: the authz app (its own static user), its system account
user `authz-kick` and a trusted service user (`console`, standing for the operator console or a trading
app's backend) keep static credentials; everyone else is asked about. Alice owns connection A, Bob owns B
(the registry's events say so). Each test module gets its own server and authz.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from faststream import TestApp
from ibkr_authz.__main__ import new_issuer
from ibkr_authz.app import build_app
from ibkr_authz.settings import AuthzSettings
from ibkr_authz.users import hash_password

from ibkr_common.streams import events_stream_config
from ibkr_common.subjects import all_connections_events
from ibkr_testkit.connections import announce_connection, connection_view
from ibkr_testkit.servers import ManagedProcess, free_port, nats_server_binary, wait_for_port

from .callout_helpers import PASSWORDS, SERVICE_PASSWORDS, callout_conf, connect, url


@pytest.fixture(scope="module")
def issuer() -> tuple[str, str]:
    return new_issuer()


@pytest.fixture(scope="module")
def callout_nats(tmp_path_factory: pytest.TempPathFactory, issuer: tuple[str, str]) -> Iterator[str]:
    """A nats-server with the auth callout configured; yields its host:port."""
    workdir = tmp_path_factory.mktemp("callout-nats")
    port = free_port()
    conf = workdir / "nats.conf"
    conf.write_text(callout_conf(port, workdir / "js", issuer[1]))
    proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=(workdir / "nats.log").open("wb"))
    server = ManagedProcess(url=f"nats://127.0.0.1:{port}", proc=proc, workdir=workdir)
    try:
        wait_for_port("127.0.0.1", port, 15, proc)
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def stack(callout_nats: str, issuer: tuple[str, str], tmp_path_factory: pytest.TempPathFactory,
                run_names: Any) -> AsyncIterator[dict[str, Any]]:
    """authz running on the callout server (kicking through `authz-kick`), the events stream, and
    connections A (alice's), B (bob's)."""
    users = tmp_path_factory.mktemp("authz") / "users.json"
    users.write_text(json.dumps({"users": {u: hash_password(p) for u, p in PASSWORDS.items()}}))
    a, b, boot = f"{run_names.conn}-a", f"{run_names.conn}-b", f"{run_names.conn}-boot"
    console = await connect(callout_nats, "console", SERVICE_PASSWORDS["console"])
    await console.jetstream().add_stream(events_stream_config("IBKR_EVENTS", [all_connections_events()]))
    settings = AuthzSettings(nats_url=url(callout_nats, "authz", SERVICE_PASSWORDS["authz"]), connection=boot,
                             user_id="operator", authz_issuer_seed=issuer[0], authz_users_file=users,
                             authz_kick_nats_url=url(callout_nats, "authz-kick", SERVICE_PASSWORDS["authz-kick"]))
    app = build_app(settings)
    async with TestApp(app):
        for conn, owner in ((a, "alice"), (b, "bob")):
            await announce_connection(console, connection_view(conn, user_id=owner, gateway_url="https://127.0.0.1:1"))
        for _ in range(100):
            if a in app.directory and b in app.directory:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.05)
        yield {"a": a, "b": b, "boot": boot, "console": console, "app": app}
    await console.close()
