"""Pure parts: clock, token buckets and penalty box, session state machine, matching, accounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from cpsim.accounts import Account, Position
from cpsim.clock import SimClock
from cpsim.fills import chunk, combo_quote, match, parse_combo, triggered
from cpsim.limits import RateLimiter, TokenBucket, endpoint_rule
from cpsim.market import Market, Quote, expiries, third_friday
from cpsim.session import Session

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 10:00 New York


def q(bid: str, ask: str, last: str) -> Quote:
    b, a, lst = Decimal(bid), Decimal(ask), Decimal(last)
    return Quote(b, a, lst, lst, lst, lst, lst)


# ---- clock -------------------------------------------------------------------------------------


def test_clock_set_and_advance_are_tz_aware_utc() -> None:
    clock = SimClock(frozen=T0)
    clock.advance(90)
    assert clock.now() == T0 + timedelta(seconds=90)
    clock.set(datetime(2026, 3, 3, 12, 0))
    assert clock.now() == datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    assert clock.now().tzinfo is not None


# ---- limits ------------------------------------------------------------------------------------


def test_token_bucket_allows_capacity_then_refills_with_time() -> None:
    b = TokenBucket(rate=10, capacity=10)
    assert all(b.take(T0) for _ in range(10))
    assert not b.take(T0)
    assert b.take(T0 + timedelta(milliseconds=100))


def test_global_pacing_holds_a_sequential_caller_and_never_refuses_it() -> None:
    rl = RateLimiter(penalty_s=600)
    now, waits = T0, []
    for _ in range(40):  # one call at a time: each waits for its answer before the next
        wait = rl.admit("GET", "/iserver/accounts", now, "c")
        assert wait is not None
        waits.append(wait)
        now += timedelta(seconds=wait + 0.002)  # its pacing, then a 2 ms round trip
        rl.release()
    assert waits[:10] == [0.0] * 10 and all(0 < w <= 0.1 for w in waits[10:])
    assert rl.violations == 0 and rl.pacer.paced == 30


def test_a_burst_beyond_ten_in_flight_is_refused_and_starts_the_penalty_box() -> None:
    rl = RateLimiter(penalty_s=600)
    assert all(rl.admit("GET", "/iserver/accounts", T0, "c") == 0.0 for _ in range(10))  # none answered yet
    assert rl.admit("GET", "/iserver/accounts", T0, "c") is None
    assert rl.violations == 1
    for _ in range(10):
        rl.release()
    assert rl.admit("GET", "/iserver/accounts", T0 + timedelta(seconds=599), "c") is None
    assert rl.admit("GET", "/iserver/accounts", T0 + timedelta(seconds=601), "c") == 0.0


def test_a_few_callers_at_once_are_paced_in_turn() -> None:
    rl = RateLimiter(penalty_s=600)
    for _ in range(10):
        rl.admit("GET", "/iserver/accounts", T0, "c")
        rl.release()
    waits = [rl.admit("GET", "/iserver/accounts", T0, "c") for _ in range(3)]  # three clients, one call each
    assert waits == pytest.approx([0.1, 0.2, 0.3])


def test_live_orders_limit_is_one_per_five_seconds() -> None:
    rl = RateLimiter(penalty_s=0)
    assert rl.admit("GET", "/iserver/account/orders", T0) == 0.0
    rl.release()
    assert rl.admit("GET", "/iserver/account/orders", T0 + timedelta(seconds=4)) is None
    assert rl.admit("GET", "/iserver/account/orders", T0 + timedelta(seconds=9)) == 0.0


def test_endpoint_table_covers_tickle_validate_and_portfolio_accounts() -> None:
    assert endpoint_rule("POST", "/tickle") is not None
    assert endpoint_rule("GET", "/sso/validate")[1:] == (1, 60)  # type: ignore[index]
    assert endpoint_rule("GET", "/portfolio/accounts")[1:] == (1, 5)  # type: ignore[index]
    assert endpoint_rule("GET", "/portfolio/DU1/positions/0") is None


def test_disabled_limiter_never_refuses() -> None:
    rl = RateLimiter(enabled=False)
    assert all(rl.admit("GET", "/iserver/account/orders", T0) == 0.0 for _ in range(100))


# ---- session -----------------------------------------------------------------------------------


def test_idle_five_minutes_ends_the_whole_session() -> None:
    s = Session()
    s.login(T0)
    s.expire(T0 + timedelta(seconds=299))
    assert s.authenticated
    s.expire(T0 + timedelta(seconds=301))
    assert not s.sso and not s.authenticated and s.ended_reason == "idle timeout"


def test_tickles_keep_the_session_alive() -> None:
    s = Session()
    s.login(T0)
    for minute in range(1, 20):
        now = T0 + timedelta(minutes=minute)
        s.expire(now)
        s.touch(now)
        s.refresh_sso(now)  # what /tickle and /sso/validate do
    assert s.authenticated


def test_other_requests_keep_the_idle_timer_but_the_sso_token_lapses() -> None:
    s = Session()
    s.login(T0)
    for minute in range(2, 10, 2):
        s.expire(T0 + timedelta(minutes=minute))
        s.touch(T0 + timedelta(minutes=minute))
    assert s.sso_expires_ms(T0 + timedelta(minutes=8)) == 120_000
    s.expire(T0 + timedelta(minutes=10))
    assert not s.sso and s.ended_reason == "sso expired"


def test_regional_midnight_ends_only_the_brokerage_session() -> None:
    s = Session(tz="America/New_York")
    s.login(datetime(2026, 3, 2, 4, 58, tzinfo=UTC))  # 23:58 New York (EST)
    s.expire(datetime(2026, 3, 2, 5, 1, tzinfo=UTC))  # 00:01 New York
    assert s.connected and not s.authenticated and s.ended_reason == "regional reset"


def test_zurich_region_resets_at_zurich_midnight() -> None:
    s = Session(tz="Europe/Zurich")
    s.login(datetime(2026, 3, 2, 22, 58, tzinfo=UTC))  # 23:58 Zurich (CET)
    s.expire(datetime(2026, 3, 2, 23, 0, 30, tzinfo=UTC))
    assert not s.authenticated and s.connected


def test_max_age_ends_session_after_24_hours_even_when_active() -> None:
    s = Session(tz="UTC", idle_timeout_s=1e9)
    s.login(T0)
    s.brokerage_at = T0 + timedelta(hours=23, minutes=59)
    s.expire(T0 + timedelta(hours=24))
    assert not s.sso and s.ended_reason == "max session age"


def test_sso_expires_is_the_sliding_token_capped_by_the_idle_end() -> None:
    s = Session(sso_lifetime_s=600.0)
    s.login(T0)
    assert s.sso_expires_ms(T0) == 300_000  # the idle end comes first
    assert s.sso_expires_ms(T0 + timedelta(seconds=10)) == 290_000
    long_idle = Session(idle_timeout_s=3600.0)
    long_idle.login(T0)
    assert long_idle.sso_expires_ms(T0) == 3_600_000  # the token never lapses before the idle end


def test_sso_expires_counts_down_to_the_24_hour_cap() -> None:
    s = Session(tz="UTC")
    s.login(T0)
    end = T0 + timedelta(hours=24)
    for left in (240, 180, 120):
        now = end - timedelta(seconds=left)
        s.touch(now)
        s.refresh_sso(now)
        assert s.sso_expires_ms(now) == left * 1000
    s.logout()
    assert s.sso_expires_ms(end) == 0


def test_read_only_login_is_connected_but_not_authenticated() -> None:
    s = Session()
    s.login(T0, brokerage=False)
    assert s.connected and not s.authenticated
    s.start_brokerage(T0)
    assert s.authenticated


def test_competing_session_is_not_authenticated() -> None:
    s = Session()
    s.login(T0)
    s.set_competing(True)
    assert s.competing and not s.authenticated and s.connected


# ---- matching ----------------------------------------------------------------------------------


def test_market_buy_takes_the_ask_and_sell_the_bid() -> None:
    assert match("BUY", "MKT", None, q("9.99", "10.01", "10")) == Decimal("10.01")
    assert match("SELL", "MKT", None, q("9.99", "10.01", "10")) == Decimal("9.99")


def test_limit_buy_fills_only_when_ask_at_or_below_limit() -> None:
    assert match("BUY", "LMT", Decimal("10.00"), q("9.99", "10.01", "10")) is None
    assert match("BUY", "LMT", Decimal("10.01"), q("9.99", "10.01", "10")) == Decimal("10.01")
    assert match("SELL", "LMT", Decimal("9.98"), q("9.99", "10.01", "10")) == Decimal("9.99")


def test_a_combo_bought_for_a_credit_fills_at_its_net_ask_not_its_last() -> None:
    credit = combo_quote([(q("1.00", "1.05", "1.025"), 1), (q("2.40", "2.45", "2.425"), -1)])
    assert credit.ask == Decimal("-1.35") and credit.last == Decimal("-1.400")
    assert match("BUY", "MKT", None, credit, combo=True) == Decimal("-1.35")
    assert match("BUY", "LMT", Decimal("-1.40"), credit, combo=True) is None  # wants a bigger credit
    assert match("BUY", "MKT", None, q("0", "0", "10")) == Decimal(10)  # one instrument with no book: last


def test_stops_trigger_through_the_stop_price() -> None:
    assert triggered("SELL", Decimal(95), Decimal("94.99"))
    assert not triggered("SELL", Decimal(95), Decimal("95.01"))
    assert triggered("BUY", Decimal(105), Decimal(105))


def test_large_orders_fill_in_threshold_chunks() -> None:
    assert chunk(Decimal(2500), Decimal(1000)) == Decimal(1000)
    assert chunk(Decimal(500), Decimal(1000)) == Decimal(500)


def test_combo_conidex_parses_and_prices_net_of_legs() -> None:
    assert parse_combo("28812380;;;111/1,222/-1") == (28812380, [(111, 1), (222, -1)])
    assert parse_combo("265598@SMART") is None
    net = combo_quote([(q("5.00", "5.10", "5.05"), 1), (q("2.00", "2.10", "2.05"), -1)])
    assert (net.bid, net.ask) == (Decimal("2.90"), Decimal("3.10"))


# ---- market ------------------------------------------------------------------------------------


def test_chain_has_weekly_and_monthly_expiries_and_strikes_around_price() -> None:
    m = Market(seed=1, today=date(2026, 3, 2))
    exps = expiries(date(2026, 3, 2))
    assert third_friday(2026, 3) in exps and date(2026, 3, 6) in exps
    strikes = m.strikes(265598, "MAR26")
    assert min(strikes) < Decimal(230) < max(strikes)
    assert len(m.options(265598, "MAR26", Decimal(230), "C")) >= 2  # weekly + monthly in March


def test_random_walk_is_seeded() -> None:
    a, b = Market(seed=7), Market(seed=7)
    for m in (a, b):
        m.step(T0)
        m.step(T0 + timedelta(seconds=30))
    assert a.quotes[265598].last == b.quotes[265598].last != Decimal("230.00")


# ---- accounts ----------------------------------------------------------------------------------


def stock(conid: int = 1) -> Position:
    return Position(conid, "X", "STK", Decimal(0), Decimal(0))


def test_fill_moves_cash_position_and_average_cost() -> None:
    a = Account("DU1", cash=Decimal(10000))
    a.apply_fill(stock(), Decimal(10), Decimal(100), date(2026, 3, 2))
    a.apply_fill(stock(), Decimal(10), Decimal(110), date(2026, 3, 2))
    p = a.positions[1]
    assert p.quantity == 20 and p.avg_price == Decimal(105)
    assert a.cash == Decimal(10000) - Decimal(2100) - Decimal(2)  # two 1.00 minimum commissions


def test_closing_a_position_opened_today_is_a_day_trade() -> None:
    a = Account("DU1", cash=Decimal(10000))
    today = date(2026, 3, 2)
    a.apply_fill(stock(), Decimal(10), Decimal(100), today)
    assert a.apply_fill(stock(), Decimal(-10), Decimal(101), today)
    assert 1 not in a.positions and a.realized_pnl == Decimal(10) - Decimal(2)


def test_day_trades_remaining_counts_down_under_25k() -> None:
    a = Account("DU1", cash=Decimal(10000))
    today = date(2026, 3, 4)
    assert a.day_trades_remaining(today, Decimal(10000)) == 3
    a.record_day_trade(today)
    assert a.day_trades_remaining(today, Decimal(10000)) == 2
    assert a.day_trades_remaining(today, Decimal(30000)) == -1


def test_day_trades_remaining_ahead_lets_old_day_trades_roll_out_of_the_window() -> None:
    a = Account("DU1", cash=Decimal(10000))
    friday = date(2026, 3, 6)
    for day in (date(2026, 3, 2), date(2026, 3, 3), friday):  # Monday, Tuesday, Friday
        a.record_day_trade(day)
    ahead = [a.day_trades_remaining(friday, Decimal(10000), ahead=k) for k in range(5)]
    # t+1 is Monday 9 March: Monday 2 March has left the five-day window; t+2 Tuesday's too
    assert ahead == [0, 1, 2, 2, 2]
    m = a.metrics(lambda c: None, friday)
    assert [m[f"day_trades_remaining_t{k}"] for k in range(1, 5)] == [1, 2, 2, 2]


def test_buying_power_is_four_times_available_funds_for_margin_over_25k() -> None:
    a = Account("DU1", cash=Decimal(100000))
    m = a.metrics(lambda c: None, date(2026, 3, 2))
    assert m["buying_power"] == Decimal(400000)
    a.account_type = "cash"
    assert a.metrics(lambda c: None, date(2026, 3, 2))["buying_power"] == Decimal(100000)
