"""One compliance process for every connection: a second connection, added at run time by the registry's event,
trades on its own gateway only, with its own settings, halt switch and owner.

Two connections side by side: the bootstrap one (`IBKR_CONNECTION`, alice's orders as in the other tests) on
the run's cpsim, and a second one, owned by bob, on a cpsim of its own. One gateway-bridge, sync-worker and
session-keeper serve both (as in a deployment: one set of services for every connection); they and compliance
(in-process) start knowing the bootstrap connection only, and learn the second one when a test announces it as
the registry would (`ibkr_testkit.connections.announce_connection`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from faststream import TestApp
from sqlalchemy import select

from cpsim.market import expiries
from cpsim.testing import start_cpsim
from ibkr_common.db.engine import make_engine, make_sessionmaker
from ibkr_common.db.models import ComplianceDecisionLog, OrderLedger, TradingControl
from ibkr_compliance.app import build_app
from ibkr_testkit.connections import announce_connection, connection_view

from .compliance_stack import (
    AAPL,
    ACCOUNT,
    OPTIONS_LEVEL,
    USER,
    Stack,
    acknowledged,
    call,
    coid,
    compliance_settings,
    order,
    start_processes,
    synced,
    wait_until,
)

pytestmark = [pytest.mark.connected, pytest.mark.timeout(240)]
#: The second connection's owner.
BOB = "bob"


@dataclass
class Pair:
    """The bootstrap connection `a` and the second connection `b`, one events stream over both."""

    a: Stack
    b: Stack

    def view(self, *, enabled: bool = True, accounts: list[dict[str, Any]] | None = None) -> Any:
        """The registry's view of `b` (owned by bob, on its own gateway)."""
        return connection_view(self.b.conn, user_id=BOB, gateway_url=self.b.cpsim_url, enabled=enabled,
                               accounts=accounts)


@pytest.fixture(scope="module")
def pair(nats_url: str, cpsim_url: str, run_names: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    first, second = f"{run_names.conn}-m1", f"{run_names.conn}-m2"
    stream, subjects = f"{run_names.stream}_M", f"ibkr.{first}.events.>,ibkr.{second}.events.>"
    sim = start_cpsim()
    a = Stack(first, stream, subjects, nats_url, cpsim_url)
    b = Stack(second, stream, subjects, nats_url, sim.url)  # no processes of its own: a's serve it
    try:
        a.sim("POST", "/reset")
        b.sim("POST", "/reset")
        # one set of services for both connections: the bootstrap one from the environment, the second one
        # once announced (and only it: IBKR_SERVE_CONNECTIONS)
        start_processes(a, tmp_path_factory.mktemp("pair"), serve=re.escape(second),
                        IBKR_OPTIONS_LEVELS=f"{ACCOUNT}={OPTIONS_LEVEL}")
        yield Pair(a, b)
    finally:
        a.stop()
        sim.stop()


@pytest.fixture
def start(pair: Pair) -> Any:
    """Factory: compliance in-process on the bootstrap connection `a`, over both connections' events."""

    @asynccontextmanager
    async def run(database_url: str, **extra: Any) -> Any:
        async with TestApp(build_app(compliance_settings(pair.a, database_url, **extra))):
            yield

    return run


async def served(nc: Any, stack: Stack) -> dict[str, Any]:
    """compliance's answer to `status.compliance` on the stack's connection."""
    return await call(nc, stack, "status.compliance", {}, timeout=5)


async def announce(nc: Any, pair: Pair, kind: str = "registered", **view: Any) -> None:
    """Publish the registry's event for `b` and wait until compliance serves it (or dropped it)."""
    await announce_connection(nc, pair.view(**view) if kind != "removed" else pair.view(), kind)  # type: ignore[arg-type]

    async def applied() -> bool:
        reply = await served(nc, pair.b)
        return (reply["ok"] is False) if kind == "removed" else bool(reply["ok"])

    await wait_until(applied, 10, f"compliance to apply connection.{kind}")


async def _rows(url: str, model: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            return list((await session.execute(select(model))).scalars())
    finally:
        await engine.dispose()


def bobs(client_order_id: str, **changes: Any) -> dict[str, Any]:
    """The standard order, bob's."""
    return order(client_order_id, user_id=BOB, **changes)


async def test_a_connection_added_at_run_time_trades_on_its_own_gateway_only(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    async with start(sqlite_url):
        before = await served(nats_client, pair.b)
        await announce(nats_client, pair)
        status = await served(nats_client, pair.b)
        await acknowledged(nats_client, pair.a)
        await acknowledged(nats_client, pair.b, BOB)
        await synced(nats_client, pair.a)
        await synced(nats_client, pair.b)
        on_b, on_a = coid("on-b"), coid("on-a")
        reply_b = await call(nats_client, pair.b, "orders.submit", bobs(on_b))
        reply_a = await call(nats_client, pair.a, "orders.submit", order(on_a))
    assert before["ok"] is False and before["error"]["code"] == "NOT_FOUND", before
    assert status["result"]["connection"] == pair.b.conn and status["result"]["details"] == {"halted": False}
    assert reply_b["ok"] and reply_b["result"]["status"] == "submitted", reply_b
    assert reply_a["ok"] and reply_a["result"]["status"] == "submitted", reply_a
    # each order reached its own connection's gateway, and only that one
    assert (len(pair.b.received(on_b)), pair.a.received(on_b)) == (1, [])
    assert (len(pair.a.received(on_a)), pair.b.received(on_a)) == (1, [])
    rows = {r.client_order_id: r for r in await _rows(sqlite_url, OrderLedger)}
    # each ledger row is its connection's, written under the connection's owner
    assert (rows[on_b].connection, rows[on_b].user_id, rows[on_b].order_id) == (
        pair.b.conn, BOB, reply_b["result"]["order_id"])
    assert rows[on_a].connection == pair.a.conn and rows[on_a].user_id != BOB


async def test_a_connection_not_enabled_blocks_every_order_and_sends_nothing(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    async with start(sqlite_url):
        await announce(nats_client, pair, enabled=False)
        await acknowledged(nats_client, pair.b, BOB)
        await synced(nats_client, pair.b)
        blocked = coid("off")
        submit = await call(nats_client, pair.b, "orders.submit", bobs(blocked))
        check = await call(nats_client, pair.b, "orders.check", bobs(coid("off")))
        await announce(nats_client, pair, "enabled")
        after = coid("on")

        async def enabled() -> bool:
            reply = await call(nats_client, pair.b, "orders.check", bobs(coid("probe")))
            return bool(reply["ok"]) and reply["result"]["decision"] != "block"

        await wait_until(enabled, 10, "the enabled connection to allow orders")
        allowed = await call(nats_client, pair.b, "orders.submit", bobs(after))
    assert submit["ok"] is False and submit["error"]["code"] == "COMPLIANCE_BLOCKED", submit
    reasons = submit["error"]["details"]["reasons"]
    assert [r["code"] for r in reasons] == ["CONNECTION_NOT_ENABLED"], reasons
    assert reasons[0]["severity"] == "block" and "verify the connection" in reasons[0]["message"]
    assert check["ok"] and check["result"]["decision"] == "block"
    assert pair.b.received(blocked) == []
    ledger = {r.client_order_id: r.status for r in await _rows(sqlite_url, OrderLedger)}
    assert ledger[blocked] == "blocked"
    assert allowed["ok"] and allowed["result"]["status"] == "submitted", allowed
    assert len(pair.b.received(after)) == 1


async def test_the_registry_options_level_of_the_account_decides_an_option_order(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    today = datetime.now(UTC).date()
    expiry = next(d for d in expiries(today) if (d - today).days > 20)
    decisions: dict[str, dict[str, Any]] = {}

    async def long_call(stack: Stack, user: str) -> dict[str, Any]:
        """A long call far out of the money (cheap) on the stack's gateway, `user`'s."""
        chain = await call(nats_client, stack, "contracts.option_chain",
                           {"underlying_conid": AAPL, "month": f"{expiry:%b%y}".upper()})
        strike = max(Decimal(str(k)) for k in chain["result"]["calls"])
        option = {"symbol": "AAPL", "sec_type": "OPT", "expiry": expiry.isoformat(), "strike": str(strike),
                  "right": "C"}
        return order(coid("opt"), user_id=user, instrument=option, limit_price="0.50")

    async with start(sqlite_url):
        await announce(nats_client, pair)
        for stack, user in ((pair.a, USER), (pair.b, BOB)):
            await acknowledged(nats_client, stack, user)
            await synced(nats_client, stack)
        decisions["bootstrap"] = (await call(nats_client, pair.a, "orders.check",
                                             await long_call(pair.a, USER)))["result"]
        bobs_call = await long_call(pair.b, BOB)
        decisions["unset"] = (await call(nats_client, pair.b, "orders.check", bobs_call))["result"]
        for level in (1, 2):  # a long call needs level 2 at IBKR
            await announce_connection(nats_client, pair.view(accounts=[{"account_id": ACCOUNT, "options_level":
                                                                        level}]), "updated")

            async def applied(level: int = level) -> bool:
                reply = await call(nats_client, pair.b, "orders.check", {**bobs_call, "client_order_id": coid()})
                decisions[f"registry {level}"] = reply["result"]
                return bool(reply["result"]["computed"].get("options_level") == level)

            await wait_until(applied, 10, f"the registry's level {level}")
        status = await call(nats_client, pair.b, "compliance.status", {"user_id": BOB, "account_id": ACCOUNT})
    # the bootstrap connection: the synced level (the sync-worker's IBKR_OPTIONS_LEVELS) decides, as before
    assert decisions["bootstrap"]["computed"]["options_level"] == OPTIONS_LEVEL
    assert decisions["bootstrap"]["decision"] in ("allow", "warn"), decisions["bootstrap"]["reasons"]
    # a registry connection takes its levels from the registry only (IBKR_OPTIONS_LEVELS is the bootstrap's):
    # without the setting the level is unknown, and an option order is refused
    unset = decisions["unset"]
    assert unset["computed"]["options_level"] is None and unset["decision"] == "block", unset
    # with it, the registry's level decides
    low = decisions["registry 1"]
    assert low["decision"] == "block" and "OPTIONS_LEVEL_INSUFFICIENT" in [r["code"] for r in low["reasons"]], low
    enough = decisions["registry 2"]
    assert enough["decision"] in ("allow", "warn"), enough["reasons"]
    assert status["ok"] and status["result"]["options_level"] == 2, status


async def test_live_orders_need_the_registrys_live_enablement_of_the_account(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    codes: dict[bool, list[str]] = {}
    async with start(sqlite_url):
        await announce(nats_client, pair)
        await synced(nats_client, pair.b)
        paper = await call(nats_client, pair.b, "orders.check", bobs(coid("lv"), environment="live"))
        for enabled in (False, True):  # the same connection, now live (registry view), its account switched
            live = connection_view(pair.b.conn, user_id=BOB, gateway_url=pair.b.cpsim_url, environment="live",
                                   accounts=[{"account_id": ACCOUNT, "live_enabled": enabled}])
            await announce_connection(nats_client, live, "updated")

            async def applied(enabled: bool = enabled) -> bool:
                reply = await call(nats_client, pair.b, "orders.check", bobs(coid("lv"), environment="live"))
                if not reply["ok"]:  # the connection's lane is being rebuilt for its new settings: ask again
                    codes[enabled] = [reply["error"]["code"]]
                    return False
                codes[enabled] = [r["code"] for r in reply["result"]["reasons"]]
                evaluated = "opening" in reply["result"]["computed"]  # by the engine: the lane is live now
                return evaluated and ("LIVE_TRADING_NOT_ENABLED" in codes[enabled]) != enabled

            await wait_until(applied, 10, f"live_enabled={enabled} to apply")
    # the environment of an order is checked against its connection's (the registry's), first
    assert paper["ok"] and [r["code"] for r in paper["result"]["reasons"]] == ["ENVIRONMENT_MISMATCH"], paper
    assert paper["result"]["computed"] == {}, paper  # decided on the connection alone, no state gathered
    assert "LIVE_TRADING_NOT_ENABLED" in codes[False], codes
    assert "LIVE_TRADING_NOT_ENABLED" not in codes[True], codes


async def test_another_users_order_is_forbidden_never_decided_recorded_or_sent(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    async with start(sqlite_url):
        await announce(nats_client, pair)
        await acknowledged(nats_client, pair.b, BOB)
        await synced(nats_client, pair.b)
        stolen = coid("stolen")
        submit = await call(nats_client, pair.b, "orders.submit", order(stolen))  # alice's, on bob's connection
        check = await call(nats_client, pair.b, "orders.check", order(coid("peek")))
        status = await call(nats_client, pair.b, "compliance.status", {"user_id": USER, "account_id": ACCOUNT})
        ack = await call(nats_client, pair.b, "compliance.acknowledge",
                         {"user_id": USER, "disclosures": ["options_risk"]})
        # the bootstrap connection keeps today's behaviour: any user_id, as before (ownership not switched on)
        other = await call(nats_client, pair.a, "orders.check", order(coid("any"), user_id="mallory"))
    for reply in (submit, check, status, ack):
        assert reply["ok"] is False and reply["error"]["code"] == "FORBIDDEN", reply
        assert reply["error"]["details"] == [{"field": "user_id", "message": "not the connection's owner"}]
    assert pair.b.received(stolen) == [] and pair.a.received(stolen) == []
    assert [r for r in await _rows(sqlite_url, OrderLedger) if r.client_order_id == stolen] == []
    logged = [r.client_order_id for r in await _rows(sqlite_url, ComplianceDecisionLog)]
    assert stolen not in logged and not any(c.startswith("peek") for c in logged if c)
    assert other["ok"], other


async def test_with_ownership_switched_on_the_bootstrap_connection_is_its_owners_only(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    async with start(sqlite_url, user_id=USER, enforce_ownership=True):
        await acknowledged(nats_client, pair.a)
        await synced(nats_client, pair.a)
        foreign = await call(nats_client, pair.a, "orders.check", order(coid("own"), user_id="mallory"))
        own = await call(nats_client, pair.a, "orders.check", order(coid("own")))
    assert foreign["ok"] is False and foreign["error"]["code"] == "FORBIDDEN", foreign
    assert own["ok"] and own["result"]["decision"] in ("allow", "warn"), own


async def test_halting_one_connection_leaves_the_other_trading(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    async with start(sqlite_url):
        await announce(nats_client, pair)
        await acknowledged(nats_client, pair.a)
        await acknowledged(nats_client, pair.b, BOB)
        await synced(nats_client, pair.a)
        await synced(nats_client, pair.b)
        halted = await call(nats_client, pair.b, "trading.halt", {"reason": "bob's connection only"})
        on_b = await call(nats_client, pair.b, "orders.submit", bobs(coid("hb")))
        on_a = await call(nats_client, pair.a, "orders.submit", order(coid("ha")))
        status_a, status_b = await served(nats_client, pair.a), await served(nats_client, pair.b)
        await call(nats_client, pair.b, "trading.resume", {"reason": "over"})
        resumed = await call(nats_client, pair.b, "orders.check", bobs(coid("hr")))
    assert halted["ok"] and halted["result"]["halted"] is True
    assert on_b["ok"] is False and on_b["error"]["code"] == "TRADING_HALTED", on_b
    assert on_a["ok"] and on_a["result"]["status"] == "submitted", on_a
    assert (status_a["result"]["details"], status_b["result"]["details"]) == ({"halted": False}, {"halted": True})
    switches = {r.connection: r for r in await _rows(sqlite_url, TradingControl)}
    assert pair.a.conn not in switches and switches[pair.b.conn].user_id == BOB
    assert resumed["ok"] and resumed["result"]["decision"] in ("allow", "warn"), resumed


async def test_a_removed_connection_answers_not_found(
    nats_client: Any, pair: Pair, start: Any, sqlite_url: str
) -> None:
    async with start(sqlite_url):
        await announce(nats_client, pair)
        await acknowledged(nats_client, pair.b, BOB)
        await synced(nats_client, pair.b)
        first = await call(nats_client, pair.b, "orders.check", bobs(coid("rm")))
        await announce(nats_client, pair, "removed")
        gone = coid("gone")
        submit = await call(nats_client, pair.b, "orders.submit", bobs(gone))
        halt = await call(nats_client, pair.b, "trading.halt", {"reason": "x"})
        still = await call(nats_client, pair.a, "orders.check", order(coid("still")))
    assert first["ok"], first
    for reply in (submit, halt):
        assert reply["ok"] is False and reply["error"]["code"] == "NOT_FOUND", reply
        assert reply["error"]["details"] == [{"field": "connection", "message": "not registered"}]
    assert pair.b.received(gone) == []
    assert still["ok"], still
