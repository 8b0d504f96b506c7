"""The pure state machine: events on change only, reminders, expiry warning once, backoff, policies."""

from datetime import UTC, datetime, timedelta

from ibkr_session_keeper.state import (
    Observation,
    Policy,
    SessionState,
    logged_out,
    observe,
    on_clock,
    recovery_due,
)
from ibkr_session_keeper.windows import WindowTable, parse_windows

NOON = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 12:00 New York: no window
HEALTHY = Observation("auth", authenticated=True, connected=True)
LOST = Observation("auth", authenticated=False, connected=True)
NO_SESSION = Observation("no_session", detail="the gateway has no session (401)")
COMPETING = Observation("auth", authenticated=False, connected=True, competing=True)
DOWN = Observation("gateway_error", detail="GATEWAY_UNAVAILABLE: gateway not reachable (ConnectError)")


def policy(**kw: object) -> Policy:
    windows = WindowTable(parse_windows("us daily 23:45-01:45 America/New_York"), "us")
    base: dict[str, object] = {"region": "us", "windows": windows}
    return Policy(**(base | kw))  # type: ignore[arg-type]


def types(events: list[tuple[str, dict[str, object]]]) -> list[str]:
    return [kind for kind, _ in events]


def authenticated_at(now: datetime, p: Policy) -> SessionState:
    state = SessionState()
    observe(state, HEALTHY, now, p)
    return state


def test_first_healthy_observation_announces_authenticated_with_expiry() -> None:
    state = SessionState()

    out = observe(state, HEALTHY, NOON, policy())

    assert types(out.events) == ["authenticated"]
    assert state.expires_at == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # midnight New York (EST)
    assert out.changed


def test_a_state_that_persists_is_announced_once() -> None:
    p, state = policy(), SessionState()

    events = [e for i in range(20) for e in observe(state, HEALTHY, NOON + timedelta(seconds=60 * i), p).events]

    assert types(events) == ["authenticated"]


def test_a_persisting_bad_state_is_reminded_at_most_every_reminder_period() -> None:
    p = policy(reminder=timedelta(minutes=5), on_competing="wait")
    state = authenticated_at(NOON, p)
    events = []
    for second in range(0, 11 * 60, 5):
        now = NOON + timedelta(seconds=second)
        events += observe(state, COMPETING, now, p).events + on_clock(state, now, p).events

    competing = [payload for kind, payload in events if kind == "competing"]
    assert len(competing) == 3  # announced, reminded at +5 min and +10 min
    assert [c.get("reminder", False) for c in competing] == [False, True, True]


def test_expiring_fires_once_at_the_warning_minute_with_the_time_left() -> None:
    p = policy(warning=timedelta(minutes=60))
    state = authenticated_at(NOON, p)
    assert state.expires_at is not None
    warn_at = state.expires_at - timedelta(minutes=60)

    before = on_clock(state, warn_at - timedelta(seconds=1), p)
    at = on_clock(state, warn_at, p)
    after = on_clock(state, warn_at + timedelta(minutes=1), p)

    assert types(before.events) == []
    assert types(at.events) == ["expiring"]
    assert at.events[0][1]["minutes_left"] == 60 and at.events[0][1]["seconds_left"] == 3600
    assert types(after.events) == []
    assert state.warned_for == state.expires_at and at.changed


def test_expired_fires_once_when_the_time_comes_and_asks_for_a_status_check() -> None:
    p = policy(windows=WindowTable([], "us"))
    state = authenticated_at(NOON, p)
    assert state.expires_at is not None

    out = on_clock(state, state.expires_at, p)
    again = on_clock(state, state.expires_at + timedelta(seconds=1), p)

    assert types(out.events) == ["expired"]
    assert out.events[0][1]["expiry_basis"] == "regional_reset"
    assert "status_check" in out.actions
    assert types(again.events) == []
    assert state.status == "expired" and not state.authenticated


def test_no_session_says_login_required_once_and_is_never_reminded() -> None:
    p = policy(reminder=timedelta(minutes=5))
    state = authenticated_at(NOON, p)
    events = []
    for minute in range(0, 24 * 60, 10):
        now = NOON + timedelta(minutes=minute)
        out = observe(state, NO_SESSION, now, p)
        events += out.events + on_clock(state, now, p).events
        assert out.actions == []  # only a human can help: no re-authentication attempts

    alarms = [t for t in types(events) if not t.startswith("maintenance")]
    assert alarms == ["unauthenticated"]  # and no expiring/expired for a login that is gone
    assert events[0][1]["reason"] == "login_required"
    assert state.expires_at is None


def test_lost_authentication_retries_with_backoff_then_says_login_required() -> None:
    p = policy(backoff_initial=timedelta(seconds=5), backoff_max=timedelta(seconds=60), max_attempts=4)
    state = authenticated_at(NOON, p)
    attempts: list[float] = []
    actions: list[str] = []
    events = []
    for second in range(0, 300):
        now = NOON + timedelta(seconds=second)
        out = observe(state, LOST, now, p)
        events += out.events
        if out.actions:
            attempts.append(second)
            actions += out.actions

    assert attempts[:5] == [0, 5, 15, 35, 75]  # pauses 5, 10, 20, 40 s
    assert attempts[5] - attempts[4] == 60  # capped
    assert actions[:4] == ["reauthenticate"] * 4 and set(actions[4:]) == {"init"}  # then ssodh/init, slowly
    unauth = [payload["reason"] for kind, payload in events if kind == "unauthenticated"]
    assert unauth == ["session_lost", "login_required"]


def test_no_bridge_and_not_connected_lead_to_ssodh_init() -> None:
    p = policy()
    state = authenticated_at(NOON, p)

    out = observe(state, Observation("no_bridge", connected=True), NOON + timedelta(seconds=1), p)
    fresh = authenticated_at(NOON, p)
    out2 = observe(fresh, Observation("auth", authenticated=False, connected=False), NOON, p)

    assert out.actions == ["init"] and state.reason == "no_bridge"
    assert out2.actions == ["init"] and fresh.reason == "not_connected"


def test_competing_with_wait_announces_and_takes_no_action() -> None:
    p = policy(on_competing="wait")
    state = authenticated_at(NOON, p)

    out = observe(state, COMPETING, NOON, p)

    assert types(out.events) == ["competing"]
    assert out.events[0][1]["action"] == "wait"
    assert out.actions == []


def test_competing_with_takeover_announces_and_inits_with_compete() -> None:
    p = policy(on_competing="takeover")
    state = authenticated_at(NOON, p)

    out = observe(state, COMPETING, NOON, p)

    assert types(out.events) == ["competing"]
    assert out.events[0][1]["action"] == "takeover"
    assert out.actions == ["init_compete"]


def test_gateway_down_then_up_announces_both_and_asks_for_a_full_check() -> None:
    p = policy()
    state = authenticated_at(NOON, p)

    down = observe(state, DOWN, NOON, p)
    still = observe(state, DOWN, NOON + timedelta(seconds=30), p)
    up = observe(state, HEALTHY, NOON + timedelta(seconds=60), p)

    assert types(down.events) == ["gateway_down"]
    assert "ConnectError" in str(down.events[0][1]["detail"])
    assert still.events == []
    assert types(up.events) == ["gateway_up", "authenticated"]
    assert "status_check" in up.actions


def test_inside_a_maintenance_window_failures_are_quiet_and_recovery_is_paced() -> None:
    p = policy(backoff_initial=timedelta(seconds=5), backoff_max=timedelta(minutes=5))
    start = datetime(2026, 11, 24, 4, 40, tzinfo=UTC)  # 23:40 New York
    state = authenticated_at(start, p)
    events, attempts = [], []
    for second in range(0, 30 * 60, 5):
        now = start + timedelta(minutes=10, seconds=second)  # from 23:50
        events += on_clock(state, now, p).events
        out = observe(state, LOST, now, p)
        events += out.events
        attempts += [second] if out.actions else []

    assert types(events) == ["maintenance_started", "expiring", "expired"]  # no unauthenticated alarm
    assert state.in_maintenance and state.status == "unauthenticated"
    assert attempts == [0, 300, 600, 900, 1200, 1500]  # one attempt per 5 minutes, not a hammering


def test_leaving_the_window_announces_what_is_still_wrong() -> None:
    p = policy()
    start = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)  # 00:30 New York
    state = SessionState()
    on_clock(state, start, p)
    observe(state, LOST, start, p)

    out = on_clock(state, datetime(2026, 11, 24, 6, 45, tzinfo=UTC), p)

    assert types(out.events) == ["maintenance_ended", "unauthenticated"]
    assert "status_check" in out.actions and not state.in_maintenance


def test_after_our_own_logout_no_session_is_expected_and_quiet() -> None:
    p = policy()
    state = authenticated_at(NOON, p)

    out = logged_out(state, NOON, p)
    later = observe(state, NO_SESSION, NOON + timedelta(minutes=1), p)
    back = observe(state, HEALTHY, NOON + timedelta(minutes=2), p)

    assert types(out.events) == ["logged_out"]
    assert later.events == [] and later.actions == []
    assert types(back.events) == ["authenticated"]


def tickle(sso_ms: int) -> Observation:
    return Observation("auth", True, True, False, sso_expires_ms=sso_ms)


def test_a_sliding_sso_expires_moves_neither_expires_at_nor_the_login_time() -> None:
    p, state = policy(warning=timedelta(minutes=60)), SessionState()
    events = []
    for minute in range(0, 3 * 60):
        now = NOON + timedelta(minutes=minute)
        events += observe(state, tickle(300_000), now, p).events + on_clock(state, now, p).events

    assert types(events) == ["authenticated"]  # no expiring minutes after login, no storm
    assert state.expires_at == datetime(2026, 11, 25, 5, 0, tzinfo=UTC) and state.expiry_basis == "regional_reset"
    assert state.login_at == NOON


def test_an_sso_countdown_ends_the_session_earlier_and_expiring_fires_once() -> None:
    # the keeper started at noon on a login made 20 hours earlier: the gateway's 24 h cap is at 16:00 New York
    p, state = policy(warning=timedelta(minutes=60)), SessionState()
    cap = NOON + timedelta(hours=4)
    events = []
    for minute in range(0, 4 * 60 + 1):
        now = NOON + timedelta(minutes=minute)
        left_ms = int((cap - now).total_seconds() * 1000)
        if left_ms > 0:
            events += observe(state, tickle(min(300_000, left_ms)), now, p).events
        events += on_clock(state, now, p).events

    assert types(events) == ["authenticated", "expiring", "expired"]
    expiring = events[1][1]
    assert expiring["expiry_basis"] == "sso_expires" and expiring["expires_at"] == cap
    assert expiring["minutes_left"] == 3  # said when the countdown was believed, not at login
    assert state.status == "expired" and state.reason == "sso_expires"


def test_an_sso_countdown_inside_the_warning_period_does_not_repeat_expiring() -> None:
    p = policy(warning=timedelta(minutes=60), windows=WindowTable([], "us"))
    midnight = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    start = midnight - timedelta(hours=2)
    end = midnight - timedelta(minutes=2)  # the gateway stops extending: it ends 2 minutes early
    state, events = SessionState(), []
    for minute in range(0, 120):
        now = start + timedelta(minutes=minute)
        left_ms = int((end - now).total_seconds() * 1000)
        if left_ms > 0:
            events += observe(state, tickle(min(300_000, left_ms)), now, p).events
        events += on_clock(state, now, p).events

    assert types(events) == ["authenticated", "expiring", "expired"]
    assert events[1][1]["expires_at"] == midnight and events[1][1]["minutes_left"] == 60
    assert events[2][1]["expiry_basis"] == "sso_expires" and state.expires_at == end


def test_without_use_sso_expires_a_countdown_is_ignored() -> None:
    p, state = policy(use_sso_expires=False), SessionState()
    cap = NOON + timedelta(minutes=10)
    for minute in range(0, 10):
        now = NOON + timedelta(minutes=minute)
        observe(state, tickle(int((cap - now).total_seconds() * 1000)), now, p)

    assert state.expires_at == datetime(2026, 11, 25, 5, 0, tzinfo=UTC) and state.expiry_basis == "regional_reset"


def test_while_the_gateway_is_down_it_is_looked_at_again_with_backoff() -> None:
    p = policy(backoff_initial=timedelta(seconds=5), backoff_max=timedelta(seconds=60))
    state = authenticated_at(NOON, p)
    checks = []
    for second in range(0, 200):
        now = NOON + timedelta(seconds=second)
        if second == 0 or recovery_due(state, now):
            checks.append(second)
            observe(state, DOWN, now, p)

    assert checks[:6] == [0, 5, 15, 35, 75, 135]
    assert state.status == "gateway_down"


def test_recovery_attempts_start_over_after_an_outage() -> None:
    p = policy(max_attempts=3)
    state = authenticated_at(NOON, p)
    for second in range(0, 100, 10):
        observe(state, DOWN, NOON + timedelta(seconds=second), p)

    out = observe(state, LOST, NOON + timedelta(seconds=100), p)

    assert state.reason == "session_lost" and "reauthenticate" in out.actions and state.attempts == 1


def reopened_after_midnight(p: Policy) -> tuple[SessionState, datetime]:
    """Login 20:00 New York, expired at the regional reset, reopened (ssodh/init) at 00:30."""
    login = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 20:00 New York (EST), 24 Nov
    state = authenticated_at(login, p)
    assert state.expires_at == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # midnight New York
    on_clock(state, state.expires_at, p)  # expired at the reset
    observe(state, HEALTHY, datetime(2026, 11, 25, 5, 30, tzinfo=UTC), p)  # 00:30 New York: reopened
    assert state.status == "authenticated" and state.expires_at == login + timedelta(hours=24)
    return state, login


def tickles_after_restart(resumed: SessionState, p: Policy) -> list[tuple[str, dict[str, object]]]:
    """Tickles from 02:00 New York answering a sliding ssoExpires, as gateways do, and the clock."""
    restart = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    resumed.announced = "authenticated"
    events = []
    for second in range(0, 180, 60):
        now = restart + timedelta(seconds=second)
        events += observe(resumed, tickle(300_000), now, p).events + on_clock(resumed, now, p).events
    return events


def test_restart_after_a_reopen_past_midnight_does_not_announce_a_false_expiry() -> None:
    # the keeper restarted at 02:00: the row has no brokerage-open time, only the login
    p = policy(windows=WindowTable([], "us"))
    before, login = reopened_after_midnight(p)
    resumed = SessionState(  # what store.load() used to rebuild: authenticated_at = the login
        status=before.status, authenticated=True, connected=True, login_at=before.login_at,
        last_tickle_at=before.last_tickle_at, expires_at=before.expires_at, warned_for=before.warned_for,
        reason=before.reason, authenticated_at=before.login_at,
    )

    events = tickles_after_restart(resumed, p)

    assert types(events) == []
    assert resumed.status == "authenticated"
    assert resumed.expires_at == login + timedelta(hours=24)  # 20:00 New York, 25 Nov: the 24 h cap


async def test_restart_through_the_tracking_row_after_a_reopen_past_midnight(sqlite_url: str) -> None:
    from ibkr_common.db.engine import make_engine, make_sessionmaker
    from ibkr_session_keeper.store import TrackingStore

    p = policy(windows=WindowTable([], "us"))
    before, login = reopened_after_midnight(p)
    engine = make_engine(sqlite_url)
    try:
        clock = type("Fixed", (), {"now": staticmethod(lambda: datetime(2026, 11, 25, 7, 0, tzinfo=UTC))})()
        store = TrackingStore(make_sessionmaker(engine), connection="c1", user_id="local", clock=clock)
        await store.save(before, publisher=None, events=[])  # type: ignore[arg-type]
        resumed = await store.load()
    finally:
        await engine.dispose()
    assert resumed is not None and resumed.authenticated_at is None  # not stored: unknown, not the login

    events = tickles_after_restart(resumed, p)

    assert types(events) == [] and resumed.expires_at == login + timedelta(hours=24)
    assert resumed.expiry_basis == "max_age"


def test_an_auth_status_check_without_sso_expires_keeps_a_believed_countdown() -> None:
    p, state = policy(), SessionState()
    end = NOON + timedelta(minutes=5)
    for minute in range(3):
        now = NOON + timedelta(minutes=minute)
        observe(state, tickle(int((end - now).total_seconds() * 1000)), now, p)
    assert state.expires_at == end

    observe(state, HEALTHY, NOON + timedelta(minutes=3), p)

    assert state.expires_at == end and state.expiry_basis == "sso_expires"
