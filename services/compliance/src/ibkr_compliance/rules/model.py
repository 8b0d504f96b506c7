"""Typed inputs and output of the rules engine. Money and quantities are ``Decimal``; times are
timezone-aware."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["buy", "sell"]
PositionEffect = Literal["open", "close", "auto"]
OrderType = Literal["market", "limit", "stop", "stop_limit"]
AccountType = Literal["margin", "cash"]
Environment = Literal["paper", "live"]
RegimeName = Literal["legacy_pdt", "intraday_margin"]
Severity = Literal["allow", "warn", "block"]

_TERMINAL_STATUSES = frozenset(
    {"filled", "canceled", "cancelled", "expired", "rejected", "replaced", "done_for_day", "inactive"}
)
_OCC = re.compile(r"^([A-Z0-9.]{1,6})(\d{6})([CP])(\d{8})$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class OptionContract(_Frozen):
    """A US equity or index option series, parsed from its OCC symbol."""

    root: str
    expiry: date
    right: Literal["C", "P"]
    strike: Decimal


def parse_occ(symbol: str) -> OptionContract | None:
    """``AAPL260515C00200000`` -> OptionContract; ``None`` for a non-option symbol."""
    match = _OCC.match(symbol.replace(" ", "").upper())
    if match is None:
        return None
    root, ymd, right, strike = match.groups()
    expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:6]))
    return OptionContract(
        root=root, expiry=expiry, right="C" if right == "C" else "P", strike=Decimal(strike) / 1000
    )


def underlying_of(symbol: str) -> str:
    """The underlying root of an option symbol, or the symbol itself for a stock."""
    contract = parse_occ(symbol)
    return contract.root if contract is not None else symbol.upper()


class OrderLeg(_Frozen):
    """One leg; a single-leg order has one leg with ratio 1."""

    symbol: str
    side: Side
    ratio: int = 1
    position_effect: PositionEffect = "auto"
    price: Decimal | None = None

    @property
    def contract(self) -> OptionContract | None:
        return parse_occ(self.symbol)


class OrderSpec(_Frozen):
    """The proposed order (single-leg, or multi-leg with ``legs``)."""

    symbol: str | None = None
    side: Side | None = None
    qty: Decimal
    order_type: OrderType = "limit"
    time_in_force: str = "day"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    position_effect: PositionEffect = "auto"
    legs: tuple[OrderLeg, ...] = ()
    extended_hours: bool = False

    @property
    def is_multi_leg(self) -> bool:
        return len(self.legs) > 0

    def effective_legs(self) -> tuple[OrderLeg, ...]:
        if self.legs:
            return tuple(
                leg
                if leg.position_effect != "auto" or self.position_effect == "auto"
                else leg.model_copy(update={"position_effect": self.position_effect})
                for leg in self.legs
            )
        assert self.symbol is not None and self.side is not None
        return (OrderLeg(symbol=self.symbol, side=self.side, ratio=1, position_effect=self.position_effect),)


class Execution(_Frozen):
    """A fill: today's executions drive the day-trade count."""

    time: datetime
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None = None
    order_id: str | None = None
    position_effect: PositionEffect = "auto"
    unsettled_funds: bool = False


class Position(_Frozen):
    symbol: str
    qty: Decimal
    opened: datetime | None = None
    unsettled_funds: bool = False


class WorkingOrder(_Frozen):
    symbol: str
    side: Side
    qty: Decimal
    position_effect: PositionEffect = "auto"
    order_type: OrderType = "limit"
    limit_price: Decimal | None = None
    status: str = "new"

    @property
    def is_working(self) -> bool:
        return self.status.lower() not in _TERMINAL_STATUSES


class DayTradeRecord(_Frozen):
    date: date
    symbol: str | None = None
    count: int = 1


class Restriction(_Frozen):
    type: str
    until: date | None = None


class BrokerSession(_Frozen):
    authenticated: bool = True
    competing: bool = False
    connected: bool = True


class Quote(_Frozen):
    symbol: str | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    age_s: Decimal | None = None
    as_of: datetime | None = None
    stale: bool = False


class MarketData(_Frozen):
    """Quotes by symbol and underlying prices by root (``""`` = the one underlying of the case)."""

    quotes: dict[str, Quote] = Field(default_factory=dict)
    underlying_prices: dict[str, Decimal] = Field(default_factory=dict)

    def quote_for(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol.replace(" ", "").upper())

    def underlying_price(self, root: str) -> Decimal | None:
        return self.underlying_prices.get(root.upper(), self.underlying_prices.get(""))


class AccountState(_Frozen):
    """One account as synced from the broker (field names normalised across brokers)."""

    broker: str
    environment: Environment
    account_id: str
    live_trading_enabled: bool = False
    account_type: AccountType = "margin"
    equity: Decimal | None = None
    previous_equity: Decimal | None = None
    previous_maintenance_margin: Decimal = Decimal("0")
    pattern_day_trader: bool = False
    options_level: int | None = None
    option_buying_power: Decimal | None = None
    stock_buying_power: Decimal | None = None
    cash: Decimal | None = None
    settled_cash: Decimal | None = None
    daytrades_remaining: int | None = None
    daytrades_remaining_future: tuple[int | None, ...] = ()
    broker_day_trade_count: int | None = None
    day_trades_in_window: tuple[DayTradeRecord, ...] | None = None
    total_trades_in_window: int | None = None
    today_executions: tuple[Execution, ...] = ()
    positions: tuple[Position, ...] = ()
    open_orders: tuple[WorkingOrder, ...] = ()
    restrictions: tuple[Restriction, ...] = ()
    trading_blocked: bool = False
    session: BrokerSession | None = None
    snapshot_age_s: Decimal | None = None
    synced_at: datetime | None = None
    base_url: str | None = None
    fields_present: dict[str, bool] = Field(default_factory=dict)


class ServiceFlags(_Frozen):
    """Service-level state around the rules: halt switch, disclosures, declared request environment, and
    whether the connection the order came on is enabled (the registry: verified and its disclosures
    acknowledged)."""

    trading_halted: bool = False
    connection_enabled: bool = True
    missing_disclosures: tuple[str, ...] = ()
    requested_environment: Environment | None = None


class Reason(_Frozen):
    code: str
    severity: Severity
    message: str


class Decision(_Frozen):
    """The engine's answer: the most severe outcome, every reason that fired, the regime used and
    the intermediate values (for debugging and the acceptance cases)."""

    decision: Severity
    reasons: tuple[Reason, ...]
    regime: RegimeName
    computed: dict[str, Any] = Field(default_factory=dict)

    @property
    def reason_codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]
