"""The bridge's operations over the typed Client Portal client: pre-flights, pagination, snapshots, option chains."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from ibkr_common.clock import Clock, SystemClock
from ibkr_common.messages import bridge as m
from ibkr_common.messages import contracts as c
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_gateway_bridge import mapping, parsing_contracts
from ibkr_gateway_bridge.client import ClientPortal
from ibkr_gateway_bridge.orders_desk import OrderDesk
from ibkr_gateway_bridge.settings import BridgeSettings

log = logging.getLogger(__name__)
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

    def __init__(self, portal: ClientPortal, settings: BridgeSettings, clock: Clock | None = None) -> None:
        self.portal = portal
        self.settings = settings
        self.clock = clock or SystemClock()
        self.orders = OrderDesk(portal, self.clock.now, budget_s=settings.order_budget_s)
        self._snapshot_seen: set[int] = set()
        self._snapshot_epoch = -1
        self._searched: dict[int, str] = {}
        self._searched_epoch = -1

    # ---- session -----------------------------------------------------------------------------

    async def session_status(self, priority: str) -> m.SessionStatus:
        return await self.portal.auth_status(priority)

    async def tickle(self, priority: str) -> m.TickleResult:
        return await self.portal.tickle(priority)

    async def validate(self, priority: str) -> m.ValidateResult:
        return await self.portal.sso_validate(priority)

    async def init(self, req: m.SessionInitRequest) -> m.SessionStatus:
        return await self.portal.ssodh_init(req.compete)

    async def reauthenticate(self, priority: str) -> m.ReauthenticateResult:
        return await self.portal.reauthenticate(priority)

    async def logout(self, priority: str) -> m.LogoutResult:
        return await self.portal.logout(priority)

    # ---- accounts ----------------------------------------------------------------------------

    async def accounts(self, priority: str) -> m.AccountsList:
        return await self.portal.iserver_accounts(priority)

    async def portfolio_accounts(self, priority: str) -> m.PortfolioAccounts:
        return await self.portal.portfolio_accounts(priority)

    async def summary(self, req: m.AccountRequest, priority: str) -> m.AccountSummary:
        return await self.portal.portfolio_summary(req.account_id, priority)

    async def ledger(self, req: m.AccountRequest, priority: str) -> m.Ledger:
        return await self.portal.portfolio_ledger(req.account_id, priority)

    async def pnl(self, priority: str) -> m.Pnl:
        return await self.portal.pnl_partitioned(priority)

    # ---- positions ---------------------------------------------------------------------------

    async def positions_page(self, req: m.PositionsPageRequest, priority: str) -> m.Positions:
        return await self.portal.positions_page(req.account_id, req.page, priority)

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
        return await self.portal.position_by_conid(req.account_id, req.conid, priority)

    async def invalidate(self, req: m.AccountRequest, priority: str) -> m.InvalidateResult:
        return await self.portal.invalidate_positions(req.account_id, priority)

    # ---- contracts ---------------------------------------------------------------------------

    def _searched_now(self) -> dict[int, str]:
        if self._searched_epoch != self.portal.gateway.epoch:
            self._searched, self._searched_epoch = {}, self.portal.gateway.epoch
        return self._searched

    async def search(self, req: c.ContractSearchRequest, priority: str) -> c.ContractSearchResult:
        found = await self.portal.secdef_search(req.symbol.strip(), req.sec_type, req.name, priority)
        if not req.name:
            searched = self._searched_now()
            for contract in found.contracts:
                searched[contract.conid] = contract.symbol or req.symbol
        return found

    async def _ensure_searched(self, conid: int, priority: str) -> None:
        """secdef/search must precede strikes/info for an underlier (REFERENCE 4.4)."""
        if conid in self._searched_now():
            return
        info = await self.portal.contract_info(conid, priority)
        if not info.symbol:
            raise ServiceError(ErrorCode.NOT_FOUND, f"conid {conid} is not known to IBKR",
                               [{"field": "underlying_conid", "message": "unknown conid"}])
        sec_type = "IND" if info.sec_type == "IND" else None
        await self.search(c.ContractSearchRequest(symbol=info.symbol, sec_type=sec_type), priority)
        self._searched_now().setdefault(conid, info.symbol)

    async def option_chain(self, req: c.OptionChainRequest, priority: str) -> c.OptionChain:
        await self._ensure_searched(req.underlying_conid, priority)
        return await self.portal.secdef_strikes(req.underlying_conid, req.month, req.sec_type, req.exchange,
                                                priority)

    async def contract_info(self, req: c.ContractInfoRequest, priority: str) -> c.ContractInfo:
        return await self.portal.contract_info(req.conid, priority)

    async def secdef_info(self, req: c.SecdefInfoRequest, priority: str) -> c.SecdefInfoResult:
        if req.sec_type in ("OPT", "FOP", "WAR"):
            await self._ensure_searched(req.conid, priority)
        strike = None if req.strike is None else _plain(req.strike)
        return await self.portal.secdef_info(req.conid, req.sec_type, req.month, strike, req.right, req.exchange,
                                             priority)

    async def secdef(self, req: c.SecdefRequest, priority: str) -> c.SecdefResult:
        return await self.portal.trsrv_secdef(req.conids, priority)

    # ---- market data -------------------------------------------------------------------------

    async def snapshot(self, req: m.SnapshotRequest, priority: str) -> m.Snapshots:
        """The first snapshot of a conid only opens the stream: call once more after a pause."""
        fields = list(dict.fromkeys(req.fields or mapping.DEFAULT_SNAPSHOT_FIELDS))
        conids = list(dict.fromkeys(req.conids))
        rows = await self._snapshot_rows(conids, fields, priority)
        # read the memory after the call: the call itself may have found a new session (a new epoch)
        epoch = self.portal.gateway.epoch
        if self._snapshot_epoch != epoch:
            self._snapshot_seen, self._snapshot_epoch = set(), epoch

        def ready(conid: int) -> bool:
            return conid in rows and parsing_contracts.has_data(rows[conid])

        new = [cid for cid in conids if not ready(cid) and cid not in self._snapshot_seen]
        self._snapshot_seen.update(conids)
        if new:
            await asyncio.sleep(self.settings.snapshot_preflight_delay_s)
            rows.update(await self._snapshot_rows(new, fields, priority))
        return m.Snapshots(snapshots=[rows[cid] for cid in conids if cid in rows],
                           complete=all(ready(cid) for cid in conids))

    async def _snapshot_rows(self, conids: list[int], fields: list[str], priority: str) -> dict[int, m.Snapshot]:
        answer = await self.portal.snapshot(conids, fields, priority)
        return {snap.conid: snap for snap in answer.snapshots}


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
