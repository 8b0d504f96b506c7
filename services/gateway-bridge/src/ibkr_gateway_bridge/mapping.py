"""IBKR's strings and odd shapes, normalised once: status, side, asset class, snapshot fields, numbers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

#: IBKR order status (any casing/spacing) -> normalised status of ibkr_common.messages.bridge.
ORDER_STATUS: dict[str, str] = {
    "inactive": "inactive",
    "pendingsubmit": "pending_submit",
    "apipending": "pending_submit",
    "presubmitted": "pre_submitted",
    "submitted": "submitted",
    "filled": "filled",
    "pendingcancel": "pending_cancel",
    "apicancelled": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "warnstate": "warn_state",
    "failed": "failed",
}

#: Normalised status -> the lowercase filter value of /iserver/account/orders.
STATUS_FILTER: dict[str, str] = {
    "inactive": "inactive", "pending_submit": "pending_submit", "pre_submitted": "pre_submitted",
    "submitted": "submitted", "filled": "filled", "pending_cancel": "pending_cancel",
    "cancelled": "cancelled", "warn_state": "warn_state",
}

SIDE: dict[str, str] = {
    "B": "BUY", "BUY": "BUY", "BOT": "BUY", "BOUGHT": "BUY",
    "S": "SELL", "SELL": "SELL", "SLD": "SELL", "SOLD": "SELL", "SSHORT": "SELL",
}

ASSET_CLASS: dict[str, str] = {
    "STK": "STK", "ETF": "STK", "OPT": "OPT", "FOP": "FOP", "FUT": "FUT", "CASH": "CASH", "IND": "IND",
    "BOND": "BOND", "BILL": "BOND", "WAR": "WAR", "CFD": "CFD", "FUND": "FUND", "BAG": "BAG", "CRYPTO": "CRYPTO",
}

RIGHT: dict[str, str] = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}

#: IBKR's order types (as placed, and as shown in live orders) -> ours.
ORDER_TYPE_OUT: dict[str, str] = {"MKT": "MKT", "LMT": "LMT", "STP": "STP", "STP_LMT": "STOP_LIMIT"}
ORDER_TYPE_IN: dict[str, str] = {
    "MKT": "MKT", "MARKET": "MKT", "LMT": "LMT", "LIMIT": "LMT", "STP": "STP", "STOP": "STP",
    "STOP_LIMIT": "STP_LMT", "STOPLIMIT": "STP_LMT", "STP_LMT": "STP_LMT", "STOP LIMIT": "STP_LMT",
}

#: Snapshot field ids -> names (REFERENCE.md 7.6).
SNAPSHOT_FIELDS: dict[str, str] = {
    "31": "last", "84": "bid", "85": "ask_size", "86": "ask", "88": "bid_size", "7059": "last_size",
    "87": "volume", "7762": "volume_full", "70": "high", "71": "low", "7295": "open", "7296": "close",
    "7741": "prior_close", "82": "change", "83": "change_pct", "7635": "mark", "55": "symbol", "58": "text",
    "6004": "exchange", "6008": "conid", "6070": "sec_type", "6072": "months", "6073": "regular_expiry",
    "6119": "server_id_marker", "6457": "underlying_conid", "6509": "availability", "7051": "company_name",
    "7094": "conid_exchange", "7219": "contract_description", "7220": "contract_description_2",
    "7221": "listing_exchange", "7280": "industry", "7281": "category", "7282": "avg_volume",
    "7284": "hist_volume_30d", "7087": "hist_vol_pct", "7283": "option_implied_vol_pct",
    "7633": "implied_vol_pct", "7308": "delta", "7309": "gamma", "7310": "theta", "7311": "vega",
    "7089": "option_volume", "7638": "option_open_interest", "7285": "put_call_ratio", "201": "right",
    "7184": "can_be_traded", "7768": "has_trading_permissions", "73": "market_value", "74": "avg_price",
    "75": "unrealized_pnl", "78": "daily_pnl", "79": "realized_pnl", "7920": "daily_pnl_raw",
    "7921": "cost_basis_raw",
}
DEFAULT_SNAPSHOT_FIELDS: tuple[str, ...] = (
    "31", "84", "85", "86", "88", "7059", "87", "70", "71", "7295", "7296", "7741", "82", "83", "7635", "6509",
)
#: Snapshot names typed as Decimal in the Snapshot model.
SNAPSHOT_DECIMALS = (
    "last", "bid", "ask", "bid_size", "ask_size", "last_size", "volume", "high", "low", "open", "close",
    "prior_close", "change", "change_pct", "mark",
)

_SUFFIX = {"K": Decimal(1_000), "M": Decimal(1_000_000), "B": Decimal(1_000_000_000)}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def to_decimal(value: Any) -> Decimal | None:
    """A number from IBKR (float, int, or a string like "1,300", "2.4K", "0.54%", "168.42") as Decimal.

    Floats go through `str()` so 0.1 stays 0.1. Empty, null and unparseable values give None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return None
        return Decimal(str(value))
    text = str(value).strip().replace(",", "")
    if not text:
        return None
    multiplier = Decimal(1)
    if text.endswith("%"):
        text = text[:-1]
    elif text[-1].upper() in _SUFFIX and len(text) > 1:
        multiplier = _SUFFIX[text[-1].upper()]
        text = text[:-1]
    text = text.split(" ", 1)[0]
    if not _NUMBER.match(text):
        return None
    try:
        return Decimal(text) * multiplier if multiplier != 1 else Decimal(text)
    except InvalidOperation:
        return None


def price_flags(value: Any) -> tuple[Decimal | None, bool, bool]:
    """A snapshot last price: (price, is previous close `C`, halted `H`)."""
    if value is None:
        return None, False, False
    text = str(value).strip()
    is_close = halted = False
    while text[:1] in ("C", "H"):
        is_close = is_close or text[0] == "C"
        halted = halted or text[0] == "H"
        text = text[1:]
    return to_decimal(text), is_close, halted


def to_int(value: Any) -> int | None:
    """An int from an int or numeric string ("265598"); None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def id_str(value: Any) -> str | None:
    """An order id that IBKR sends as a string or a number, as a string."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def order_status(value: Any) -> str:
    """Normalised order status; anything unknown is "unknown"."""
    if value is None:
        return "unknown"
    key = re.sub(r"[\s_-]", "", str(value)).lower()
    return ORDER_STATUS.get(key, "unknown")


def side(value: Any) -> str | None:
    """BUY / SELL from B, S, BOT, SLD, Buy, Sell, ..."""
    return SIDE.get(str(value).strip().upper()) if value else None


def asset_class(value: Any) -> str | None:
    """STK, OPT, FUT, ... from IBKR's assetClass / secType / instrument_type."""
    if not value:
        return None
    text = str(value).strip().upper()
    return ASSET_CLASS.get(text, text)


def right(value: Any) -> str | None:
    """C / P from C, CALL, P, PUT."""
    return RIGHT.get(str(value).strip().upper()) if value else None


def order_type_in(value: Any) -> str | None:
    """Our order type from IBKR's (LIMIT, Limit, STOP_LIMIT, ...)."""
    if not value:
        return None
    text = str(value).strip().upper()
    return ORDER_TYPE_IN.get(text, text)


def ms_time(value: Any) -> datetime | None:
    """A UTC time from milliseconds since the epoch."""
    number = to_int(value)
    if number is None or number <= 0:
        return None
    return datetime.fromtimestamp(number / 1000, UTC)


def ibkr_time(value: Any) -> datetime | None:
    """A UTC time from IBKR's `YYMMDDhhmmss` or `YYYYMMDD-HH:MM:SS`."""
    if not value:
        return None
    text = str(value).strip()
    for fmt in ("%y%m%d%H%M%S", "%Y%m%d-%H:%M:%S", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def ibkr_date(value: Any) -> date | None:
    """A date from IBKR's `YYYYMMDD` (string or number)."""
    if not value:
        return None
    text = str(value).strip()
    try:
        return datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        return None


def snapshot_fields(raw: dict[str, Any]) -> dict[str, str]:
    """The named string fields of one snapshot element (unknown numeric ids kept as `f<id>`)."""
    named: dict[str, str] = {}
    for key, value in raw.items():
        if not key.isdigit() or value is None:
            continue
        named[SNAPSHOT_FIELDS.get(key, f"f{key}")] = str(value)
    return named
