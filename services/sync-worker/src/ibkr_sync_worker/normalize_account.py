"""The account summary as a normalised record (money as Decimal, day-trade counters, PDT flag)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from ibkr_common.messages import bridge
from ibkr_sync_worker.normalize import dec, digest, normalized, text


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    account_type: str | None = None
    currency: str | None = None
    cash: Decimal | None = None
    day_trades_remaining: int | None = None
    day_trades_remaining_t1: int | None = None
    day_trades_remaining_t2: int | None = None
    day_trades_remaining_t3: int | None = None
    day_trades_remaining_t4: int | None = None
    pdt_flag: bool | None = None
    options_level: int | None = None
    net_liquidation: Decimal | None = None
    equity_with_loan: Decimal | None = None
    previous_day_equity: Decimal | None = None
    buying_power: Decimal | None = None
    available_funds: Decimal | None = None
    excess_liquidity: Decimal | None = None

    MARKET = ("net_liquidation", "equity_with_loan", "previous_day_equity", "buying_power", "available_funds",
              "excess_liquidity")

    def business(self) -> tuple[Any, ...]:
        """Cash, day trades, flags: a change here is `account.updated` (market-driven figures are not)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in self.MARKET)

    def content_hash(self) -> str:
        return digest([getattr(self, f.name) for f in fields(self)])

    def columns(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def _value(values: dict[str, Decimal], *keys: str) -> Decimal | None:
    for key in keys:
        if key in values:
            return values[key]
    return None



def pdt_from_status(status: str | None) -> bool | None:
    """`daytradingstatus-s` as text: flagged when it names a pattern day trader; None when absent."""
    if not status:
        return None
    lowered = status.lower()
    negated = any(word in lowered for word in ("non", "not ", "no "))
    return ("pattern" in lowered or "pdt" in lowered) and not negated


def account_from_summary(s: bridge.AccountSummary, options_level: int | None = None) -> AccountRecord:
    """Normalise `/portfolio/{id}/summary` as the bridge types it (every numeric key in `values`)."""
    v = {k.lower(): n for k, n in s.values.items()}
    pdt = _value(v, "pdtflag", "patterndaytrader", "ispdt")
    status = next((t for k, t in s.texts.items() if k.lower().startswith("daytradingstatus")), None)
    return AccountRecord(
        account_id=s.account_id,
        account_type=text(s.account_type, 16),
        currency=text(s.currency, 8),
        cash=dec(s.total_cash if s.total_cash is not None else _value(v, "totalcashvalue")),
        day_trades_remaining=s.day_trades_remaining if s.day_trades_remaining is not None
        else _int(_value(v, "daytradesremaining")),
        day_trades_remaining_t1=_int(_value(v, "daytradesremainingt+1", "daytradesremainingt1")),
        day_trades_remaining_t2=_int(_value(v, "daytradesremainingt+2", "daytradesremainingt2")),
        day_trades_remaining_t3=_int(_value(v, "daytradesremainingt+3", "daytradesremainingt3")),
        day_trades_remaining_t4=_int(_value(v, "daytradesremainingt+4", "daytradesremainingt4")),
        pdt_flag=(pdt != 0) if pdt is not None else pdt_from_status(status),
        options_level=options_level,
        net_liquidation=dec(s.net_liquidation if s.net_liquidation is not None else _value(v, "netliquidation")),
        equity_with_loan=dec(s.equity_with_loan if s.equity_with_loan is not None
                             else _value(v, "equitywithloanvalue")),
        previous_day_equity=dec(_value(v, "previousdayequitywithloanvalue")),
        buying_power=dec(s.buying_power if s.buying_power is not None else _value(v, "buyingpower")),
        available_funds=dec(s.available_funds if s.available_funds is not None else _value(v, "availablefunds")),
        excess_liquidity=dec(s.excess_liquidity if s.excess_liquidity is not None else _value(v, "excessliquidity")),
    )


def account_from_row(row: Any) -> AccountRecord:
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    return AccountRecord(**{f.name: normalized(get(f.name)) for f in fields(AccountRecord)})
