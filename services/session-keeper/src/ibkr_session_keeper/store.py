"""`ibkr_session_tracking`: the keeper's state, written with its events (outbox) in one transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.clock import Clock
from ibkr_common.db.engine import user_transaction
from ibkr_common.db.models import SessionTracking
from ibkr_common.envelope import EventEnvelope
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import stage_event
from ibkr_session_keeper.state import SessionState


class TrackingStore:
    """Reads and writes one connection's row of `ibkr_session_tracking` (under the owner's user_id)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, connection: str, user_id: str,
                 clock: Clock) -> None:
        self.sessions = sessions
        self.connection = connection
        self.user_id = user_id
        self.clock = clock

    async def load(self) -> SessionState | None:
        """The state last written, or None when this connection was never tracked."""
        async with user_transaction(self.sessions, self.user_id) as session:
            row = await session.get(SessionTracking, self.connection)
            if row is None:
                return None
            state = SessionState(
                status=row.status,  # type: ignore[arg-type]
                authenticated=row.authenticated, connected=row.connected, competing=row.competing,
                in_maintenance=row.in_maintenance, login_at=row.login_at, last_tickle_at=row.last_tickle_at,
                expires_at=row.expires_at, warned_for=row.warned_for, reason=row.reason,
            )
            # authenticated_at (when the brokerage session last opened) is not stored: left unknown, the
            # prediction takes the next regional midnight after now (never yesterday's, already past).
            if row.status == "expired":
                state.expired_for = row.expires_at
            return state

    async def save(self, state: SessionState, publisher: EventPublisher, events: list[EventEnvelope]) -> None:
        """Write the state and stage `events` in the same transaction."""
        now = self.clock.now()
        async with user_transaction(self.sessions, self.user_id) as session:
            row = await session.get(SessionTracking, self.connection)
            if row is None:
                row = SessionTracking(connection=self.connection, user_id=self.user_id)
                session.add(row)
            row.status = state.status
            row.authenticated, row.connected, row.competing = state.authenticated, state.connected, state.competing
            row.in_maintenance = state.in_maintenance
            row.login_at, row.last_tickle_at, row.expires_at = state.login_at, state.last_tickle_at, state.expires_at
            row.warned_for = state.warned_for
            row.reason = state.reason[:255] if state.reason else None
            row.updated_at = now
            for envelope in events:
                stage_event(session, publisher, envelope)
