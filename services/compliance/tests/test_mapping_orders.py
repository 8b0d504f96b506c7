"""The contract's orders as the bridge places them (REFERENCE.md 7.4), and synced orders as the engine sees them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ibkr_common.messages.orders import OrderRequest
from ibkr_common.messages.sync import OrderView
from ibkr_compliance.mapping import US_COMBO_CONID, account_lines, bridge_order

AAPL = 265598
AT = "2026-12-07T17:00:00Z"


def request(**changes: Any) -> OrderRequest:
    body: dict[str, Any] = {"client_order_id": "c-1", "user_id": "u", "account_id": "DU1", "environment": "paper",
                            "instrument": {"conid": AAPL}, "side": "BUY", "quantity": "3", "order_type": "MKT"}
    body.update(changes)
    return OrderRequest.model_validate(body)


def placed(req: OrderRequest, conids: list[int]) -> tuple[Any, ...]:
    o = bridge_order(req, conids)
    return o.order_type, o.price, o.aux_price, o.conid, o.conidex


def test_each_order_type_carries_its_prices_where_ibkr_reads_them() -> None:
    assert placed(request(), [AAPL]) == ("MKT", None, None, AAPL, None)
    assert placed(request(order_type="LMT", limit_price="230"), [AAPL]) == ("LMT", Decimal(230), None, AAPL, None)
    assert placed(request(order_type="STP", stop_price="235"), [AAPL]) == ("STP", Decimal(235), None, AAPL, None)
    stop_limit = request(order_type="STP_LMT", limit_price="236", stop_price="235")
    assert placed(stop_limit, [AAPL]) == ("STP_LMT", Decimal(236), Decimal(235), AAPL, None)


def test_legs_become_one_combo_conidex_with_sold_legs_negative() -> None:
    legs = [{"instrument": {"conid": 11}, "side": "BUY", "ratio": 1},
            {"instrument": {"conid": 22}, "side": "SELL", "ratio": 2}]
    req = request(instrument=None, legs=legs, side="SELL", order_type="LMT", limit_price="1.5")
    assert placed(req, [11, 22]) == ("LMT", Decimal("1.5"), None, None, f"{US_COMBO_CONID};;;11/1,22/-2")
    assert bridge_order(req, [11, 22]).side == "SELL"


def combo_order(status: str) -> OrderView:
    return OrderView.model_validate({
        "account_id": "DU1", "order_id": "9", "conid": US_COMBO_CONID, "symbol": "AAPL", "sec_type": "BAG",
        "side": "BUY", "order_type": "LMT", "quantity": "2", "remaining_quantity": "2" if status != "filled" else "0",
        "limit_price": "4.2", "status": status,
        "fills": [] if status != "filled" else [  # the legs' executions, as the sync-worker keeps them
            {"execution_id": "e1", "quantity": "2", "price": "8.1", "side": "BUY", "executed_at": AT},
            {"execution_id": "e2", "quantity": "2", "price": "3.9", "side": "SELL", "executed_at": AT},
        ],
    })


def test_a_combo_order_is_neither_a_working_stock_order_nor_stock_trades() -> None:
    lines = account_lines([], [combo_order("submitted"), combo_order("filled")], {})
    assert (lines.open_orders, lines.executions) == ((), ())  # not a buy and a sale of AAPL stock (a day trade)


def stock_order(order_id: str, status: str, tif: str) -> OrderView:
    return OrderView.model_validate({
        "account_id": "DU1", "order_id": order_id, "conid": AAPL, "symbol": "AAPL", "sec_type": "STK", "side": "BUY",
        "order_type": "LMT", "quantity": "5", "remaining_quantity": "5", "limit_price": "90", "status": status,
        "tif": tif,
    })


def test_a_day_order_expired_at_the_close_no_longer_works_a_gtc_one_does() -> None:
    """IBKR (and cpsim) cancels a DAY order at the close: the sync-worker records `cancelled`, a final status."""
    lines = account_lines([], [stock_order("1", "cancelled", "DAY"), stock_order("2", "submitted", "GTC")], {})
    assert [(o.symbol, o.qty, o.status) for o in lines.open_orders] == [("AAPL", Decimal(5), "submitted")]
