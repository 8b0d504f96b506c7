"""What a person's NATS connection may do: the public commands and events of the connections they own.

Built from the subject catalogue only. A person may publish the public commands of each connection they
own (`ibkr.<conn>.<command>`, never `bridge.*`, never events, never another connection), subscribe to its
events (`ibkr.<conn>.events.>`) and to their own reply inbox (`inbox_prefix(user_id)`), nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ibkr_common.connections import Connection
from ibkr_common.subjects import Subjects
from ibkr_contract.subjects import COMMANDS

#: Commands a person may send on a connection they own: every public one but the operator's `audit.verify`
#: (it walks the whole log of every connection).
USER_COMMANDS = tuple(c for c in COMMANDS if c != "audit.verify")


def inbox_prefix(user_id: str) -> str:
    """The reply inbox prefix of a person (nats-py's `inbox_prefix`): no one else may subscribe under it.

    A hash, because a user id may hold `.`, which NATS reads as a token separator."""
    return "_INBOX_u" + hashlib.sha256(user_id.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Grant:
    """The subjects a user JWT allows."""

    user_id: str
    connections: tuple[str, ...]
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def owned(user_id: str, connections: Iterable[Connection]) -> tuple[str, ...]:
    """The ids of the connections `user_id` owns (the bootstrap one when it is `IBKR_USER_ID`)."""
    return tuple(sorted(c.id for c in connections if c.user_id == user_id))


def grant_for(user_id: str, connections: Iterable[Connection]) -> Grant:
    """The grant of `user_id`: commands and events of their own connections, and their inbox."""
    mine = owned(user_id, connections)
    publish = tuple(Subjects(conn).command(name) for conn in mine for name in USER_COMMANDS)
    subscribe = (*(Subjects(conn).events_all for conn in mine), f"{inbox_prefix(user_id)}.>")
    return Grant(user_id=user_id, connections=mine, publish=publish, subscribe=subscribe)
