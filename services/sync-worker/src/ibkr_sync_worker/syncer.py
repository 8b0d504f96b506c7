"""One sync round: read the broker through the bridge, diff against the database, write and announce.

Per account: summary, then every positions page (a failed or unreadable page makes the read
incomplete: upserts still happen, closes never do). Once per round: live orders and executions
(both limited to 1 request / 5 s by IBKR, so never per account). Problems are published as
`sync.problem` once when they appear, and again only after they were resolved and came back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ibkr_common.bridge_client import BridgeClient, BridgeError
from ibkr_common.clock import Clock
from ibkr_common.events import EventPublisher
from ibkr_common.messages import bridge
from ibkr_common.messages.sync import AccountSyncSummary, SyncProblem
from ibkr_common.replies import ErrorCode
from ibkr_sync_worker.normalize import (
    BadRecord,
    OrderRecord,
    PositionRecord,
    fill_from_trade,
    merge_fills,
    order_from_live,
    order_from_status,
    order_from_trades,
    position_from_bridge,
    trade_order_id,
    with_fills,
)
from ibkr_sync_worker.normalize_account import account_from_summary
from ibkr_sync_worker.pnl import check_pnl
from ibkr_sync_worker.settings import SyncSettings
from ibkr_sync_worker.store import AccountSnapshot, SyncStore

log = logging.getLogger("ibkr_sync_worker.syncer")
PAGE_SIZE = 100
MAX_PAGES = 1000


#: Open orders missing from the live list that are looked up (orders.status) per round.
VANISHED_PER_ROUND = 10

class SyncAborted(Exception):
    """The round could not run at all (not authenticated, bridge absent, unknown account)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class SyncResult:
    synced_at: datetime
    accounts: list[AccountSyncSummary] = field(default_factory=list)
    problems: list[SyncProblem] = field(default_factory=list)
    events: int = 0
    rows_written: int = 0
    positions: int = 0
    orders: int = 0
    fills_seen: bool = False


@dataclass
class _Round:
    problems: list[SyncProblem] = field(default_factory=list)

    def problem(self, kind: str, account_id: str | None, message: str, **details: Any) -> None:
        log.warning("sync problem %s (%s): %s", kind, account_id or "-", message)
        self.problems.append(SyncProblem(kind=kind, account_id=account_id, message=message, details=details))


class Syncer:
    """Runs sync rounds; callers serialise them (see triggers.SyncScheduler)."""

    def __init__(
        self,
        bridge_client: BridgeClient,
        store: SyncStore,
        publisher: EventPublisher,
        settings: SyncSettings,
        clock: Clock,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.bridge = bridge_client
        self.store = store
        self.publisher = publisher
        self.settings = settings
        self.clock = clock
        self.on_committed = on_committed
        #: An account's option level (None: unknown); the schedule of a connection sets the registry's.
        self.options_level_of: Callable[[str], int | None] = settings.options_level_of
        self.paused = False
        self.marks: dict[str, dict[str, datetime]] = {}
        self._open_problems: dict[str | None, set[str]] = {}

    # ---- the round -----------------------------------------------------------------------------

    async def sync(self, accounts: set[str] | None = None) -> SyncResult:
        """Sync `accounts` (None: every account the broker lists). Raises SyncAborted when it cannot run."""
        rnd = _Round()
        try:
            listed = await self.bridge.accounts()
        except BridgeError as exc:
            self._abort_on(exc)
            rnd.problem("accounts_failed", None, str(exc), code=exc.code)
            await self._publish_problems(rnd, None, full=accounts is None)
            raise SyncAborted(exc.code, exc.message) from None
        self.paused = False
        broker = set(listed.accounts)
        known = set(await self.store.known_accounts())
        for gone in sorted(known - broker):
            if accounts is None or gone in accounts:
                rnd.problem("account_missing", gone, "the broker no longer lists this account; its last "
                            "synced state is kept")
        if accounts is None:
            targets = sorted(broker)
        else:
            unknown = accounts - broker - known
            if unknown:
                raise SyncAborted(ErrorCode.NOT_FOUND, f"unknown account {sorted(unknown)[0]}")
            targets = sorted(accounts & broker)
        snapshots = {a: AccountSnapshot(a) for a in targets}
        for account_id in targets:
            await self._read_account(snapshots[account_id], rnd)
        await self._read_orders(snapshots, rnd)
        result = SyncResult(synced_at=self.clock.now())
        for account_id in targets:
            await self._apply(snapshots[account_id], rnd, result)
        result.problems = rnd.problems
        await self._publish_problems(rnd, set(targets) | (known - broker), full=accounts is None)
        return result

    def _abort_on(self, exc: BridgeError) -> None:
        if exc.not_authenticated:
            if not self.paused:
                log.info("session not authenticated: syncs paused until it is again")
            self.paused = True

    async def _read_account(self, snap: AccountSnapshot, rnd: _Round) -> None:
        acct = snap.account_id
        try:
            summary = await self.bridge.summary(acct)
            snap.account = account_from_summary(summary, self.options_level_of(acct))
            snap.account_raw = summary.model_dump(mode="json")
            self._mark(acct, "account")
        except BridgeError as exc:
            self._raise_if_unauthenticated(exc)
            rnd.problem("summary_failed", acct, str(exc), code=exc.code)
        except BadRecord as exc:
            rnd.problem("summary_unreadable", acct, str(exc))
        positions, complete = await self._read_positions(acct, rnd)
        snap.positions = positions
        snap.positions_complete = complete
        if complete:
            self._mark(acct, "positions")

    def _raise_if_unauthenticated(self, exc: BridgeError) -> None:
        if exc.not_authenticated:
            self._abort_on(exc)
            raise SyncAborted(exc.code, exc.message)

    async def _read_positions(self, acct: str, rnd: _Round) -> tuple[list[PositionRecord] | None, bool]:
        if self.settings.invalidate_positions:
            try:
                await self.bridge.invalidate_positions(acct)
            except BridgeError as exc:
                self._raise_if_unauthenticated(exc)
                rnd.problem("positions_invalidate_failed", acct, str(exc), code=exc.code)
        out: list[PositionRecord] = []
        complete = True
        mismatches = []
        for page in range(MAX_PAGES):
            try:
                body = await self.bridge.positions_page(acct, page)
            except BridgeError as exc:
                self._raise_if_unauthenticated(exc)
                rnd.problem("positions_page_failed", acct, f"page {page}: {exc}; no position is closed this round",
                            page=page, code=exc.code)
                return (out or None), False
            items = body.get("positions") if isinstance(body, dict) else None
            if not isinstance(items, list):
                rnd.problem("positions_page_unreadable", acct, f"page {page} has no positions list", page=page)
                return (out or None), False
            if isinstance(body.get("unreadable"), int) and body["unreadable"] > 0:
                complete = False  # the bridge could not read some entries (also on the last page)
                rnd.problem("position_unreadable", acct, f"page {page}: {body['unreadable']} position(s) were not "
                            "readable; no position is closed this round", page=page)
            elif body.get("has_more") and len(items) < PAGE_SIZE:
                complete = False  # the bridge dropped entries it could not read from a full page
                rnd.problem("position_unreadable", acct, f"page {page}: {PAGE_SIZE - len(items)} position(s) "
                            "were not readable; no position is closed this round", page=page)
            for raw in items:
                try:
                    record = position_from_bridge(bridge.Position.model_validate(raw), acct)
                except (ValidationError, BadRecord) as exc:
                    complete = False
                    conid = raw.get("conid") if isinstance(raw, dict) else None
                    rnd.problem("position_unreadable", acct, f"page {page}: {_first_error(exc)}", page=page,
                                conid=conid)
                    continue
                record, mismatch = check_pnl(record, self.settings.pnl_tolerance_abs,
                                             self.settings.pnl_tolerance_rel)
                if mismatch is not None:
                    mismatches.append(mismatch.details())
                out.append(record)
            if len(items) < PAGE_SIZE and not body.get("has_more"):
                break
        else:
            rnd.problem("positions_too_many_pages", acct, f"stopped after {MAX_PAGES} pages")
            complete = False
        if mismatches:
            rnd.problem("pnl_mismatch", acct, f"{len(mismatches)} unrealized P&L figure(s) disagree with "
                        "(price - cost) x quantity x multiplier; the computed figure is stored",
                        positions=mismatches[:50])
        return out, complete

    async def _read_orders(self, snapshots: dict[str, AccountSnapshot], rnd: _Round) -> None:
        if not snapshots:
            return
        live: dict[str, dict[str, OrderRecord]] = defaultdict(dict)
        live_ok = False
        only = next(iter(snapshots)) if len(snapshots) == 1 else None
        try:
            body = await self.bridge.live_orders()
            items = _items(body, "orders")
            live_ok = True
            for raw in items:
                try:
                    order = bridge.LiveOrder.model_validate(raw)
                    acct = order.account_id or only
                    if acct is None:
                        raise BadRecord(f"order {order.order_id} names no account")
                    if acct in snapshots:
                        live[acct][str(order.order_id)[:32]] = order_from_live(order, acct)
                except (ValidationError, BadRecord) as exc:
                    rnd.problem("order_unreadable", None, _first_error(exc),
                                order_id=raw.get("order_id") if isinstance(raw, dict) else None)
            if isinstance(body, dict) and body.get("complete") is False:
                rnd.problem("orders_incomplete", None, "the gateway's live orders were still loading")
        except BridgeError as exc:
            self._raise_if_unauthenticated(exc)
            rnd.problem("orders_failed", None, str(exc), code=exc.code)
        trades: dict[str, dict[str, list[bridge.Trade]]] = defaultdict(lambda: defaultdict(list))
        traded: set[str] = set()  # accounts whose executions were read
        # The gateway's trades are the selected account's: with several accounts, each is asked for by id
        # (the endpoint allows one call per 5 s, so a round takes 5 s more per extra account).
        for asked in [None] if only else list(snapshots):
            try:
                body = await self.bridge.trades(self.settings.trades_days, asked)
            except BridgeError as exc:
                self._raise_if_unauthenticated(exc)
                rnd.problem("trades_failed", asked, str(exc), code=exc.code)
                continue
            traded |= {asked} if asked else set(snapshots)
            for raw in _items(body, "trades"):
                try:
                    trade = bridge.Trade.model_validate(raw)
                    acct = trade.account_id or asked or only
                    if acct in snapshots:
                        trades[acct][trade_order_id(trade)].append(trade)
                except ValidationError as exc:
                    rnd.problem("trade_unreadable", asked, _first_error(exc))
        trades_ok = bool(traded)
        if not (live_ok or trades_ok):
            return
        for acct, snap in snapshots.items():
            orders: dict[str, tuple[OrderRecord, bool]] = {oid: (o, True) for oid, o in live[acct].items()}
            for oid, executions in trades[acct].items():
                if oid in orders:
                    record = orders[oid][0]
                    fills = merge_fills([fill_from_trade(t) for t in executions])
                    orders[oid] = (with_fills(record, fills), True)
                else:
                    orders[oid] = (order_from_trades(oid, acct, executions), False)
            if live_ok:
                await self._recheck_vanished(acct, orders, rnd)
            snap.orders = orders
            if live_ok and acct in traded:
                self._mark(acct, "orders")

    async def _recheck_vanished(self, acct: str, orders: dict[str, tuple[OrderRecord, bool]], rnd: _Round) -> None:
        """Open orders the live list no longer shows are asked about one by one, never guessed closed."""
        try:
            stored = await self.store.open_orders(acct)
        except Exception as exc:
            rnd.problem("store_failed", acct, f"open orders not readable: {type(exc).__name__}")
            return
        vanished = [oid for oid in stored if oid not in orders][:VANISHED_PER_ROUND]
        unconfirmed = []
        for oid in vanished:
            try:
                status = await self.bridge.order_status(oid)
            except BridgeError as exc:
                self._raise_if_unauthenticated(exc)
                unconfirmed.append(oid)
                continue
            orders[oid] = (order_from_status(status, stored[oid]), True)
        if unconfirmed:
            rnd.problem("orders_unconfirmed", acct, f"{len(unconfirmed)} open order(s) are missing from the live "
                        "orders and IBKR gives no status for them; their last known state is kept",
                        order_ids=unconfirmed)

    async def _apply(self, snap: AccountSnapshot, rnd: _Round, result: SyncResult) -> None:
        acct = snap.account_id
        try:
            applied = await self.store.apply(snap, self.clock.now(), self.marks.get(acct, {}))
        except Exception as exc:
            log.exception("storing account %s failed", acct)
            rnd.problem("store_failed", acct, f"{type(exc).__name__}: {exc}"[:500])
            return
        if applied.events:
            self.on_committed()
        p, o = applied.positions, applied.orders
        if p.figures_lost:
            rnd.problem("position_figures_unreadable", acct, f"{len(p.figures_lost)} position(s) came with "
                        "unreadable figures; their last synced values are kept",
                        positions=[{"conid": c, "fields": f} for c, f in list(p.figures_lost.items())[:50]])
        result.accounts.append(AccountSyncSummary(
            account_id=acct, positions=p.held, orders=len(snap.orders or {}),
            opened=sum(e.type == "positions.opened" for e in p.events),
            changed=sum(e.type == "positions.changed" for e in p.events),
            closed=len(p.closes), order_events=len(o.events), account_updated=applied.account.event is not None,
            rows_written=applied.rows_written, complete=snap.positions_complete,
        ))
        result.events += applied.events
        result.rows_written += applied.rows_written
        result.positions += p.held
        result.orders += len(snap.orders or {})
        result.fills_seen = result.fills_seen or o.new_fills > 0

    def _mark(self, account_id: str, part: str) -> None:
        self.marks.setdefault(account_id, {})[part] = self.clock.now()

    # ---- problems ------------------------------------------------------------------------------

    async def _publish_problems(self, rnd: _Round, covered: set[str] | None, *, full: bool) -> None:
        """Publish problems not already open; forget open ones of the accounts this round covered."""
        scopes: set[str | None] = set(covered or set())
        if full or covered is None:
            scopes.add(None)
        current: dict[str | None, set[str]] = defaultdict(set)
        for problem in rnd.problems:
            key = problem.kind
            if key not in self._open_problems.get(problem.account_id, set()) and key not in current[problem.account_id]:
                await self.publisher.emit("sync.problem", problem.model_dump(mode="json"),
                                          account_id=problem.account_id, user_id=self.store.user_id)
            current[problem.account_id].add(key)
        for scope in scopes:
            self._open_problems[scope] = current.get(scope, set())
        for scope, keys in current.items():
            if scope not in scopes:
                self._open_problems[scope] = self._open_problems.get(scope, set()) | keys

    # ---- reads for the handlers ----------------------------------------------------------------

    async def synced_at(self, account_id: str, part: str) -> datetime | None:
        """When `part` (account, positions, orders) of an account was last read completely."""
        in_memory = self.marks.get(account_id, {}).get(part)
        if in_memory is not None:
            return in_memory
        return (await self.store.stored_marks(account_id)).get(part)


def _items(body: Any, key: str) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return list(body[key])
    if isinstance(body, list):
        return body
    raise BridgeError("BAD_REPLY", f"no {key} list in the reply", key)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        e = exc.errors()[0]
        return f"{'.'.join(map(str, e['loc']))}: {e['msg']} ({exc.error_count()} problem(s))"
    return str(exc)
