"""A person's grant follows the connections they own: their open NATS clients are dropped when that set changes.

The callout grants a person's NATS client the connections they own when it connects, and the user JWT holds
that grant for its lifetime (an hour). So when the registry's directory says the set changed (a connection
registered for them, removed, or handed to another owner), authz asks the NATS server to close each client
connection the person was granted, with the system account's request `$SYS.REQ.SERVER.<server_id>.KICK`
(body `{"cid": <client id>}`; nats-server 2.10 and later). The client library reconnects on its own, the
server asks the callout again, and the new JWT holds the new set: a connection registered after the person
connected becomes reachable, and one that is no longer theirs stops being so, without anyone reconnecting
by hand. The server id and client id come with each authorization request (`server_id.id`,
`client_info.id`), so the kick reaches the server the client is on.

authz makes that request as a user of the system account allowed to publish nothing but the kick (its
replies come back to its own inbox, `KICK_INBOX_PREFIX`): deploy/nats.conf's `authz-kick`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError

from ibkr_common.connections import Connection
from ibkr_common.subjects import server_kick

log = logging.getLogger("ibkr_authz.kick")

#: The reply inbox prefix of the system account user (nats.conf lets it subscribe there and nowhere else).
KICK_INBOX_PREFIX = "_INBOX_authz-kick"
KICK_TIMEOUT_S = 2.0
#: Client connections remembered per person (the oldest is forgotten first; it expires with its JWT).
CLIENTS_PER_PERSON = 64
#: People remembered at most (the one who logged in longest ago is forgotten first).
PEOPLE = 10_000


@dataclass(frozen=True)
class ClientRef:
    """One client connection on one NATS server: what a kick names."""

    server_id: str
    client_id: int


class OpenClients:
    """The client connections each person was granted (from the authorization requests), newest last.

    Bounded: `per_person` clients per person and `people` people; a client forgotten here is no longer
    kicked but still loses its grant when its JWT expires. A kicked client is forgotten (it comes back
    under a new client id, noted by its new authorization request)."""

    def __init__(self, per_person: int = CLIENTS_PER_PERSON, people: int = PEOPLE) -> None:
        self.per_person = per_person
        self.people = people
        self._clients: OrderedDict[str, list[ClientRef]] = OrderedDict()

    def add(self, user_id: str, ref: ClientRef) -> None:
        """Note that `user_id` was granted the client `ref`."""
        held = [r for r in self._clients.pop(user_id, []) if r != ref]
        self._clients[user_id] = [*held[-(self.per_person - 1):], ref] if self.per_person > 1 else [ref]
        while len(self._clients) > self.people:
            self._clients.popitem(last=False)

    def of(self, user_id: str) -> tuple[ClientRef, ...]:
        """The clients `user_id` was granted and that were not kicked since."""
        return tuple(self._clients.get(user_id, ()))

    def discard(self, user_id: str, ref: ClientRef) -> None:
        """Forget one client of `user_id`."""
        held = [r for r in self._clients.get(user_id, ()) if r != ref]
        if held:
            self._clients[user_id] = held
        else:
            self._clients.pop(user_id, None)


def people_affected(before: Connection | None, after: Connection | None) -> set[str]:
    """The people whose set of owned connections a directory change alters (a change of anything but the
    owner, such as the gateway or the accounts, alters no one's grant)."""
    owners = {c.user_id for c in (before, after) if c is not None}
    if before is not None and after is not None and before.user_id == after.user_id:
        return set()
    return owners


class Kicker:
    """Closes a person's open client connections through the system account's kick request."""

    def __init__(self, url: str, clients: OpenClients, *, timeout_s: float = KICK_TIMEOUT_S) -> None:
        self._url = url
        self.clients = clients
        self.timeout_s = timeout_s
        self._nc: Client | None = None
        self._tasks: set[asyncio.Task[int]] = set()
        self.kicked: list[tuple[str, ClientRef]] = []  # the last 100 kicks, newest last (tests, diagnosis)
        self.totals = {"closed": 0, "gone": 0, "unanswered": 0}  # kicks by outcome since start (metrics)

    @property
    def connected(self) -> bool:
        """Whether the system account connection is up (readiness)."""
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        """Connect as the system account user (fails when the server refuses it: a wrong password, say)."""
        self._nc = await nats.connect(self._url, name="ibkr-authz-kick", inbox_prefix=KICK_INBOX_PREFIX,
                                      connect_timeout=5, max_reconnect_attempts=-1, reconnect_time_wait=1)

    async def stop(self) -> None:
        """Finish the kicks under way, then close the connection."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._nc is not None:
            await self._nc.close()
            self._nc = None

    async def on_change(self, before: Connection | None, after: Connection | None) -> None:
        """A `ConnectionDirectory` listener: kick the people whose owned set changed (in the background, so
        the directory goes on; the directory holds the change already, so their reconnection sees it)."""
        for user_id in sorted(people_affected(before, after)):
            if self.clients.of(user_id):
                task = asyncio.create_task(self.kick_person(user_id), name=f"kick-{user_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def kick_person(self, user_id: str) -> int:
        """Close every client connection of `user_id`; the number closed."""
        refs = self.clients.of(user_id)
        results = await asyncio.gather(*(self.kick(user_id, ref) for ref in refs))
        closed = sum(results)
        log.info("grant of %s changed: %d of %d NATS client connections closed to reconnect", user_id, closed,
                 len(refs))
        return closed

    async def kick(self, user_id: str, ref: ClientRef) -> bool:
        """Close one client connection; True when the server closed it. A client the server no longer has is
        forgotten; one the request did not reach (no answer) is kept, for the next change to try again."""
        if self._nc is None:
            return False
        try:
            msg = await self._nc.request(server_kick(ref.server_id), json.dumps({"cid": ref.client_id}).encode(),
                                         timeout=self.timeout_s)
        except (TimeoutError, NatsError) as exc:
            log.warning("kick of %s's client %d on %s not answered: %s", user_id, ref.client_id, ref.server_id,
                        type(exc).__name__)
            self.totals["unanswered"] += 1
            return False
        self.clients.discard(user_id, ref)
        error = json.loads(msg.data).get("error")
        if error:  # "no such client or leafnode id": it left already
            log.debug("kick of %s's client %d: %s", user_id, ref.client_id, error.get("description"))
            self.totals["gone"] += 1
            return False
        self.totals["closed"] += 1
        self.kicked = [*self.kicked[-99:], (user_id, ref)]
        return True
