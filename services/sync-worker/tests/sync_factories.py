"""Named factories of bridge replies and records for the sync-worker tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ibkr_common.messages import bridge

ACCT = "DU1234567"


def stock_position(conid: int = 265598, quantity: str = "100", avg: str = "150", price: str = "170",
                   symbol: str = "AAPL", **extra: Any) -> bridge.Position:
    q, a, p = Decimal(quantity), Decimal(avg), Decimal(price)
    values: dict[str, Any] = {
        "account_id": ACCT, "conid": conid, "symbol": symbol, "description": symbol, "sec_type": "STK",
        "quantity": q, "avg_cost": a, "avg_price": a, "market_price": p, "market_value": q * p,
        "currency": "USD", "unrealized_pnl": (p - a) * q, "realized_pnl": Decimal(0), "multiplier": Decimal(0),
    }
    values.update(extra)
    return bridge.Position(**values)


def option_position(conid: int = 700001, quantity: str = "2", avg: str = "3.5", price: str = "4.25",
                    **extra: Any) -> bridge.Position:
    q, a, p = Decimal(quantity), Decimal(avg), Decimal(price)
    values: dict[str, Any] = {
        "account_id": ACCT, "conid": conid, "symbol": "SPY", "description": "SPY JAN2027 440 C",
        "sec_type": "OPT", "quantity": q, "avg_cost": a * 100, "avg_price": a, "market_price": p,
        "market_value": q * p * 100, "currency": "USD", "unrealized_pnl": (p - a) * q * 100,
        "expiry": "20270115", "right": "C", "strike": Decimal(440), "multiplier": Decimal(100),
        "underlying_conid": 756733,
    }
    values.update(extra)
    return bridge.Position(**values)


def live_order(order_id: str = "1001", status: str = "submitted", filled: str = "0", **extra: Any) -> bridge.LiveOrder:
    values: dict[str, Any] = {
        "account_id": ACCT, "order_id": order_id, "client_order_id": f"coid-{order_id}", "conid": 265598,
        "symbol": "AAPL", "sec_type": "STK", "side": "BUY", "order_type": "Limit", "status": status,
        "quantity": Decimal(10), "filled_quantity": Decimal(filled),
        "remaining_quantity": Decimal(10) - Decimal(filled),
        "price": Decimal("150.00"), "tif": "DAY",
    }
    values.update(extra)
    return bridge.LiveOrder(**values)


def trade(execution_id: str = "0000e0d5.1.01.01", order_id: str | None = "1001", quantity: str = "10",
          price: str = "150", **extra: Any) -> bridge.Trade:
    values: dict[str, Any] = {
        "execution_id": execution_id, "account_id": ACCT, "order_id": order_id, "conid": 265598, "symbol": "AAPL",
        "sec_type": "STK", "side": "BUY", "quantity": Decimal(quantity), "price": Decimal(price),
        "commission": Decimal("1.00"), "executed_at": datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
    }
    values.update(extra)
    return bridge.Trade(**values)


def summary(cash: str = "100000", net_liq: str = "117000", dtr: int = 3, **values: Decimal) -> bridge.AccountSummary:
    return bridge.AccountSummary(
        account_id=ACCT, currency="USD", account_type="INDIVIDUAL", net_liquidation=Decimal(net_liq),
        equity_with_loan=Decimal(net_liq), buying_power=Decimal(cash) * 4, available_funds=Decimal(cash),
        excess_liquidity=Decimal(cash), total_cash=Decimal(cash), day_trades_remaining=dtr,
        values={"daytradesremainingt+1": Decimal(dtr), "daytradesremainingt+2": Decimal(dtr),
                "daytradesremainingt+3": Decimal(3), "daytradesremainingt+4": Decimal(3),
                "previousdayequitywithloanvalue": Decimal(net_liq), **values},
    )
