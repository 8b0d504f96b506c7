"""The keeper through NATS with the real gateway-bridge and cpsim (its clock moved in step)."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.connected


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_tickles_keep_the_session_and_status_answers_from_memory_fast(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        first = await stack.events.wait_for("authenticated")
        await stack.events.wait_for("tickled")
        timings, reply = [], {}
        for _ in range(30):
            start = time.perf_counter()
            reply = await stack.request("session.status")
            timings.append((time.perf_counter() - start) * 1000)

    result = reply["result"]
    assert result["authenticated"] is True and result["connected"] is True and result["competing"] is False
    assert result["expires_at"] and result["last_tickle_at"] and result["status"] == "authenticated"
    assert first["payload"]["expires_at"] == result["expires_at"]
    assert statistics.median(timings) < 10, timings
    assert stack.calls("/tickle") >= 1


async def test_idle_timeout_when_tickles_stop_says_login_required_after_restart(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("tickled")
    stack.advance(6 * 60)  # the keeper is stopped: nobody tickles for 6 minutes
    mark = len(stack.events.items)

    async with stack.keeper(sqlite_url) as keeper:
        event = await stack.events.wait_for("unauthenticated", since=mark)
        status = (await stack.request("session.status"))["result"]
        await asyncio.sleep(2)
        later = stack.events.types(mark)
        assert keeper.state.reason == "login_required"

    assert event["payload"]["reason"] == "login_required"
    assert status["authenticated"] is False and status["reason"] == "login_required"
    assert "authenticated" not in later  # resumed as authenticated: not announced again
    assert later.count("unauthenticated") == 1  # said once


async def test_expiring_fires_once_at_the_warning_minute(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    stack.clock_to(utc("2026-11-24T03:59:57"))  # 22:59:57 New York; midnight is 05:00 UTC
    stack.sim("POST", "/login")

    async with stack.keeper(sqlite_url, session_warning_minutes=60):
        authenticated = await stack.events.wait_for("authenticated")
        expiring = await stack.events.wait_for("expiring")
        await asyncio.sleep(2)

    assert authenticated["payload"]["expires_at"] == "2026-11-24T05:00:00Z"
    occurred = datetime.fromisoformat(expiring["occurred_at"])
    assert utc("2026-11-24T04:00:00") <= occurred < utc("2026-11-24T04:00:05")  # the clock is read every second
    assert expiring["payload"]["minutes_left"] == 60
    assert len(stack.events.of("expiring")) == 1


@pytest.mark.parametrize(
    ("region", "midnight"),
    [
        ("us", "2026-11-01T04:00:00Z"),  # 00:00 EDT, the night the clocks go back
        ("us", "2026-11-02T05:00:00Z"),  # 00:00 EST, the first midnight after the change
        ("eu", "2026-10-25T23:00:00Z"),  # 00:00 CET, the first midnight after the change of 2026-10-25
        ("asia", "2026-11-01T16:00:00Z"),  # 00:00 HKT: no DST
    ],
)
async def test_regional_midnight_expires_the_session_and_it_is_reopened(
    make_stack, sqlite_url, region, midnight
) -> None:
    stack = await make_stack(region=region)
    at = datetime.fromisoformat(midnight)
    stack.clock_to(at - timedelta(seconds=5))
    stack.sim("POST", "/login")

    async with stack.keeper(sqlite_url):
        first = await stack.events.wait_for("authenticated")
        expired = await stack.events.wait_for("expired")
        mark = stack.events.items.index(expired)
        again = await stack.events.wait_for("authenticated", since=mark)

    assert first["payload"]["expires_at"] == midnight
    assert at <= datetime.fromisoformat(expired["occurred_at"]) < at + timedelta(seconds=5)
    assert expired["payload"]["expiry_basis"] == "regional_reset"
    assert again["payload"]["expiry_basis"] == "max_age"  # reopened by ssodh/init: 24 h from the login
    assert "unauthenticated" not in stack.events.types()  # inside the reset window: no alarm


async def test_competing_with_wait_announces_and_leaves_the_other_session(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url, on_competing="wait"):
        await stack.events.wait_for("authenticated")
        stack.sim("POST", "/competing", {"competing": True})
        event = await stack.events.wait_for("competing")
        await asyncio.sleep(2)
        status = (await stack.request("session.status"))["result"]

    assert event["payload"]["action"] == "wait" and event["payload"]["policy"] == "wait"
    assert status["competing"] is True and status["authenticated"] is False
    assert stack.calls("/ssodh/init") == 0


async def test_competing_with_takeover_announces_and_takes_the_session_back(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url, on_competing="takeover"):
        await stack.events.wait_for("authenticated")
        stack.sim("POST", "/competing", {"competing": True})
        event = await stack.events.wait_for("competing")
        mark = stack.events.items.index(event)
        await stack.events.wait_for("authenticated", since=mark)
        status = (await stack.request("session.status"))["result"]

    assert event["payload"]["action"] == "takeover"
    assert status["authenticated"] is True and status["competing"] is False
    assert stack.calls("/ssodh/init") >= 1


async def test_maintenance_window_is_quiet_then_what_persists_is_announced(make_stack, sqlite_url) -> None:
    stack = await make_stack(idle_timeout=10**6)
    stack.clock_to(utc("2026-11-24T04:44:57"))  # 23:44:57 New York, a Monday night
    stack.sim("POST", "/login")

    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        started = await stack.events.wait_for("maintenance_started")
        stack.sim("POST", "/faults", {"path_glob": "*tickle*", "status": 503, "count": 10_000})
        await asyncio.sleep(3)
        inside = (await stack.request("session.status"))["result"]
        quiet = stack.events.types()
        stack.clock_to(utc("2026-11-24T06:44:58"))  # 01:44:58: past midnight, the window ends at 01:45
        ended = await stack.events.wait_for("maintenance_ended")
        mark = stack.events.items.index(ended)
        down = await stack.events.wait_for("gateway_down", since=mark)
        stack.sim("DELETE", "/faults")
        await stack.events.wait_for("gateway_up", since=mark)
        await stack.events.wait_for("authenticated", since=mark)

    assert started["payload"]["window"] == "us daily 23:45-01:45 America/New_York"
    assert inside["in_maintenance"] is True
    assert "gateway_down" not in quiet and "unauthenticated" not in quiet
    assert "503" in down["payload"]["detail"]


async def test_gateway_killed_and_restarted_is_down_then_up_with_a_full_check(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        stack.stop_gateway()
        down = await stack.events.wait_for("gateway_down")
        status = (await stack.request("session.status"))["result"]
        stack.start_gateway()
        mark = stack.events.items.index(down)
        await stack.events.wait_for("gateway_up", since=mark)
        back = await stack.events.wait_for("authenticated", since=mark)

    assert "GATEWAY_UNAVAILABLE" in down["payload"]["detail"]
    assert status["status"] == "gateway_down" and status["authenticated"] is False
    assert back["payload"]["authenticated"] is True
    assert stack.calls("/iserver/auth/status") >= 1  # the full status check after it answered again


async def test_garbage_from_the_gateway_is_gateway_down_with_detail(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        stack.sim("POST", "/faults", {"path_glob": "*tickle*", "status": 200, "html": True, "count": 10_000})
        down = await stack.events.wait_for("gateway_down")
        stack.sim("DELETE", "/faults")
        await stack.events.wait_for("gateway_up")

    assert "HTML" in down["payload"]["detail"]


async def test_logout_logs_out_at_the_gateway_and_stays_quiet(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        reply = await stack.request("session.logout")
        await stack.events.wait_for("logged_out")
        at_gateway = stack.sim("GET", "/state")["session"]
        await asyncio.sleep(2.5)
        status = (await stack.request("session.status"))["result"]
        quiet = stack.events.types()
        stack.sim("POST", "/login")
        await stack.events.wait_for("authenticated", since=len(stack.events.items) - 1)

    assert reply == {"ok": True, "result": {"logged_out": True}}
    assert at_gateway["sso"] is False and at_gateway["ended_reason"] == "logout"
    assert status["status"] == "logged_out" and status["authenticated"] is False
    assert "unauthenticated" not in quiet


async def test_a_keeper_started_after_the_login_predicts_from_the_gateways_login_time(make_stack, sqlite_url) -> None:
    # Login at 22:00 New York; the midnight reset ends the brokerage session; the keeper starts at 05:00.
    stack = await make_stack(idle_timeout=8 * 3600, start_at=utc("2026-11-24T03:00:00"))
    stack.clock_to(utc("2026-11-24T10:00:00"))
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        deadline = time.monotonic() + 20
        status = (await stack.request("session.status"))["result"]
        while status["expiry_basis"] != "max_age" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            status = (await stack.request("session.status"))["result"]

    assert utc(status["login_at"][:19]) == utc("2026-11-24T03:00:00"), status
    assert status["expires_at"].startswith("2026-11-25T03:00:00"), status  # 24 h after the login
    assert status["expiry_basis"] == "max_age"


async def test_a_logout_the_gateway_does_not_confirm_is_an_error_not_logged_out(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        stack.sim("POST", "/faults", {"path_glob": "*logout*", "status": 200, "body": {"status": False}, "count": 1})
        reply = await stack.request("session.logout")
        status = (await stack.request("session.status"))["result"]

    assert reply["ok"] is False and reply["error"]["code"] == "GATEWAY_UNAVAILABLE", reply
    assert status["status"] != "logged_out"
    assert "logged_out" not in stack.events.types()


async def test_reauthenticate_reopens_a_lost_brokerage_session(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url, reauth_backoff_s=600.0, reauth_backoff_max_s=600.0):
        await stack.events.wait_for("authenticated")
        stack.sim("POST", "/login", {"brokerage": False})  # SSO only: the brokerage session is not open
        await stack.events.wait_for("unauthenticated")
        reply = await stack.request("session.reauthenticate")

    assert reply["ok"] is True
    assert reply["result"]["authenticated"] is True and reply["result"]["status"] == "authenticated"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_restart_resumes_state_from_session_tracking(make_stack, sqlite_url, request, backend) -> None:
    database_url = sqlite_url if backend == "sqlite" else request.getfixturevalue("database_url")
    stack = await make_stack()
    async with stack.keeper(database_url, session_warning_minutes=24 * 60) as first:
        await stack.events.wait_for("expiring")  # warned_for is written
        await stack.events.wait_for("tickled")
        await asyncio.sleep(0.3)
        known = first.status()
    row = await read_tracking(database_url, stack.conn)
    mark = len(stack.events.items)

    async with stack.keeper(database_url, session_warning_minutes=24 * 60) as second:
        resumed = second.status()
        await asyncio.sleep(2.5)
        after_restart = stack.events.types(mark)

    assert row["status"] == "authenticated" and row["authenticated"] is True
    assert row["expires_at"] == known.expires_at and row["last_tickle_at"] is not None
    assert row["warned_for"] == known.expires_at and row["user_id"] == "local"
    assert resumed.status == "authenticated" and resumed.expires_at == known.expires_at
    assert set(after_restart) == {"tickled"}  # neither authenticated nor expiring a second time


async def read_tracking(database_url: str, conn: str) -> dict[str, object]:
    from ibkr_common.db.engine import make_engine, make_sessionmaker, user_transaction
    from ibkr_common.db.models import SessionTracking

    engine = make_engine(database_url)
    try:
        async with user_transaction(make_sessionmaker(engine), "local") as session:
            row = await session.get(SessionTracking, conn)
            assert row is not None
            return {c: getattr(row, c) for c in ("status", "authenticated", "expires_at", "last_tickle_at",
                                                  "warned_for", "user_id", "reason")}
    finally:
        await engine.dispose()


async def test_failed_reauthentication_backs_off_then_says_login_required_once(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url, reauth_backoff_s=0.5, reauth_backoff_max_s=30.0, reauth_max_attempts=3):
        await stack.events.wait_for("authenticated")
        stack.sim("POST", "/faults", [{"path_glob": "*reauthenticate*", "status": 500, "count": 1000},
                                      {"path_glob": "*ssodh/init*", "status": 500, "count": 1000}])
        stack.sim("POST", "/login", {"brokerage": False})  # SSO only: the brokerage session must be reopened
        first = await stack.events.wait_for("unauthenticated")
        required = await stack.events.wait_for("unauthenticated", since=stack.events.items.index(first) + 1)
        await asyncio.sleep(3)
        events = stack.events.types()

    assert first["payload"]["reason"] == "session_lost"
    assert required["payload"]["reason"] == "login_required" and required["payload"]["attempts"] >= 3
    assert events.count("unauthenticated") == 2 and "gateway_down" not in events
    assert 3 <= stack.calls("/iserver/reauthenticate") <= 6  # paced by the backoff, not every tickle


async def test_bad_requests_get_validation_errors_not_silence(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        extra = await stack.request("session.status", {"unexpected": 1})
        raw = await stack.nc.request(f"ibkr.{stack.conn}.session.logout", b"{not json", timeout=10)
        still = await stack.request("session.status")

    assert extra["ok"] is False and extra["error"]["code"] == "VALIDATION_ERROR"
    assert b"VALIDATION_ERROR" in raw.data
    assert still["result"]["authenticated"] is True  # the bad logout did nothing


async def test_no_bridge_leads_to_ssodh_init(make_stack, sqlite_url) -> None:
    stack = await make_stack()
    async with stack.keeper(sqlite_url):
        await stack.events.wait_for("authenticated")
        mark = len(stack.events.items)
        stack.sim("POST", "/faults", {"path_glob": "*tickle*", "status": 400, "count": 1,
                                      "body": {"error": "Bad Request: no bridge", "statusCode": 400}})
        lost = await stack.events.wait_for("unauthenticated", since=mark)
        back = await stack.events.wait_for("authenticated", since=stack.events.items.index(lost))

    assert lost["payload"]["reason"] == "no_bridge"
    assert back["payload"]["authenticated"] is True
    assert stack.calls("/iserver/auth/ssodh/init") == 1


async def test_sso_expires_counting_down_to_the_24_hour_cap_becomes_the_end(make_stack, sqlite_url) -> None:
    stack = await make_stack(idle_timeout=10**6)  # cpsim logged in at 09:00 New York; its token outlives the cap
    cap = datetime.fromisoformat(stack.sim("GET", "/state")["session"]["login_at"]) + timedelta(hours=24)
    stack.clock_to(cap - timedelta(minutes=4))  # the keeper starts late: only AUTH_TIME or ssoExpires tell

    async with stack.keeper(sqlite_url, session_warning_minutes=60):
        first = await stack.events.wait_for("authenticated")
        expiring = await stack.events.wait_for("expiring")
        stack.clock_to(cap - timedelta(seconds=2))
        expired = await stack.events.wait_for("expired")
        await asyncio.sleep(1.5)

    assert first["payload"]["expiry_basis"] != "sso_expires"  # one reading of ssoExpires is not believed
    assert expiring["payload"]["expiry_basis"] in ("max_age", "sso_expires")  # AUTH_TIME, or the countdown
    assert abs(datetime.fromisoformat(expiring["payload"]["expires_at"]) - cap) < timedelta(seconds=2)
    assert expiring["payload"]["minutes_left"] <= 4
    assert expired["payload"]["expiry_basis"] in ("max_age", "sso_expires")
    assert len(stack.events.of("expiring")) == 1
