"""Gathering the state an order is decided on, over NATS, concurrently and with timeouts.

account.get, positions.get and orders.get (sync-worker; every page of the last two), session.status (session-keeper, the
bridge's session.status when no keeper runs), quotes through `bridge.marketdata.snapshot` for
market-like and multi-leg orders.

When a service does not answer (down, restarting), the last good copy is used instead: the synced
pieces of the account as last read complete (their real age, from the copy's `synced_at`, goes to the
engine, whose freshness gate refuses a copy older than the rule allows), and the session as last read
while younger than `max_age_s` (the rules' maximum snapshot age). With no copy at all the piece is
`missing`, and the caller answers a retryable error rather than deciding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from pydantic import ValidationError

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.connections import AccountView as AccountSettings
from ibkr_common.messages.bridge import Snapshot
from ibkr_common.messages.orders import Instrument, OrderRequest
from ibkr_common.messages.session import SessionStatusResult
from ibkr_common.messages.sync import MAX_PAGE_SIZE, AccountView, OrdersResult, PositionsResult
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.rpc import Rpc, RpcError, RpcUnavailable
from ibkr_common.subjects import Subjects
from ibkr_common.tasks import gather_list
from ibkr_compliance.gathered import Gathered
from ibkr_compliance.instruments import Instruments
from ibkr_compliance.mapping import Lines, account_lines, account_state, position_symbol
from ibkr_compliance.rules import MarketData, Quote, Restriction, parse_occ


@dataclass
class _Pieces:
    fetched: float
    account: AccountView | None
    positions: PositionsResult | None
    orders: OrdersResult | None
    refreshing: bool = False
    #: The symbols of its positions and option orders are learnt (once per copy).
    symbols_known: bool = False
    #: Lines derived from these pieces, by (order left out, Instruments.version).
    lines: dict[tuple[str | None, int], Lines] = field(default_factory=dict)
    #: Served in place of a fresh read that failed (the last good copy).
    last_good: bool = False

    @property
    def complete(self) -> bool:
        return None not in (self.account, self.positions, self.orders)

    @cached_property
    def account_json(self) -> str:
        """The account view as the decision log keeps it (JSON text), once per copy."""
        return self.account.model_dump_json() if self.account is not None else "null"

    @cached_property
    def shown(self) -> frozenset[str]:
        """The client order ids among the synced orders (any status)."""
        return frozenset(o.client_order_id for o in (self.orders.orders if self.orders else ()) if o.client_order_id)

    def lines_for(self, symbols: Instruments, exclude_order: str | None) -> Lines:
        key = (exclude_order, symbols.version)
        found = self.lines.get(key)
        if found is None:
            if len(self.lines) > 8:
                self.lines.clear()
            found = self.lines[key] = account_lines(
                self.positions.positions if self.positions else None, self.orders.orders if self.orders else None,
                symbols.symbols, exclude_order,
            )
        return found


class StateGatherer:
    """Asks the other services for the pieces of one account's state.

    The synced pieces (account, positions, orders) of an account are kept for `cache_s` seconds and
    dropped as soon as an event of the account (positions, orders, account) says they changed; an
    entry past half its life is served and refreshed in the background. They are at most `cache_s`
    older than the sync-worker's copy, which is itself up to a sync interval old (and gated by
    `max_snapshot_age_s` on its `synced_at`). `cache_s` 0 asks every time.
    """

    def __init__(
        self,
        rpc: Rpc,
        bridge: BridgeClient,
        subjects: Subjects,
        instruments: Instruments,
        *,
        environment: Literal["paper", "live"],
        live_accounts: frozenset[str],
        restrictions: Mapping[str, tuple[Restriction, ...]] | None = None,
        timeout_s: float,
        cache_s: float = 0.0,
        max_age_s: float = 60.0,
    ) -> None:
        self.cache_s = cache_s
        self.max_age_s = max_age_s
        self._cache: dict[str, _Pieces] = {}
        self._last_good: dict[str, _Pieces] = {}
        self._session: tuple[float, SessionStatusResult] | None = None
        self._last_session: tuple[float, SessionStatusResult] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.rpc = rpc
        self.bridge = bridge
        self.subjects = subjects
        self.instruments = instruments
        self.environment = environment
        self.live_accounts = live_accounts
        self.restrictions = dict(restrictions or {})
        self.timeout_s = timeout_s

    async def _get(self, subject: str, payload: dict[str, Any], items: str | None = None) -> Any:
        """The result, or None when the piece is unavailable; NOT_FOUND (an account the sync-worker does not
        know) is a ServiceError naming `account_id`. With `items`, every page of a paged command, its
        `items` lists joined into the first page's result."""
        try:
            if items is None:
                return await self.rpc.call(subject, payload, self.timeout_s)
            whole: dict[str, Any] = {}
            async for page in self.rpc.pages(subject, {**payload, "page_size": MAX_PAGE_SIZE}, self.timeout_s):
                if not isinstance(page, dict) or not isinstance(page.get(items), list):
                    return None
                whole = {**page, items: whole.get(items, []) + page[items], "next_cursor": None}
            return whole
        except RpcUnavailable:
            return None
        except RpcError as exc:
            if exc.code == "NOT_FOUND":
                account = payload.get("account_id")
                raise ServiceError(ErrorCode.NOT_FOUND, f"unknown account {account}",
                                   [{"field": "account_id", "message": exc.message or "unknown account"}]) from None
            return None

    async def account_view(self, account_id: str) -> AccountView | None:
        """The synced account summary; NOT_FOUND for an account the sync-worker does not know."""
        return _parse(AccountView, await self._get(self.subjects.account_get, {"account_id": account_id}))

    def forget_session(self) -> None:
        """Ask for the session again next time (a session event came)."""
        self._session = None

    async def session(self) -> SessionStatusResult | None:
        """The session-keeper's view (kept `cache_s`, dropped by session events); the bridge's when no
        keeper answers."""
        cached = self._session
        if cached is not None and self._young(cached[0]):
            return cached[1]
        value = await self._ask_session()
        if value is None:  # nobody answered: the last good session while young enough
            last = self._last_session
            return last[1] if last is not None and time.monotonic() - last[0] < self.max_age_s else None
        self._last_session = (time.monotonic(), value)
        if self.cache_s > 0:
            self._session = self._last_session
        return value

    async def _ask_session(self) -> SessionStatusResult | None:
        try:
            raw = await self.rpc.call(self.subjects.session_status, {}, self.timeout_s)
            return _parse(SessionStatusResult, raw)
        except RpcUnavailable as exc:
            if exc.sent:
                return None
        except RpcError:
            return None
        try:
            status = await self.bridge.session_status()
        except BridgeError:
            return None
        return SessionStatusResult(
            authenticated=status.authenticated and status.connected and not status.competing,
            connected=status.connected, competing=status.competing, in_maintenance=False,
            status="authenticated" if status.authenticated else "unauthenticated", region="us",
        )

    async def _positions(self, account_id: str) -> PositionsResult | None:
        return _parse(PositionsResult, await self._get(self.subjects.positions_get, {"account_id": account_id},
                                                       "positions"))

    async def synced_orders(self, account_id: str) -> OrdersResult | None:
        """Every synced order of the account (every page), newest first; None when unavailable."""
        return _parse(OrdersResult, await self._get(self.subjects.orders_get, {"account_id": account_id}, "orders"))

    def _young(self, fetched: float) -> bool:
        """Whether something fetched at `fetched` (monotonic) is still served from the cache."""
        return time.monotonic() - fetched < self.cache_s

    def fresh(self, account_id: str) -> bool:
        """Whether the account's pieces and the session would come from the cache right now."""
        entry, session = self._cache.get(account_id), self._session
        return entry is not None and self._young(entry.fetched) and session is not None and self._young(session[0])

    def invalidate(self, account_id: str | None = None) -> None:
        """Forget the cached pieces of an account (every account when None)."""
        if account_id is None:
            self._cache.clear()
            self._session = None
        else:
            self._cache.pop(account_id, None)

    async def _fetch(self, account_id: str) -> _Pieces:
        account, positions, orders = await asyncio.gather(
            self.account_view(account_id), self._positions(account_id), self.synced_orders(account_id)
        )
        return _Pieces(time.monotonic(), account, positions, orders)

    async def _refresh(self, account_id: str, entry: _Pieces) -> None:
        try:
            fresh = await self._fetch(account_id)
        except Exception:
            self._cache.pop(account_id, None)
            return
        if fresh.complete:
            self._last_good[account_id] = fresh
        if self._cache.get(account_id) is entry and fresh.complete:
            self._cache[account_id] = fresh
        else:
            entry.refreshing = False

    async def pieces(self, account_id: str) -> _Pieces:
        """The synced pieces of an account, from the cache when young enough."""
        entry = self._cache.get(account_id)
        if entry is not None and self._young(entry.fetched):
            if time.monotonic() - entry.fetched > self.cache_s / 2 and not entry.refreshing:
                entry.refreshing = True
                task = asyncio.get_running_loop().create_task(self._refresh(account_id, entry))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return entry
        fresh = await self._fetch(account_id)
        if fresh.complete:
            self._last_good[account_id] = fresh
            if self.cache_s > 0:
                self._cache[account_id] = fresh
            return fresh
        last = self._last_good.get(account_id)
        if last is not None:  # however old: the freshness gate judges it by its real age (synced_at)
            last.last_good = True
            return last
        return fresh

    async def _instruments(self, request: OrderRequest, quotes: bool) -> tuple[list[str], MarketData]:
        """Engine symbols of the order's instruments; quotes when `quotes`, and the underlying's price of
        every option sold (the uncovered requirement is figured on it, RULES.md section 4.5)."""
        instruments = _instruments_of(request)
        symbols = await gather_list(*(self.instruments.symbol_of(i) for i in instruments))
        roots = sold_option_roots(request, symbols)
        if not quotes and not roots:
            return symbols, MarketData()
        try:
            conids = await gather_list(*(self.instruments.conid_of(i) for i in instruments)) if quotes else []
            stocks = await gather_list(
                *(self.instruments.conid_of(Instrument(symbol=root, sec_type="STK")) for root in roots))
            snaps = await self.bridge.snapshot(sorted({*conids, *stocks}), timeout_s=self.timeout_s)
        except (ServiceError, BridgeError):
            return symbols, MarketData()
        by_conid = {s.conid: s for s in snaps.snapshots}
        result: dict[str, Quote] = {}
        for symbol, conid in zip(symbols, conids, strict=False):
            snap = by_conid.get(conid)
            if snap is not None and not snap.halted and (snap.bid is not None or snap.ask is not None):
                result[symbol] = Quote(symbol=symbol, bid=snap.bid, ask=snap.ask, as_of=snap.updated_at)
        prices: dict[str, Decimal] = {}
        for root, conid in zip(roots, stocks, strict=True):
            price = _price_of(by_conid.get(conid))
            if price is not None:
                prices[root] = price
        return symbols, MarketData(quotes=result, underlying_prices=prices)

    async def gather(self, request: OrderRequest, now: datetime, *, exclude_order: str | None = None,
                     settings: AccountSettings | None = None) -> Gathered:
        """Every piece the engine needs for `request`, fetched concurrently.

        `settings`, the registry's settings of the account when it has them, decide its options level and
        live enablement; without them the synced options level and IBKR_LIVE_ENABLED_ACCOUNTS do."""
        quotes = request.order_type in ("MKT", "STP") or request.legs is not None
        if self.fresh(request.account_id):  # cached: in turn, without tasks
            pieces, session = await self.pieces(request.account_id), await self.session()
            symbols, market = await self._instruments(request, quotes)
        else:
            pieces, session, (symbols, market) = await asyncio.gather(
                self.pieces(request.account_id), self.session(), self._instruments(request, quotes),
            )
        account, positions, orders = pieces.account, pieces.positions, pieces.orders
        missing = [name for name, piece in (("account", account), ("positions", positions), ("orders", orders),
                                            ("session", session)) if piece is None]
        if not pieces.symbols_known:
            for p in positions.positions if positions else ():
                symbol = position_symbol(p)
                if symbol:
                    self.instruments.learn(p.conid, symbol)
            unknown = [o.conid for o in orders.orders if o.conid and o.sec_type in ("OPT", "FOP")] if orders else []
            known = await self.instruments.symbols_of(unknown)
            pieces.symbols_known = len(known) == len(set(unknown))
        lines = pieces.lines_for(self.instruments, exclude_order)
        state = account_state(
            account_id=request.account_id,
            environment=self.environment,
            live_enabled=(settings.live_enabled if settings is not None
                          else request.account_id.upper() in self.live_accounts),
            options_level=settings.options_level if settings is not None else None,
            restrictions=self.restrictions.get(request.account_id.upper(), ()),
            account=account,
            positions=positions.positions if positions else None,
            positions_synced_at=positions.synced_at if positions else None,
            orders=orders.orders if orders else None,
            session=session,
            symbols=self.instruments.symbols,
            now=now,
            exclude_order=exclude_order,
            lines=lines,
        )
        return Gathered(state, market, symbols, _instruments_of(request), missing, account, lines,
                        shown=pieces.shown, last_good=pieces.last_good, account_json=pieces.account_json)


def _instruments_of(request: OrderRequest) -> list[Instrument]:
    if request.legs is not None:
        return [leg.instrument for leg in request.legs]
    assert request.instrument is not None
    return [request.instrument]


def sold_option_roots(request: OrderRequest, symbols: list[str]) -> list[str]:
    """Underlying roots of the options the order sells."""
    sides = [leg.side for leg in request.legs] if request.legs else [request.side]
    roots: list[str] = []
    for symbol, side in zip(symbols, sides, strict=True):
        contract = parse_occ(symbol) if side == "SELL" else None
        if contract is not None and contract.root not in roots:
            roots.append(contract.root)
    return roots


def _price_of(snap: Snapshot | None) -> Decimal | None:
    if snap is None or snap.halted:
        return None
    if snap.last is not None and not snap.last_is_close:
        return snap.last
    if snap.bid is not None and snap.ask is not None:
        return (snap.bid + snap.ask) / 2
    return snap.last


def _parse(model: Any, raw: Any) -> Any:
    if raw is None:
        return None
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def day_trades_used(remaining: int | None, maximum: int) -> int | None:
    """Day trades used in the window as IBKR's counter tells (None when unlimited or unknown)."""
    if remaining is None or remaining < 0:
        return None
    return max(maximum - remaining, 0)


ZERO = Decimal(0)
