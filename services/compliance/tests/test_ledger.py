"""The order ledger on SQLite and PostgreSQL: each write is one committed transaction of the ledger
row, its decision log row and its events' outbox rows, or nothing."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger, OutboxEvent
from ibkr_common.db.types import RawJson
from ibkr_common.events import EventPublisher
from ibkr_common.subjects import Subjects
from ibkr_compliance.ledger import DecisionRecord, DuplicateOrder, Ledger

pytestmark = pytest.mark.connected
OWNER = "ledger-owner"
ACCOUNT = "DU1234567"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
SNAPSHOT = RawJson('{"account":{"account_id":"DU1234567"},"flags":{"halted":false}}')
_ids = itertools.count(1)


class _JetStream:
    """The publisher's sender over nats-py's JetStream (these tests stage events; nothing relays them)."""

    def __init__(self, nats_client: Any) -> None:
        self.js = nats_client.jetstream()

    async def publish(self, message: Any, subject: str, headers: dict[str, str] | None = None, *,
                      stream: str | None = None, timeout: float | None = None) -> Any:
        return await self.js.publish(subject, message, headers=headers, stream=stream, timeout=timeout or 2.0)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "database_url"))


@pytest.fixture
async def ledger(url: str, nats_client: Any) -> Any:
    """A ledger on the database, on a connection of its own (the PostgreSQL database is the run's)."""
    connection = f"ledger{next(_ids)}"
    publisher = EventPublisher(_JetStream(nats_client), subjects=Subjects(connection), stream="UNUSED",
                               source="compliance", environment="paper")
    engine = make_engine(url)
    yield Ledger(engine, publisher, None, connection, OWNER)
    await engine.dispose()


def _record(client_order_id: str) -> DecisionRecord:
    return DecisionRecord(account_id=ACCOUNT, client_order_id=client_order_id, action="submit", decision="allow",
                          reason_codes=["OK"], regime="intraday_margin", order={"side": "BUY"},
                          state_snapshot=SNAPSHOT, latency_ms=Decimal("1.25"), decided_at=NOW)


async def _stored(ledger: Ledger, model: Any, *where: Any) -> list[Any]:
    """Rows as another engine sees them (committed), under the owner."""
    engine = make_engine(ledger.engine.url.render_as_string(hide_password=False))
    try:
        async with user_transaction(make_sessionmaker(engine), OWNER) as session:
            return list((await session.execute(select(model).where(*where))).scalars().all())
    finally:
        await engine.dispose()


async def test_open_commits_the_row_its_decision_and_its_events_together_or_nothing(ledger: Ledger) -> None:
    cid = "open-1"
    events = [ledger.publisher.build("compliance.allowed", {"n": n}, account_id=ACCOUNT, correlation_id=cid)
              for n in (1, 2)]
    await ledger.open(_record(cid), status="pending", request={"q": Decimal("1")}, result={"status": "pending"},
                      events=events)
    with pytest.raises(DuplicateOrder):
        await ledger.open(_record(cid), status="pending", request={}, result={},
                          events=[ledger.publisher.build("compliance.allowed", account_id=ACCOUNT)])

    [row] = await _stored(ledger, OrderLedger, OrderLedger.connection == ledger.connection)
    assert (row.client_order_id, row.status, row.user_id, row.request) == (cid, "pending", OWNER, {"q": "1"})
    [decision] = await _stored(ledger, ComplianceDecisionLog, ComplianceDecisionLog.connection == ledger.connection)
    assert decision.state_snapshot == json.loads(SNAPSHOT) and decision.latency_ms == Decimal("1.25")
    outbox = await _stored(ledger, OutboxEvent, OutboxEvent.subject.like(f"ibkr.{ledger.connection}.%"))
    assert sorted(json.loads(o.envelope)["payload"]["n"] for o in outbox) == [1, 2]  # not the duplicate's


async def test_record_changes_a_row_still_in_the_expected_status_and_commits_its_events(ledger: Ledger) -> None:
    cid = "record-1"
    await ledger.open(_record(cid), status="pending", request={}, result={"status": "pending"}, events=[])
    submitted = ledger.publisher.build("orders.submitted", {"order_id": "42"}, account_id=ACCOUNT,
                                       correlation_id=cid)
    later = datetime(2026, 12, 1, 15, 0, 1, tzinfo=UTC)
    assert await ledger.record(cid, status="submitted", result={"status": "submitted"}, now=later,
                               order_id="42", events=[submitted], expected="pending")
    assert not await ledger.record(cid, status="unknown", result={}, now=later, expected="pending",
                                   events=[ledger.publisher.build("orders.submitted", account_id=ACCOUNT)])

    entry = await ledger.get(cid)
    assert entry is not None and (entry.status, entry.order_id, entry.updated_at) == ("submitted", "42", later)
    assert await ledger.by_order_id(ACCOUNT, "42") == entry
    assert await ledger.unresolved(later, later - NOW) == []
    outbox = await _stored(ledger, OutboxEvent, OutboxEvent.subject.like(f"ibkr.{ledger.connection}.%"))
    assert [json.loads(o.envelope)["payload"] for o in outbox] == [{"order_id": "42"}]


async def test_a_not_sent_row_is_reopened_once_and_holding_rows_are_listed(ledger: Ledger) -> None:
    cid = "reopen-1"
    await ledger.open(_record(cid), status="pending", request={"q": "1"}, result={"status": "pending"}, events=[])
    later = datetime(2026, 12, 1, 15, 0, 5, tzinfo=UTC)
    assert not await ledger.reopen(_record(cid), status="pending", request={"q": "1"}, result={}, events=[])
    assert await ledger.record(cid, status="not_sent", result={"error_code": "GATEWAY_UNAVAILABLE"}, now=later,
                               expected="pending")
    assert await ledger.holding(ACCOUNT, NOW) == []

    again = _record(cid)
    again.decided_at = datetime(2026, 12, 1, 15, 0, 9, tzinfo=UTC)
    event = ledger.publisher.build("compliance.allowed", {"n": 3}, account_id=ACCOUNT, correlation_id=cid)
    assert await ledger.reopen(again, status="pending", request={"q": "1"}, result={"try": 2}, events=[event])
    assert not await ledger.reopen(again, status="pending", request={"q": "1"}, result={"try": 3}, events=[])

    entry = await ledger.get(cid)
    assert entry is not None and (entry.status, entry.result, entry.updated_at) == ("pending", {"try": 2},
                                                                                      again.decided_at)
    assert [e.client_order_id for e in await ledger.holding(ACCOUNT, NOW)] == [cid]
    decisions = await _stored(ledger, ComplianceDecisionLog, ComplianceDecisionLog.connection == ledger.connection)
    assert len(decisions) == 2  # the first attempt's and the reopening's
    outbox = await _stored(ledger, OutboxEvent, OutboxEvent.subject.like(f"ibkr.{ledger.connection}.%"))
    assert [json.loads(o.envelope)["payload"] for o in outbox] == [{"n": 3}]
