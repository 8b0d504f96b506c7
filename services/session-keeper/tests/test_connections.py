"""One keeper process keeps the session of every registered connection, picked up and dropped at run time.

Two cpsim gateways behind ONE gateway-bridge serving both connections (as in production: one bridge, one
keeper for every connection); the second connection is announced while the bridge and the keeper run (the
registry's `connection.registered` event), so both learn it at run time, then removed.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from typing import Any

import pytest

from ibkr_testkit.connections import announce_connection, connection_view

pytestmark = pytest.mark.connected


def tracking_rows(sqlite_url: str) -> dict[str, tuple[str, str]]:
    """connection -> (user_id, status) of every row of ibkr_session_tracking."""
    with sqlite3.connect(sqlite_url.split(":///", 1)[1]) as db:
        rows = db.execute("SELECT connection, user_id, status FROM ibkr_session_tracking").fetchall()
    return {conn: (user, status) for conn, user, status in rows}


async def two_stacks(make_stack: Any, run_names: Any) -> tuple[Any, Any]:
    """The bootstrap connection's stack, whose bridge serves both connections (the second once announced), and a
    second gateway without a bridge of its own, on one events stream that covers both."""
    first_conn, second_conn = f"{run_names.conn}-ska", f"{run_names.conn}-skb"
    shared = {"stream": f"{run_names.stream}_SKM",
              "stream_subjects": f"ibkr.{first_conn}.events.>,ibkr.{second_conn}.events.>"}
    first = await make_stack(conn=first_conn, bridge_serves=f"{re.escape(first_conn)}|{re.escape(second_conn)}",
                             **shared)
    second = await make_stack(conn=second_conn, bridge=False, **shared)
    return first, second


async def wait_until(predicate: Any, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_a_connection_announced_at_run_time_gets_its_own_session_and_is_dropped_on_removal(
        make_stack, run_names, sqlite_url) -> None:
    first, second = await two_stacks(make_stack, run_names)
    view = connection_view(second.conn, user_id="bob", gateway_url=second.sim_url, environment="live")
    filter_ = {"serve_connections": f"{run_names.conn}-.*", "user_id": "alice"}
    async with first.keeper(sqlite_url, **filter_) as bootstrap:
        await first.events.wait_for("authenticated")
        unknown = await second.request("session.status", timeout=5)
        assert unknown["ok"] is False and unknown["error"]["code"] == "NOT_FOUND", unknown
        assert second.calls("/tickle") == 0  # nobody keeps its session yet

        await announce_connection(first.nc, view)
        authenticated = await second.events.wait_for("authenticated")
        await second.events.wait_for("tickled")
        status = (await second.request("session.status"))["result"]
        service = (await second.request("status.session-keeper"))["result"]
        rows = tracking_rows(sqlite_url)

        # its own state machine, through the one bridge to its own gateway
        assert status["authenticated"] is True and status["status"] == "authenticated"
        assert second.calls("/tickle") >= 1
        assert service["connection"] == second.conn and service["details"]["status"] == "authenticated"
        assert authenticated["conn"] == second.conn and authenticated["environment"] == "live"
        assert rows[second.conn] == ("bob", "authenticated") and rows[first.conn][0] == "alice"
        assert first.events.of("authenticated")[0]["environment"] == "paper"

        # a logout of the second connection leaves the first alone
        second_mark, first_mark = len(second.events.items), len(first.events.items)
        logout = await second.request("session.logout")
        assert logout["ok"] is True, logout
        await second.events.wait_for("logged_out", since=second_mark)
        assert (await first.request("session.status"))["result"]["authenticated"] is True
        assert "logged_out" not in first.events.types(first_mark)

        # removed: its loop stops, its subjects answer NOT_FOUND, the bootstrap keeps going
        tickled_before = bootstrap.tickles
        await announce_connection(first.nc, view, kind="removed")
        gone = await _gone(second)
        tickles = second.calls("/tickle")
        await asyncio.sleep(2.5)  # over two tickle intervals
        assert second.calls("/tickle") == tickles
        assert gone["error"]["code"] == "NOT_FOUND"
        assert (await second.request("status.session-keeper"))["error"]["code"] == "NOT_FOUND"
        assert (await first.request("session.status"))["result"]["authenticated"] is True
        assert bootstrap.tickles > tickled_before


async def _gone(stack: Any) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        reply = await stack.request("session.status", timeout=5)
        if not reply["ok"] or asyncio.get_running_loop().time() > deadline:
            return reply
        await asyncio.sleep(0.05)


async def test_connections_of_other_runs_are_not_served(make_stack, run_names, sqlite_url) -> None:
    first, second = await two_stacks(make_stack, run_names)
    foreign = connection_view(second.conn, user_id="bob", gateway_url=second.sim_url)
    async with first.keeper(sqlite_url, serve_connections=f"{run_names.conn}-ska") as keeper:
        await first.events.wait_for("authenticated")
        await announce_connection(first.nc, foreign)
        await asyncio.sleep(1.5)
        reply = await second.request("session.status", timeout=5)
        assert reply["error"]["code"] == "NOT_FOUND"
        assert second.calls("/tickle") == 0
        assert keeper.tickles >= 1
