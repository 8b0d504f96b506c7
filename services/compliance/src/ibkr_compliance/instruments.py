"""Contracts: conid -> engine symbol (stock ticker or OCC symbol) and back, through `bridge.contracts.*`.

Contracts do not change, so every answer is cached for the life of the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal

from ibkr_common.messages.contracts import ContractSearchResult, SecdefInfoResult, SecdefResult
from ibkr_common.messages.orders import Instrument
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.rpc import Rpc, RpcError, RpcUnavailable
from ibkr_common.subjects import Subjects
from ibkr_compliance.mapping import contract_symbol, instrument_symbol

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class Instruments:
    """Resolves and caches contracts."""

    def __init__(self, rpc: Rpc, subjects: Subjects, timeout_s: float) -> None:
        self.rpc = rpc
        self.subjects = subjects
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
                result = SecdefResult.model_validate(
                    await self.rpc.call(
                        self.subjects.bridge("contracts.secdef"), {"conids": wanted[:200]}, self.timeout_s
                    )
                )
            except (RpcError, RpcUnavailable) as exc:
                if strict and not (isinstance(exc, RpcError) and exc.code == "NOT_FOUND"):
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
        result = SecdefInfoResult.model_validate(
            await self._call(
                "contracts.secdef_info",
                {"conid": underlying, "sec_type": "OPT", "month": month, "strike": instrument.strike,
                 "right": instrument.right},
            )
        )
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
        result = ContractSearchResult.model_validate(
            await self._call("contracts.search", {"symbol": ticker, "sec_type": "STK"})
        )
        for contract in result.contracts:
            if (contract.symbol or "").upper() == ticker:
                self.learn(contract.conid, ticker)
                return contract.conid
        raise ServiceError(
            ErrorCode.NOT_FOUND, f"no stock {ticker} at the broker",
            [{"field": "instrument.symbol", "message": "unknown symbol"}],
        )

    async def _call(self, operation: str, payload: dict[str, object]) -> object:
        try:
            return await self.rpc.call(self.subjects.bridge(operation), payload, self.timeout_s)
        except RpcUnavailable as exc:
            raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, f"contract lookup failed: {exc}") from None
        except RpcError as exc:
            if exc.code == "NOT_FOUND":
                raise ServiceError(ErrorCode.NOT_FOUND, exc.message) from None
            raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, f"contract lookup failed: {exc}") from None


def _same(a: Decimal | None, b: Decimal | None) -> bool:
    return a is not None and b is not None and a == b
