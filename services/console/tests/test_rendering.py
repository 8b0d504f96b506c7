"""The chart's series from stored events, and the live feed's one-line summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from starlette.requests import Request

from ibkr_console.chart import series_from_events, svg
from ibkr_console.live import summary, to_message
from ibkr_console.paging import Pager
from ibkr_contract.audit import AuditEvent
from ibkr_contract.envelope import EventEnvelope

T0 = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def stored(seq: int, kind: str, payload: dict, minutes: int) -> AuditEvent:
    return AuditEvent(seq=seq, stored_at=T0, hash="h" * 64, event_id=f"e{seq}", type=kind, schema_version=1,
                      conn="paper", environment="paper", source="sync-worker",
                      occurred_at=T0 + timedelta(minutes=minutes), account_id="DU1", payload=payload)


def test_net_liquidation_and_summed_unrealized_pnl_over_the_session():
    events = [
        stored(1, "account.updated", {"account": {"account_id": "DU1", "net_liquidation": "1000000"}}, 0),
        stored(2, "positions.opened", {"position": {"conid": 1, "quantity": "10", "unrealized_pnl": "-5"}}, 1),
        stored(3, "positions.opened", {"position": {"conid": 2, "quantity": "3", "unrealized_pnl": "12.5"}}, 2),
        stored(4, "positions.changed", {"position": {"conid": 1, "quantity": "10", "unrealized_pnl": "4"}}, 3),
        stored(5, "positions.closed", {"position": {"conid": 2, "quantity": "0"}}, 4),
        stored(6, "account.updated", {"account": {"account_id": "DU1", "net_liquidation": "1000016.5"}}, 5),
    ]
    net, pnl = series_from_events(list(reversed(events)))  # audit answers newest first
    assert [v for _, v in net.points] == [Decimal("1000000"), Decimal("1000016.5")]
    assert [v for _, v in pnl.points] == [Decimal("-5"), Decimal("7.5"), Decimal("16.5"), Decimal("4")]
    picture = str(svg(net, pnl))
    assert picture.startswith("<svg") and picture.count("<path") == 2
    assert "1,000,000.00 → 1,000,016.50" in picture and "15:00:00 UTC" in picture and "15:05:00 UTC" in picture


def test_no_events_say_so_instead_of_an_empty_chart():
    net, pnl = series_from_events([])
    assert "No account or position events" in str(svg(net, pnl))


def test_the_feed_summarises_without_rendering_a_payload_whole():
    envelope = EventEnvelope.model_validate({
        "event_id": "0b7c5a4e-3c1a-4a7e-9d53-0d2b8f1f9a10", "type": "orders.filled", "schema_version": 1,
        "conn": "paper", "environment": "paper", "source": "sync-worker", "occurred_at": T0.isoformat(),
        "account_id": "DU1", "payload": {"order": {"order_id": "42", "side": "BUY", "quantity": "7", "symbol": "AAPL",
                                                   "status": "filled", "secret_note": "do-not-show"}}})
    line = summary(envelope)
    assert line == "BUY 7 AAPL filled (order 42)"
    message = to_message(envelope)
    assert message["area"] == "orders" and "do-not-show" not in str(message)


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/orders", "query_string": query.encode(),
                    "headers": [], "scheme": "http", "server": ("127.0.0.1", 80), "root_path": ""})


def test_a_pager_carries_the_cursor_forward_and_remembers_the_pages_before():
    first = Pager.of(_request("conn=paper&open_cursor=OPEN1"))
    assert first.cursor is None and first.number == 1 and first.previous_url() is None
    assert first.next_url(None) is None
    second_url = first.next_url("C1")
    assert second_url == "/orders?conn=paper&open_cursor=OPEN1&cursor=C1&page=2"  # the other list's cursor stays
    second = Pager.of(_request(second_url.split("?", 1)[1]))
    assert second.cursor == "C1" and second.number == 2
    assert second.previous_url() == "/orders?conn=paper&open_cursor=OPEN1"
    third = Pager.of(_request(second.next_url("C2").split("?", 1)[1]))
    assert third.cursor == "C2" and third.back == ("C1",) and third.number == 3
    assert third.previous_url() == "/orders?conn=paper&open_cursor=OPEN1&cursor=C1&page=2"
    opened = Pager.of(_request("open_cursor=OPEN1&open_page=2&cursor=C2"), "open_")
    assert opened.cursor == "OPEN1" and opened.previous_url() == "/orders?cursor=C2"
