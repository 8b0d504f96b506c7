"""Contract models: the public `contracts.search` / `contracts.option_chain` (from `ibkr_contract.contracts`) and
the bridge's contract reads. Owned by gateway-bridge. Strikes and prices are Decimal (plain strings in replies).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ibkr_common.messages.bridge import BridgeRequest
from ibkr_contract import contracts as public
from ibkr_contract.contracts import MONTHS, Contract, ContractSearchResult, OptionChain, normalise_month
from ibkr_contract.types import PlainDecimal

__all__ = [
    "MONTHS", "Contract", "ContractInfo", "ContractInfoRequest", "ContractSearchRequest", "ContractSearchResult",
    "DerivativeContract", "OptionChain", "OptionChainRequest", "SecdefEntry", "SecdefInfoRequest", "SecdefInfoResult",
    "SecdefRequest", "SecdefResult", "StrikesRequest", "normalise_month",
]


class ContractSearchRequest(BridgeRequest, public.ContractSearchRequest):
    """`ibkr.<conn>.contracts.search` (public) and `bridge.contracts.search`: the public model, with `priority`."""


class OptionChainRequest(BridgeRequest, public.OptionChainRequest):
    """`ibkr.<conn>.contracts.option_chain` (public), with the bridge's `priority`."""


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
    multiplier: PlainDecimal | None = None
    strike: PlainDecimal | None = None
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
    strike: PlainDecimal | None = None
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
    strike: PlainDecimal | None = None
    expiry: date | None = None
    multiplier: PlainDecimal | None = None
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
    strike: PlainDecimal | None = None
    multiplier: PlainDecimal | None = None
    underlying_conid: int | None = None
    has_options: bool | None = None


class SecdefResult(BaseModel):
    contracts: list[SecdefEntry]
