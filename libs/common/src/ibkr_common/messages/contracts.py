"""Contract models: the public `contracts.search` / `contracts.option_chain` and the bridge's contract reads.

Owned by gateway-bridge. Strikes and prices are Decimal (rendered as strings in replies).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ibkr_common.messages.bridge import BridgeRequest

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MMMYY = re.compile(r"^([A-Z]{3})(\d{2})$")
_YYYYMM = re.compile(r"^(\d{4})-?(\d{2})$")


def normalise_month(value: str) -> str:
    """A contract month as IBKR's `MMMYY` (accepts `JAN26`, `2026-01`, `202601`)."""
    text = value.strip().upper()
    m = _MMMYY.match(text)
    if m and m.group(1) in MONTHS:
        return text
    m = _YYYYMM.match(text)
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{MONTHS[int(m.group(2)) - 1]}{m.group(1)[2:]}"
    raise ValueError("must be a month like JAN26, 2026-01 or 202601")


class ContractSearchRequest(BridgeRequest):
    """`ibkr.<conn>.contracts.search` (public) and `bridge.contracts.search`."""

    symbol: str = Field(min_length=1, max_length=64, description="Ticker or company name.")
    sec_type: Literal["STK", "IND", "BOND", "OPT", "FUT"] | None = None
    name: bool = Field(False, description="Search by company name (blocks strikes for the result).")


class Contract(BaseModel):
    """One search hit: the conid and what IBKR says about the instrument."""

    conid: int
    symbol: str | None = None
    name: str | None = None
    sec_type: str | None = None
    exchange: str | None = None
    header: str | None = None
    option_months: list[str] = []
    derivative_sec_types: list[str] = []


class ContractSearchResult(BaseModel):
    contracts: list[Contract]


class OptionChainRequest(BridgeRequest):
    """`ibkr.<conn>.contracts.option_chain` (public)."""

    underlying_conid: int = Field(gt=0)
    month: str = Field(description="Contract month: JAN26, 2026-01 or 202601.")
    exchange: str | None = Field(None, pattern=r"^[A-Z0-9]{1,16}$")
    sec_type: Literal["OPT", "FOP", "WAR"] = "OPT"

    @field_validator("month")
    @classmethod
    def _month(cls, value: str) -> str:
        return normalise_month(value)


class OptionChain(BaseModel):
    underlying_conid: int
    month: str
    calls: list[Decimal]
    puts: list[Decimal]


class StrikesRequest(OptionChainRequest):
    """`bridge.contracts.strikes`: the same as option_chain (the bridge does the search pre-flight)."""


class ContractInfoRequest(BridgeRequest):
    """`bridge.contracts.info`: GET /iserver/contract/{conid}/info."""

    conid: int = Field(gt=0)


class ContractInfo(BaseModel):
    conid: int
    symbol: str | None = None
    sec_type: str | None = None
    name: str | None = None
    currency: str | None = None
    exchange: str | None = None
    valid_exchanges: list[str] = []
    local_symbol: str | None = None
    trading_class: str | None = None
    multiplier: Decimal | None = None
    strike: Decimal | None = None
    right: Literal["C", "P"] | None = None
    expiry: date | None = None
    underlying_conid: int | None = None
    industry: str | None = None
    category: str | None = None


class SecdefInfoRequest(BridgeRequest):
    """`bridge.contracts.secdef_info`: GET /iserver/secdef/info (derivative conids of a month/strike)."""

    conid: int = Field(gt=0)
    sec_type: Literal["OPT", "FOP", "WAR", "FUT", "CASH", "CFD", "BOND"] = "OPT"
    month: str | None = None
    strike: Decimal | None = None
    right: Literal["C", "P"] | None = None
    exchange: str | None = Field(None, pattern=r"^[A-Z0-9]{1,16}$")

    @field_validator("month")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        return normalise_month(value) if value is not None else None


class DerivativeContract(BaseModel):
    conid: int
    symbol: str | None = None
    sec_type: str | None = None
    right: Literal["C", "P"] | None = None
    strike: Decimal | None = None
    expiry: date | None = None
    multiplier: Decimal | None = None
    trading_class: str | None = None
    exchange: str | None = None
    currency: str | None = None
    description: str | None = None


class SecdefInfoResult(BaseModel):
    contracts: list[DerivativeContract]


class SecdefRequest(BridgeRequest):
    """`bridge.contracts.secdef`: GET /trsrv/secdef for up to 200 conids."""

    model_config = ConfigDict(extra="forbid")

    conids: list[int] = Field(min_length=1, max_length=200)


class SecdefEntry(BaseModel):
    conid: int
    symbol: str | None = None
    name: str | None = None
    sec_type: str | None = None
    currency: str | None = None
    listing_exchange: str | None = None
    expiry: date | None = None
    right: Literal["C", "P"] | None = None
    strike: Decimal | None = None
    multiplier: Decimal | None = None
    underlying_conid: int | None = None
    has_options: bool | None = None


class SecdefResult(BaseModel):
    contracts: list[SecdefEntry]
