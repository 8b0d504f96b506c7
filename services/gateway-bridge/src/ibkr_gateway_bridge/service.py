"""The bridge's operations over the typed client: pre-flights, pagination, snapshots, option chains."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.messages import bridge as m
from ibkr_common.messages import contracts as c
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge import mapping, parsing, parsing_contracts
from ibkr_gateway_bridge.client import CpClient
from ibkr_gateway_bridge.orders_desk import OrderDesk
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)
POSITIONS_PAGE_SIZE = 100
MAX_POSITION_PAGES = 50

#: Default queue priority by operation family (callers may pass `priority`).
DEFAULT_PRIORITY = {"session": "session", "orders": "order", "trades": "account", "accounts": "account",
                    "positions": "account", "contracts": "account", "marketdata": "account"}


def priority_of(req: m.BridgeRequest, operation: str) -> str:
    """The request's priority, or the operation's default."""
    if req.priority:
        return req.priority
    if operation in ("orders.live",):
        return "account"
    return DEFAULT_PRIORITY.get(operation.split(".", 1)[0], "account")


class BridgeService:
    """Every bridge operation; handlers are thin wrappers around these methods."""

    def __init__(self, client: CpClient, settings: BridgeSettings, clock: Clock | None = None) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock or SystemClock()
        self.orders = OrderDesk(client, self.clock.now, budget_s=settings.order_budget_s)
        self._snapshot_seen: set[int] = set()
        self._snapshot_epoch = -1
        self._searched: dict[int, str] = {}
        self._searched_epoch = -1

    # ---- session -----------------------------------------------------------------------------

    async def session_status(self, priority: str) -> m.SessionStatus:
        status = parsing.session_status(await self.client.auth_status(priority))
        self._check_session(status.authenticated, status.connected)
        return status

    async def tickle(self, priority: str) -> m.TickleResult:
        result = parsing.tickle(await self.client.tickle(priority), self.clock.now())
        self._check_session(result.authenticated, result.connected)
        return result

    def _check_session(self, authenticated: bool, connected: bool) -> None:
        """An unhealthy answer means the brokerage session IBKR knew is gone: pre-flights start over."""
        if not (authenticated and connected):
            self.client.t.session_lost()

    async def validate(self, priority: str) -> m.ValidateResult:
        return parsing.validate(await self.client.sso_validate(priority), self.clock.now())

    async def init(self, req: m.SessionInitRequest) -> m.SessionStatus:
        return parsing.session_status(await self.client.ssodh_init(req.compete))

    async def reauthenticate(self, priority: str) -> m.ReauthenticateResult:
        body = await self.client.reauthenticate(priority)
        return m.ReauthenticateResult(message=str(body.get("message")) if isinstance(body, dict) and
                                      body.get("message") is not None else None)

    async def logout(self, priority: str) -> m.LogoutResult:
        body = await self.client.logout(priority)
        ok = isinstance(body, dict) and (body.get("status") is True or body.get("confirmed") is True)
        return m.LogoutResult(logged_out=ok)

    # ---- accounts ----------------------------------------------------------------------------

    async def accounts(self, priority: str) -> m.AccountsList:
        return parsing.accounts_list(await self.client.iserver_accounts(priority))

    async def portfolio_accounts(self, priority: str) -> m.PortfolioAccounts:
        return parsing.portfolio_accounts(await self.client.portfolio_accounts(priority))

    async def summary(self, req: m.AccountRequest, priority: str) -> m.AccountSummary:
        return parsing.account_summary(req.account_id, await self.client.portfolio_summary(req.account_id, priority))

    async def ledger(self, req: m.AccountRequest, priority: str) -> m.Ledger:
        return parsing.ledger(req.account_id, await self.client.portfolio_ledger(req.account_id, priority))

    async def pnl(self, priority: str) -> m.Pnl:
        return parsing.pnl(await self.client.pnl_partitioned(priority))

    # ---- positions ---------------------------------------------------------------------------

    async def positions_page(self, req: m.PositionsPageRequest, priority: str) -> m.Positions:
        raw = await self.client.positions_page(req.account_id, req.page, priority)
        items = raw if isinstance(raw, list) else []
        read, received, unreadable = parsing.positions_read(req.account_id, raw)
        return m.Positions(account_id=req.account_id, positions=read, page=req.page,
                           has_more=len(items) >= POSITIONS_PAGE_SIZE, received=received, unreadable=unreadable)

    async def positions_all(self, req: m.AccountRequest, priority: str) -> m.Positions:
        out: list[m.Position] = []
        received = unreadable = 0
        for page in range(MAX_POSITION_PAGES):
            got = await self.positions_page(m.PositionsPageRequest(account_id=req.account_id, page=page), priority)
            out.extend(got.positions)
            received += got.received
            unreadable += got.unreadable
            if not got.has_more:
                break
        return m.Positions(account_id=req.account_id, positions=out, received=received, unreadable=unreadable)

    async def position(self, req: m.PositionRequest, priority: str) -> m.Positions:
        raw = await self.client.position_by_conid(req.account_id, req.conid, priority)
        read, received, unreadable = parsing.positions_read(req.account_id, raw)
        return m.Positions(account_id=req.account_id, positions=read, received=received, unreadable=unreadable)

    async def invalidate(self, req: m.AccountRequest, priority: str) -> m.InvalidateResult:
        await self.client.invalidate_positions(req.account_id, priority)
        return m.InvalidateResult(invalidated=True)

    # ---- contracts ---------------------------------------------------------------------------

    def _searched_now(self) -> dict[int, str]:
        if self._searched_epoch != self.client.t.epoch:
            self._searched, self._searched_epoch = {}, self.client.t.epoch
        return self._searched

    async def search(self, req: c.ContractSearchRequest, priority: str) -> c.ContractSearchResult:
        raw = await self.client.secdef_search(req.symbol.strip(), req.sec_type, req.name, priority)
        found = parsing_contracts.search(raw)
        if not req.name:
            searched = self._searched_now()
            for contract in found:
                searched[contract.conid] = contract.symbol or req.symbol
        return c.ContractSearchResult(contracts=found)

    async def _ensure_searched(self, conid: int, priority: str) -> None:
        """secdef/search must precede strikes/info for an underlier (REFERENCE 4.4)."""
        if conid in self._searched_now():
            return
        info = parsing_contracts.contract_info(conid, await self.client.contract_info(conid, priority))
        if not info.symbol:
            raise ServiceError(ErrorCode.NOT_FOUND, f"conid {conid} is not known to IBKR",
                               [{"field": "underlying_conid", "message": "unknown conid"}])
        sec_type = "IND" if info.sec_type == "IND" else None
        await self.search(c.ContractSearchRequest(symbol=info.symbol, sec_type=sec_type), priority)
        self._searched_now().setdefault(conid, info.symbol)

    async def option_chain(self, req: c.OptionChainRequest, priority: str) -> c.OptionChain:
        await self._ensure_searched(req.underlying_conid, priority)
        raw = await self.client.secdef_strikes(req.underlying_conid, req.month, req.sec_type, req.exchange, priority)
        calls, puts = parsing_contracts.strikes(raw)
        return c.OptionChain(underlying_conid=req.underlying_conid, month=req.month,
                             calls=sorted(set(calls)), puts=sorted(set(puts)))

    async def contract_info(self, req: c.ContractInfoRequest, priority: str) -> c.ContractInfo:
        return parsing_contracts.contract_info(req.conid, await self.client.contract_info(req.conid, priority))

    async def secdef_info(self, req: c.SecdefInfoRequest, priority: str) -> c.SecdefInfoResult:
        if req.sec_type in ("OPT", "FOP", "WAR"):
            await self._ensure_searched(req.conid, priority)
        strike = None if req.strike is None else _plain(req.strike)
        raw = await self.client.secdef_info(req.conid, req.sec_type, req.month, strike, req.right, req.exchange,
                                            priority)
        return c.SecdefInfoResult(contracts=parsing_contracts.secdef_info(raw))

    async def secdef(self, req: c.SecdefRequest, priority: str) -> c.SecdefResult:
        return c.SecdefResult(contracts=parsing_contracts.secdef(await self.client.trsrv_secdef(req.conids, priority)))

    # ---- market data -------------------------------------------------------------------------

    async def snapshot(self, req: m.SnapshotRequest, priority: str) -> m.Snapshots:
        """The first snapshot of a conid only opens the stream: call once more after a pause."""
        fields = list(dict.fromkeys(req.fields or mapping.DEFAULT_SNAPSHOT_FIELDS))
        conids = list(dict.fromkeys(req.conids))
        rows = await self._snapshot_rows(conids, fields, priority)
        # read the memory after the call: the call itself may have found a new session (a new epoch)
        if self._snapshot_epoch != self.client.t.epoch:
            self._snapshot_seen, self._snapshot_epoch = set(), self.client.t.epoch
        missing = [cid for cid in conids if not rows.get(cid, (None, False))[1]]
        new = [cid for cid in missing if cid not in self._snapshot_seen]
        self._snapshot_seen.update(conids)
        if new:
            await asyncio.sleep(self.settings.snapshot_preflight_delay_s)
            rows.update(await self._snapshot_rows(new, fields, priority))
        snaps = [rows[cid][0] for cid in conids if cid in rows and rows[cid][0] is not None]
        complete = all(rows.get(cid, (None, False))[1] for cid in conids)
        return m.Snapshots(snapshots=[s for s in snaps if s is not None], complete=complete)

    async def _snapshot_rows(self, conids: list[int], fields: list[str], priority: str
                             ) -> dict[int, tuple[m.Snapshot | None, bool]]:
        raw = await self.client.snapshot(conids, fields, priority)
        rows: dict[int, tuple[m.Snapshot | None, bool]] = {}
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, dict):
                snap, has_data = parsing_contracts.snapshot(item)
                if snap is not None:
                    rows[snap.conid] = (snap, has_data)
        return rows


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
