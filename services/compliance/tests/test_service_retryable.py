"""Retryable, never final: one id is one order body (CONFLICT otherwise), state too old to decide on is a
retryable error with nothing recorded, and a burst decided on one snapshot holds buying power for each
order sent since it. On SQLite and PostgreSQL; compliance in-process against the real other services.

Its own module: it changes the simulated account's buying power (and resets cpsim before and after).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ibkr_compliance.ledger import Ledger
from ibkr_compliance.reservations import Reservations
from ibkr_testkit.processes import start_service

from .compliance_stack import (
    ACCOUNT,
    OPTIONS_LEVEL,
    Stack,
    acknowledged,
    call,
    coid,
    order,
    stack,
    start_compliance,
    synced,
)

pytestmark = [pytest.mark.connected, pytest.mark.timeout(180)]
_fresh = itertools.count(1)
__all__ = ["stack", "start_compliance"]


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """A fresh ledger per test (the orders of another test would hold buying power here)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("make_database")(f"retry{next(_fresh)}"))


@pytest.fixture
def fresh_sim(stack: Stack) -> Iterator[Stack]:
    stack.sim("POST", "/reset")
    yield stack
    stack.sim("POST", "/reset")


async def _row(url: str, stack: Stack, cid: str) -> Any:
    from ibkr_common.db.engine import make_engine

    engine = make_engine(url)
    try:
        ledger = Ledger(engine, None, None, stack.conn, "compliance")  # type: ignore[arg-type]
        return await ledger.get(cid)
    finally:
        await engine.dispose()


async def test_a_reused_id_with_another_body_is_conflict_and_the_same_body_gets_the_first_result(
    nats_client: Any, stack: Stack, start_compliance: Any, ledger_url: str
) -> None:
    cid = coid("body")
    async with start_compliance(ledger_url):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        first = await call(nats_client, stack, "orders.submit", order(cid))
        other = await call(nats_client, stack, "orders.submit", order(cid, quantity="2"))
        same = await call(nats_client, stack, "orders.submit", order(cid))
    assert first["ok"] and first["result"]["status"] == "submitted", first
    assert other["ok"] is False and other["error"]["code"] == "CONFLICT", other
    assert other["error"]["retryable"] is False and other["error"]["details"][0]["field"] == "quantity"
    assert same["ok"] and same["result"]["order_id"] == first["result"]["order_id"]
    assert len(stack.received(cid)) == 1


async def test_a_snapshot_older_than_the_rule_allows_is_retryable_and_the_same_id_is_decided_afresh(
    nats_client: Any, stack: Stack, start_compliance: Any, ledger_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("max_snapshot_age_s: 5\n")
    cid = coid("stale")
    sync_worker = next(p for p in stack.processes if p.module == "ibkr_sync_worker")
    async with start_compliance(ledger_url, rules_file=rules, state_cache_ms=0):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        assert (await call(nats_client, stack, "orders.check", order(coid("look"))))["ok"]  # compliance reads it
        sync_worker.kill()  # compliance keeps its last good copy, which grows old
        await asyncio.sleep(5.5)
        stale = await call(nats_client, stack, "orders.submit", order(cid))
        recorded = await _row(ledger_url, stack, cid)
        stack.processes[stack.processes.index(sync_worker)] = await asyncio.to_thread(
            start_service, "ibkr_sync_worker", stack.env(f"sqlite+aiosqlite:///{tmp_path}/sync.db",
                                                         IBKR_SYNC_INTERVAL="600000",
                                                         IBKR_OPTIONS_LEVELS=f"{ACCOUNT}={OPTIONS_LEVEL}"))
        for _ in range(3):  # as a client does on a retryable answer: the same id again, on a fresh sync (a loaded
            await synced(nats_client, stack)  # machine can take the 5 s of this rule between the sync and the decision)
            fresh = await call(nats_client, stack, "orders.submit", order(cid))
            if fresh["ok"] or fresh["error"]["code"] != "STATE_UNAVAILABLE":
                break
    error = stale["error"]
    assert stale["ok"] is False and error["code"] == "STATE_UNAVAILABLE" and error["retryable"] is True, stale
    assert "STALE_ACCOUNT_DATA" in [r["code"] for r in error["details"]["reasons"]]
    age = Decimal(error["details"]["computed"]["snapshot_age_s"])
    assert Decimal("5") < age < Decimal("60"), age  # its real age, never a placeholder
    assert recorded is None  # nothing final for the id
    assert fresh["ok"] and fresh["result"]["status"] == "submitted", fresh.get("error", {}).get("message")
    assert len(stack.received(cid)) == 1


async def test_a_burst_decided_on_one_snapshot_cannot_together_exceed_its_buying_power(
    nats_client: Any, fresh_sim: Stack, start_compliance: Any, ledger_url: str
) -> None:
    stack = fresh_sim
    stack.sim("POST", f"/accounts/{ACCOUNT}", {"buying_power": 1000, "available_funds": 1000})
    ids = [coid("burst") for _ in range(8)]
    async with start_compliance(ledger_url, state_cache_ms=30_000):
        await acknowledged(nats_client, stack)
        await synced(nats_client, stack)
        replies = await asyncio.gather(*(call(nats_client, stack, "orders.submit", order(c)) for c in ids))
    sent = [r for r in replies if r["ok"]]
    blocked = [r for r in replies if not r["ok"]]
    # LMT BUY 1 @ 230 each: four fit into 1000 (fewer when a sync in between already shows some of them
    # working, which the synced buying power and the working orders both count); the rest are held back
    assert 1 <= len(sent) <= 4, replies
    assert all(r["error"]["code"] == "COMPLIANCE_BLOCKED" for r in blocked), blocked
    assert all("INSUFFICIENT_BUYING_POWER" in [x["code"] for x in r["error"]["details"]["reasons"]]
               for r in blocked)
    assert sum(len(stack.received(c)) for c in ids) == len(sent)


def test_reservations_hold_an_order_until_the_snapshot_shows_it() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    held = Reservations(timedelta(seconds=120))
    reserve = {"symbol": "AAPL", "side": "buy", "qty": "1", "order_type": "limit", "limit_price": "230",
               "position_effect": "auto"}
    assert held.hold(ACCOUNT, "a", reserve, now) and not held.hold(ACCOUNT, "a", reserve, now)
    assert not held.hold(ACCOUNT, "b", None, now)
    assert [h.client_order_id for h in held.pending(ACCOUNT, now, (), None)] == ["a"]
    assert held.pending(ACCOUNT, now, {"a"}, None) == ()  # the synced orders show it
    assert held.pending(ACCOUNT, now, (), "a") == ()  # not against itself
    assert held.pending(ACCOUNT, now + timedelta(seconds=121), (), None) == ()
