"""The public contract lookups, `contracts.search` and `contracts.option_chain` (served by gateway-bridge).

Strikes are Decimal (plain decimal strings on the wire).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ibkr_contract.types import PlainDecimal

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


class ContractSearchRequest(BaseModel):
    """`ibkr.<conn>.contracts.search`."""

    model_config = ConfigDict(extra="forbid")

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


class OptionChainRequest(BaseModel):
    """`ibkr.<conn>.contracts.option_chain`."""

    model_config = ConfigDict(extra="forbid")

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
    calls: list[PlainDecimal]
    puts: list[PlainDecimal]
