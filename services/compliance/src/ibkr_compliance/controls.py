"""Disclosure acknowledgments (per user and environment) and the connection's halt switch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.db.engine import user_transaction
from ibkr_common.db.models import ComplianceAcknowledgment, TradingControl
from ibkr_common.envelope import EventEnvelope
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import OutboxRelay, stage_event
from ibkr_compliance.disclosures import Disclosure


class Controls:
    """Acknowledgments are written under the acknowledging user; the halt row under the connection's owner."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        relay: OutboxRelay | None,
        connection: str,
        owner: str,
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.relay = relay
        self.connection = connection
        self.owner = owner
        self.halt_cache_s = 2.0
        self._halted: tuple[float, bool] | None = None
        self._complete: set[tuple[str, str, frozenset[tuple[str, str]]]] = set()

    async def acknowledged(self, user_id: str, environment: str) -> set[tuple[str, str]]:
        """(disclosure id, version) pairs the user acknowledged in `environment`."""
        async with user_transaction(self.sessions, user_id) as session:
            rows = await session.execute(
                select(ComplianceAcknowledgment.disclosure_id, ComplianceAcknowledgment.version).where(
                    ComplianceAcknowledgment.user_id == user_id,
                    ComplianceAcknowledgment.environment == environment,
                )
            )
            return {(d, v) for d, v in rows.all()}

    async def acknowledge(
        self, user_id: str, environment: str, disclosures: Sequence[Disclosure], now: datetime
    ) -> list[dict[str, object]]:
        """Store acknowledgments (an existing one of the same version is kept, with its time)."""
        result: list[dict[str, object]] = []
        for disclosure in disclosures:
            try:
                async with user_transaction(self.sessions, user_id) as session:
                    session.add(
                        ComplianceAcknowledgment(
                            user_id=user_id, environment=environment, disclosure_id=disclosure.id,
                            version=disclosure.version, acknowledged_at=now,
                        )
                    )
                at = now
            except IntegrityError:
                async with user_transaction(self.sessions, user_id) as session:
                    at = (
                        await session.execute(
                            select(ComplianceAcknowledgment.acknowledged_at).where(
                                ComplianceAcknowledgment.user_id == user_id,
                                ComplianceAcknowledgment.environment == environment,
                                ComplianceAcknowledgment.disclosure_id == disclosure.id,
                                ComplianceAcknowledgment.version == disclosure.version,
                            )
                        )
                    ).scalar_one()
            result.append({"id": disclosure.id, "version": disclosure.version, "environment": environment,
                           "acknowledged_at": at})
        return result

    def forget_halt(self) -> None:
        """Read the halt switch from the database next time (a trading.halted/resumed event came)."""
        self._halted = None

    async def halted(self) -> bool:
        """Whether new opening orders are halted on this connection (cached 2 s; events and this
        service's own changes refresh it at once)."""
        cached = self._halted
        if cached is not None and self._halt_known():
            return cached[1]
        async with user_transaction(self.sessions, self.owner) as session:
            row = await session.get(TradingControl, self.connection)
            value = bool(row is not None and row.halted)
        self._halted = (time.monotonic(), value)
        return value

    async def halt_state(self) -> dict[str, Any] | None:
        """The halt's reason, who and when (`HaltState`), None while trading runs; read from the database
        (and remembered as the switch's state)."""
        async with user_transaction(self.sessions, self.owner) as session:
            row = await session.get(TradingControl, self.connection)
            state = None if row is None or not row.halted else {
                "reason": row.reason, "changed_by": row.changed_by, "changed_at": row.updated_at}
        self._halted = (time.monotonic(), state is not None)
        return state

    def _halt_known(self) -> bool:
        return self._halted is not None and time.monotonic() - self._halted[0] < self.halt_cache_s

    def known(self, user_id: str, environment: str, required: frozenset[tuple[str, str]]) -> bool:
        """Whether `halted` and `has_all` would answer from what is remembered, without the database."""
        return self._halt_known() and (user_id, environment, required) in self._complete

    async def has_all(self, user_id: str, environment: str, required: frozenset[tuple[str, str]]) -> bool:
        """Whether the user acknowledged every (id, version) in `required`; a yes is remembered
        (acknowledgments are never withdrawn; a new version is a new pair)."""
        key = (user_id, environment, required)
        if key in self._complete:
            return True
        if required <= await self.acknowledged(user_id, environment):
            self._complete.add(key)
            return True
        return False

    async def set_halted(
        self, halted: bool, reason: str, changed_by: str | None, now: datetime, event: EventEnvelope
    ) -> None:
        """Persist the switch and stage its event in the same transaction."""
        async with user_transaction(self.sessions, self.owner) as session:
            row = await session.get(TradingControl, self.connection)
            if row is None:
                session.add(
                    TradingControl(connection=self.connection, user_id=self.owner, halted=halted, reason=reason,
                                   changed_by=changed_by, updated_at=now)
                )
            else:
                row.halted, row.reason, row.changed_by, row.updated_at = halted, reason, changed_by, now
            stage_event(session, self.publisher, event)
        self._halted = (time.monotonic(), halted)
        if self.relay is not None:
            self.relay.wake()
