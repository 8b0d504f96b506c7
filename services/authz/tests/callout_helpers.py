"""Helpers of the authz tests: the nats.conf of a server with the auth callout, connecting as a person, waiting."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import nats
from ibkr_authz.kick import KICK_INBOX_PREFIX

PASSWORDS = {"alice": "alice-" + secrets.token_hex(8), "bob": "bob-" + secrets.token_hex(8),
             "operator": "op-" + secrets.token_hex(8), "carol": "carol-" + secrets.token_hex(8)}
SERVICE_PASSWORDS = {"authz": secrets.token_hex(12), "console": secrets.token_hex(12),
                     "authz-kick": secrets.token_hex(12)}


def callout_conf(port: int, store: Path, issuer: str) -> str:
    """A nats.conf with static service users, the system account's kick user (as deploy/nats.conf has it)
    and the auth callout for everyone else."""
    return f"""
listen: 127.0.0.1:{port}
jetstream {{ store_dir: "{store}" }}
accounts {{
  SYS: {{ users: [ {{ user: authz-kick, password: "{SERVICE_PASSWORDS['authz-kick']}",
                     permissions: {{ publish: ["$SYS.REQ.SERVER.*.KICK"],
                                     subscribe: ["{KICK_INBOX_PREFIX}.>"] }} }} ] }}
}}
system_account: SYS
authorization {{
  users: [
    {{ user: authz, password: "{SERVICE_PASSWORDS['authz']}",
       permissions: {{ publish: ["ibkr_admin.connections.directory"],
                       subscribe: ["$SYS.REQ.USER.AUTH", "ibkr.*.events.connection.>", "_INBOX.>"],
                       allow_responses: true }} }}
    {{ user: console, password: "{SERVICE_PASSWORDS['console']}" }}
  ]
  auth_callout {{ issuer: {issuer}, auth_users: [authz, console, authz-kick] }}
}}
"""


def url(hostport: str, user: str, password: str) -> str:
    return f"nats://{user}:{password}@{hostport}"


async def connect(hostport: str, user: str, password: str, errors: list[str] | None = None,
                  **options: Any) -> nats.NATS:
    """Connect as `user`; the server's errors (permission violations) go to `errors`. No reconnection unless
    `options` ask for it."""
    async def on_error(exc: Exception) -> None:
        if errors is not None:
            errors.append(str(exc))

    options.setdefault("allow_reconnect", False)
    return await nats.connect(url(hostport, user, password), connect_timeout=5, error_cb=on_error, **options)


async def eventually(check: Any, what: str, timeout: float = 10.0) -> None:
    """Wait until `check()` is true (the server's errors and deliveries arrive asynchronously)."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not seen within {timeout} s: {what}")


def noter(into: list[str]) -> Any:
    """A subscription callback that notes each message's subject in `into`."""

    async def note(msg: Any) -> None:
        into.append(msg.subject)

    return note


async def serve(console: nats.NATS, subject: str, seen: list[str]) -> None:
    """The console's stand-in for compliance: answers `subject` and notes each request."""

    async def answer(msg: Any) -> None:
        seen.append(msg.subject)
        await msg.respond(b'{"ok": true, "result": {}}')

    await console.subscribe(subject, cb=answer)
