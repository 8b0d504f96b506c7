"""Contracts: conid -> engine symbol (stock ticker or OCC symbol) and back, through `bridge.contracts.*`.

Contracts do not change, so every answer is cached for the life of the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from decimal import Decimal
from typing import TypeVar

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.messages.contracts import ContractSearchRequest, SecdefInfoRequest, SecdefResult
from ibkr_common.messages.orders import Instrument
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_compliance.mapping import contract_symbol, instrument_symbol

R = TypeVar("R")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class Instruments:
    """Resolves and caches contracts."""

    def __init__(self, bridge: BridgeClient, timeout_s: float) -> None:
        self.bridge = bridge
        self.timeout_s = timeout_s
        self.symbols: dict[int, str] = {}
        self.conids: dict[str, int] = {}
        #: Bumped whenever a conid gets a new symbol: what was derived with the old mapping is stale.
        self.version = 0
        self._lock = asyncio.Lock()

    def learn(self, conid: int, symbol: str) -> None:
        """Remember a conid's engine symbol (from positions, say)."""
        if self.symbols.get(conid) != symbol:
            self.version += 1
        self.symbols[conid] = symbol
        self.conids.setdefault(symbol, conid)

    async def symbols_of(self, conids: Iterable[int], *, strict: bool = False) -> dict[int, str]:
        """Engine symbols of conids; unknown ones are asked for in one `bridge.contracts.secdef` call.

        A failed lookup leaves them out, or raises GATEWAY_UNAVAILABLE when `strict`.
        """
        wanted = sorted({c for c in conids if c and c not in self.symbols})
        if wanted:
            try:
                result = await self.bridge.secdef(wanted[:200], timeout_s=self.timeout_s)
            except BridgeError as exc:
                if strict and exc.code != "NOT_FOUND":
                    raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, f"contract lookup failed: {exc}") from None
                result = SecdefResult(contracts=[])
            for entry in result.contracts:
                symbol = contract_symbol(entry.symbol, entry.sec_type, entry.expiry, entry.right, entry.strike)
                if symbol:
                    self.learn(entry.conid, symbol)
        return {c: self.symbols[c] for c in conids if c in self.symbols}

    async def symbol_of(self, instrument: Instrument) -> str:
        """The engine symbol of an order's instrument; NOT_FOUND when the broker does not know it."""
        symbol = instrument_symbol(instrument)
        if symbol is not None:
            return symbol
        assert instrument.conid is not None
        found = (await self.symbols_of([instrument.conid], strict=True)).get(instrument.conid)
        if found is None:
            raise ServiceError(
                ErrorCode.NOT_FOUND, f"contract {instrument.conid} is not known to the broker",
                [{"field": "instrument.conid", "message": "unknown contract"}],
            )
        return found

    async def conid_of(self, instrument: Instrument) -> int:
        """The conid to place an order with; NOT_FOUND when the instrument cannot be found."""
        if instrument.conid is not None:
            return instrument.conid
        symbol = instrument_symbol(instrument)
        assert symbol is not None and instrument.symbol is not None
        if symbol in self.conids:
            return self.conids[symbol]
        underlying = await self._stock_conid(instrument.symbol.upper())
        if instrument.sec_type != "OPT":
            self.learn(underlying, symbol)
            return underlying
        assert instrument.expiry is not None and instrument.strike is not None
        month = f"{MONTHS[instrument.expiry.month - 1]}{instrument.expiry:%y}"
        result = await self._lookup(self.bridge.secdef_info(
            SecdefInfoRequest(conid=underlying, sec_type="OPT", month=month, strike=instrument.strike,
                              right=instrument.right),
            timeout_s=self.timeout_s,
        ))
        for contract in result.contracts:
            if contract.expiry == instrument.expiry and _same(contract.strike, instrument.strike) and (
                contract.right in (None, instrument.right)
            ):
                self.learn(contract.conid, symbol)
                return contract.conid
        raise ServiceError(
            ErrorCode.NOT_FOUND, f"no option {symbol} at the broker",
            [{"field": "instrument", "message": "unknown option series"}],
        )

    async def _stock_conid(self, ticker: str) -> int:
        if ticker in self.conids:
            return self.conids[ticker]
        result = await self._lookup(self.bridge.search(ContractSearchRequest(symbol=ticker, sec_type="STK"),
                                                       timeout_s=self.timeout_s))
        for contract in result.contracts:
            if (contract.symbol or "").upper() == ticker:
                self.learn(contract.conid, ticker)
                return contract.conid
        raise ServiceError(
            ErrorCode.NOT_FOUND, f"no stock {ticker} at the broker",
            [{"field": "instrument.symbol", "message": "unknown symbol"}],
        )

    @staticmethod
    async def _lookup(call: Awaitable[R]) -> R:
        """A contract lookup's result; the bridge's NOT_FOUND stays NOT_FOUND, any other failure means the
        broker could not be asked (GATEWAY_UNAVAILABLE)."""
        try:
            return await call
        except BridgeError as exc:
            if exc.code == "NOT_FOUND":
                raise ServiceError(ErrorCode.NOT_FOUND, exc.message) from None
            raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, f"contract lookup failed: {exc}") from None


def _same(a: Decimal | None, b: Decimal | None) -> bool:
    return a is not None and b is not None and a == b
