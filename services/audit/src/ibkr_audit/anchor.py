"""The tail anchor of the log: the durable consumer's acknowledged position in the stream.

The hash chain proves that the rows it holds follow each other, but not that none were cut off
the end: deleting the newest rows leaves a shorter, valid chain. JetStream is an independent
record that a database user cannot edit: audit acknowledges a message only after the transaction
holding its row (or dead letter, or the row of an earlier copy) committed, so every message up to
the consumer's ack floor must be found in the database. `read_anchor` takes the newest acknowledged
messages still in the stream (up to `ANCHOR_DEPTH`), as audit would store them; the store then
checks that each is there and, for the row that came from that very message, that it is unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ibkr_audit.chain import ChainRow
from ibkr_audit.consumer import parse_message
from ibkr_audit.store import DeadLetterItem

log = logging.getLogger("ibkr_audit.anchor")

#: How many of the newest acknowledged messages verify looks for in the database.
ANCHOR_DEPTH = 32
#: At most this many stream sequences are tried (messages may have been removed by the stream's limits).
MAX_LOOKUPS = 4 * ANCHOR_DEPTH


@dataclass(frozen=True, slots=True)
class AckedMessage:
    """A message the consumer acknowledged, and what audit stores for it."""

    stream_seq: int
    expected: ChainRow | DeadLetterItem


@dataclass(frozen=True, slots=True)
class StreamAnchor:
    """The consumer's ack floor and the newest acknowledged messages at or below it, newest first."""

    stream: str
    durable: str
    ack_floor: int
    messages: tuple[AckedMessage, ...]


async def read_anchor(js: JetStreamContext, stream: str, durable: str, depth: int = ANCHOR_DEPTH) -> StreamAnchor:
    """The anchor as JetStream holds it now (raises when the consumer or the server is not reachable)."""
    info = await js.consumer_info(stream, durable)
    floor = info.ack_floor.stream_seq if info.ack_floor else 0
    messages: list[AckedMessage] = []
    seq = floor
    lookups = 0
    while seq > 0 and len(messages) < depth and lookups < MAX_LOOKUPS:
        lookups += 1
        try:
            msg = await js.get_msg(stream, seq=seq)
        except NotFoundError:  # removed by the stream's limits (max_age) or deleted: nothing to check
            seq -= 1
            continue
        item, _ = parse_message(msg.subject or "", msg.data or b"", seq)
        messages.append(AckedMessage(seq, item))
        seq -= 1
    return StreamAnchor(stream, durable, floor, tuple(messages))
