"""The store against real databases: batched idempotent upserts, events staged with the rows, reads."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select

from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
from ibkr_common.db.models import OutboxEvent, Position
from ibkr_common.events import EventPublisher
from ibkr_common.service import make_broker
from ibkr_common.settings import CommonSettings
from ibkr_common.subjects import Subjects
from ibkr_sync_worker.normalize import (
    order_from_live,
    position_from_bridge,
)
from ibkr_sync_worker.normalize_account import account_from_summary
from ibkr_sync_worker.store import AccountSnapshot, SyncStore

from .sync_factories import ACCT, live_order, option_position, stock_position, summary

pytestmark = pytest.mark.connected
_databases = itertools.count(1)
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class Counter:
    """Counts INSERT/UPDATE/DELETE statements sent to the database."""

    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.writes += 1


@pytest.fixture(params=["postgresql", "sqlite"])
async def store(request: pytest.FixtureRequest, run_names: Any) -> AsyncIterator[tuple[SyncStore, Counter]]:
    if request.param == "postgresql":
        url = request.getfixturevalue("make_database")(f"sw{next(_databases)}")
    else:
        url = request.getfixturevalue("sqlite_url")
    engine = make_engine(url)
    counter = Counter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    conn = f"{run_names.conn}-st"
    publisher = EventPublisher(make_broker(CommonSettings(connection=conn), "sync-worker"),
                               subjects=Subjects(conn), stream="unused", source="sync-worker", environment="paper")
    yield SyncStore(make_sessionmaker(engine), publisher, connection=conn, user_id="alice", heartbeat_s=300), counter
    await engine.dispose()


def snapshot(positions: list[Any] | None = None, orders: list[Any] | None = None, **summary_kw: Any) -> AccountSnapshot:
    recs = [position_from_bridge(p, ACCT) for p in (positions if positions is not None else
                                                     [stock_position(), option_position()])]
    ords = {o.order_id: (order_from_live(o, ACCT), True) for o in (orders or [live_order("1001")])}
    return AccountSnapshot(ACCT, account_from_summary(summary(**summary_kw)), {"k": 1}, recs, True, ords)


async def outbox_count(s: SyncStore) -> int:
    async with user_transaction(s.sessions, s.user_id) as session:
        return int((await session.execute(select(func.count()).select_from(OutboxEvent))).scalar_one())


async def test_first_sync_inserts_everything_and_stages_its_events(store):
    s, _ = store
    result = await s.apply(snapshot(), T0, {"account": T0, "positions": T0})
    assert result.rows_written == 4  # 2 positions, 1 order, 1 account
    assert result.events == 4 and await outbox_count(s) == 4  # 2 opened, 1 order, account.updated


async def test_second_identical_sync_writes_nothing_and_stages_nothing(store):
    s, counter = store
    await s.apply(snapshot(), T0, {"account": T0, "positions": T0})
    before = counter.writes
    result = await s.apply(snapshot(), T0 + timedelta(seconds=30), {"account": T0, "positions": T0})
    assert result.rows_written == 0 and result.events == 0
    assert counter.writes == before
    assert await outbox_count(s) == 4


async def test_price_move_rewrites_the_row_without_an_event(store):
    s, _ = store
    await s.apply(snapshot(), T0, {})
    moved = snapshot([stock_position(price="171"), option_position()])
    result = await s.apply(moved, T0 + timedelta(seconds=30), {})
    assert result.positions.writes == 1 and result.events == 0
    [aapl] = [p for p in await s.positions(ACCT) if p.conid == 265598]
    assert aapl.market_price == Decimal(171)


async def test_market_figures_are_announced_once_they_drift_past_the_move(store):
    s, _ = store
    s.account_move = Decimal("0.01")
    await s.apply(snapshot(), T0, {})
    small = await s.apply(snapshot(net_liq="117500"), T0 + timedelta(seconds=30), {})
    drifted = await s.apply(snapshot(net_liq="118300"), T0 + timedelta(seconds=60), {})  # 1.1 % from 117,000
    again = await s.apply(snapshot(net_liq="118400"), T0 + timedelta(seconds=90), {})  # 0.1 % from 118,300

    assert small.account.writes == 1 and small.account.event is None
    assert drifted.account.event is not None
    assert {"net_liquidation", "equity_with_loan"} <= set(drifted.account.event.payload["changed"])
    assert again.account.event is None


async def test_closed_position_row_is_removed_and_announced(store):
    s, _ = store
    await s.apply(snapshot(), T0, {})
    result = await s.apply(snapshot([stock_position()]), T0 + timedelta(seconds=30), {})
    assert [e.type for e in result.positions.events] == ["positions.closed"]
    assert [p.conid for p in await s.positions(ACCT)] == [265598]


async def test_rows_belong_to_the_configured_user(store):
    s, _ = store
    await s.apply(snapshot(), T0, {})
    async with user_transaction(s.sessions, "alice") as session:
        owners = set((await session.execute(select(Position.user_id))).scalars())
    assert owners == {"alice"}


async def test_synced_at_is_stamped_again_only_after_the_heartbeat(store):
    s, counter = store
    await s.apply(snapshot(), T0, {"account": T0, "positions": T0})
    later = T0 + timedelta(seconds=301)
    before = counter.writes
    result = await s.apply(snapshot(), later, {"account": later, "positions": later})
    assert result.heartbeat and result.rows_written == 1 and result.events == 0
    assert counter.writes == before + 1
    assert (await s.stored_marks(ACCT))["positions"] == later


async def test_reads_return_views_with_decimals_and_history(store):
    s, _ = store
    await s.apply(snapshot(), T0, {"account": T0})
    account = await s.account(ACCT)
    assert account is not None and account.day_trades_remaining_t4 == 3 and account.cash == Decimal(100000)
    orders = [view for _, view in await s.orders(ACCT, {"submitted"}, 10)]
    assert [o.order_id for o in orders] == ["1001"] and orders[0].status_history[0]["status"] == "submitted"
    assert await s.orders(ACCT, {"filled"}, 10) == []
    option = await s.position(ACCT, 700001)
    assert option is not None and option.right == "C" and option.multiplier == Decimal(100)


async def test_orders_are_read_newest_first_after_a_key_and_keep_their_place_as_they_change(store):
    s, _ = store
    await s.apply(snapshot(orders=[live_order(str(2000 + i)) for i in range(7)]), T0, {})
    first = await s.orders(ACCT, None, 3)
    assert [o.order_id for _, o in first] == ["2006", "2005", "2004"]
    # an order of the next page is filled and a new order arrives: the next page starts where the first ended
    changed = [live_order("2003", status="filled", filled="10"), live_order("2100")]
    await s.apply(snapshot(orders=changed), T0 + timedelta(seconds=30), {})
    rest = await s.orders(ACCT, None, 10, before=first[-1][0])
    assert [o.order_id for _, o in rest] == ["2003", "2002", "2001", "2000"] and rest[0][1].status == "filled"
    assert [o.order_id for _, o in await s.orders(ACCT, {"filled"}, 10)] == ["2003"]
    assert [o.order_id for _, o in await s.orders(ACCT, None, 1)] == ["2100"]


async def test_positions_are_read_by_symbol_then_conid_after_a_key(store):
    s, _ = store
    held = [stock_position(conid=9000 + i, symbol=sym) for i, sym in enumerate(["MSFT", "AAPL", "AAPL", "IBM"])]
    await s.apply(snapshot([*held, stock_position(conid=8999, symbol=None)]), T0, {})
    first = await s.positions(ACCT, None, 2)
    assert [(p.symbol, p.conid) for p in first] == [(None, 8999), ("AAPL", 9001)]
    rest = await s.positions(ACCT, ("AAPL", 9001), 10)
    assert [(p.symbol, p.conid) for p in rest] == [("AAPL", 9002), ("IBM", 9003), ("MSFT", 9000)]
