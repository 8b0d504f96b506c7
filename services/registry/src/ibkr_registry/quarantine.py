"""The quarantine of deleted connection ids (`ibkr_connection_tombstones`).

NATS's auth callout grants a person the subjects of the connections they own, in a user JWT that lasts an
hour (`USER_JWT_LIFETIME_S`); authz kicks a client when its owner's connections change, but a client authz
no longer remembers keeps its grant until the JWT expires. So a deleted connection id stays reserved for its
last owner for `IBKR_REGISTRY_QUARANTINE_S` (longer than a JWT lives): another user who registers it in that
time gets CONFLICT, and no forgotten grant ever reaches another user's connection. The last owner may
register it again at once (their own old clients reach only their own connection).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ibkr_common.db.engine import reading_all_users
from ibkr_common.db.models import ConnectionTombstone
from ibkr_common.replies import ErrorCode, ServiceError


async def refuse_if_quarantined(session: AsyncSession, connection: str, user_id: str, now: datetime) -> None:
    """CONFLICT (naming `connection`) when another user deleted `connection` less than the quarantine ago.

    Run it in the registering transaction after the new row is flushed: on PostgreSQL the insert waits for a
    delete of the same id still in flight, so this read (a statement after it) sees that delete's tombstone."""
    async with reading_all_users(session):
        held = (await session.execute(
            select(ConnectionTombstone.until).where(ConnectionTombstone.connection == connection,
                                                    ConnectionTombstone.user_id != user_id,
                                                    ConnectionTombstone.until > now))).scalars().all()
    if held:
        until = max(held).isoformat().replace("+00:00", "Z")
        raise ServiceError(
            ErrorCode.CONFLICT,
            f"connection {connection!r} was deleted by another user and is quarantined until {until}: clients "
            "granted it before may still hold that grant, so only its last owner may register it before then",
            [{"field": "connection", "message": f"quarantined until {until} (deleted by another user)"}])


async def drop_own_tombstones(session: AsyncSession, connection: str, user_id: str, now: datetime) -> None:
    """`user_id` registered `connection` again: drop their tombstone of it, and their expired ones (lazy purge;
    Row Level Security lets a user's transaction remove that user's rows alone)."""
    await session.execute(delete(ConnectionTombstone).where(
        ConnectionTombstone.user_id == user_id,
        or_(ConnectionTombstone.connection == connection, ConnectionTombstone.until <= now)))


async def leave_tombstone(session: AsyncSession, connection: str, user_id: str, now: datetime,
                          quarantine_s: float) -> None:
    """`user_id` deleted `connection`: reserve it for them for `quarantine_s` (and purge their expired ones)."""
    await drop_own_tombstones(session, connection, user_id, now)
    session.add(ConnectionTombstone(connection=connection, user_id=user_id, deleted_at=now,
                                    until=now + timedelta(seconds=quarantine_s)))
