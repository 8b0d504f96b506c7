"""Units of the latency model and of exchange hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cpsim import hours
from cpsim.latency import CAP_MS, Latency, model_ms

SUNDAY = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # 12:00 New York (EST)
MONDAY_OPEN = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 09:30 New York


def test_model_is_tens_of_ms_for_reads_and_more_for_order_writes() -> None:
    assert model_ms("POST", "/tickle") == 15
    assert model_ms("GET", "/portfolio/DU1/positions/0") == 60
    assert model_ms("GET", "/iserver/marketdata/snapshot") == 25
    assert model_ms("POST", "/iserver/account/DU1/orders") == 150
    assert model_ms("POST", "/iserver/account/DU1/orders/whatif") == 200
    assert model_ms("DELETE", "/iserver/account/DU1/order/12") == 100
    assert model_ms("GET", "/iserver/account/order/status/12") == 50
    assert model_ms("GET", "/no/such/path") == 40


def test_overrides_scale_jitter_and_the_ten_second_cap() -> None:
    lat = Latency(jitter=0)
    assert lat.delay_s("POST", "/iserver/account/DU1/orders") == pytest.approx(0.150)
    lat.overrides = {"/iserver/*": 10, "POST /iserver/account/*/orders": 500}
    assert lat.delay_s("POST", "/iserver/account/DU1/orders") == pytest.approx(0.5)
    assert lat.delay_s("GET", "/iserver/account/orders") == pytest.approx(0.010)  # only the bare glob matches
    assert lat.delay_s("POST", "/tickle") == pytest.approx(0.015)  # the model
    lat.scale = 2
    assert lat.delay_s("POST", "/tickle") == pytest.approx(0.030)
    lat.scale = 1000
    assert lat.delay_s("POST", "/iserver/account/DU1/orders") == CAP_MS / 1000
    lat.enabled = False
    assert lat.delay_s("POST", "/iserver/account/DU1/orders") == 0


def test_jitter_is_seeded_and_bounded() -> None:
    a, b = Latency(seed=7), Latency(seed=7)
    xs = [a.delay_s("POST", "/tickle") for _ in range(50)]
    assert xs == [b.delay_s("POST", "/tickle") for _ in range(50)]
    assert all(0.012 <= x <= 0.018 for x in xs) and len(set(xs)) > 1


def test_exchange_hours_are_weekdays_0930_to_1600_new_york() -> None:
    assert not hours.is_open("exchange", SUNDAY)
    assert hours.is_open("always", SUNDAY)
    assert hours.next_open(SUNDAY) == MONDAY_OPEN
    assert not hours.is_open("exchange", MONDAY_OPEN.replace(minute=29))
    assert hours.is_open("exchange", MONDAY_OPEN)
    assert not hours.is_open("exchange", datetime(2026, 3, 2, 21, 0, tzinfo=UTC))  # 16:00 New York
    assert hours.next_close(MONDAY_OPEN) == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
    friday_evening = datetime(2026, 3, 6, 22, 0, tzinfo=UTC)
    assert hours.next_open(friday_evening) == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)  # Monday, now EDT


def test_outside_rth_orders_may_work_04_00_to_20_00_on_weekdays_only() -> None:
    seven = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 07:00 New York
    assert hours.is_open("exchange", seven, outside_rth=True) and not hours.is_open("exchange", seven)
    assert not hours.is_open("exchange", SUNDAY, outside_rth=True)


def test_mode_names() -> None:
    assert hours.normalise_mode("rth") == "exchange" and hours.normalise_mode("always_open") == "always"
    with pytest.raises(ValueError, match="exchange, always"):
        hours.normalise_mode("sometimes")
