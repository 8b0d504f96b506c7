"""Account and portfolio endpoints: /iserver/accounts, summaries, ledger, PnL, positions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cpsim import render_portfolio as rp
from cpsim.accounts import Account, Position
from cpsim.state import SimState
from cpsim.web import (
    ApiError,
    as_dict,
    int_param,
    iserver_account,
    json_body,
    need_accounts,
    need_brokerage,
    need_portfolio,
    need_sso,
    ok,
    portfolio_account,
)

PAGE_SIZE = 100


def _description(state: SimState, p: Position) -> str:
    inst = state.market.get(p.conid)
    if inst is not None:
        return inst.description
    if p.sec_type == "OPT" and p.expiry:
        return f"{p.symbol} {p.expiry} {p.strike.normalize():f} {p.right}"
    return p.symbol


def position_rows(state: SimState, acct: Account) -> list[dict[str, Any]]:
    """Every position of an account, rendered with current prices."""
    now = state.clock.now()
    return [
        rp.position(acct, p, Account.mark(p, state.price), now, _description(state, p)) for p in acct.positions.values()
    ]


def _sorted(rows: list[dict[str, Any]], sort: str, direction: str) -> list[dict[str, Any]]:
    key = sort if sort and rows and sort in rows[0] else "contractDesc"
    return sorted(rows, key=lambda r: (r.get(key) is None, r.get(key) or 0), reverse=direction == "d")


def routes(state: SimState) -> list[Route]:
    """The account/portfolio routes, bound to `state`."""

    def metrics(acct: Account) -> dict[str, Decimal]:
        return acct.metrics(state.price, state.today())

    async def iserver_accounts(request: Request) -> Response:
        need_brokerage(state)
        state.session.preflight.accounts_queried = True
        return ok(rp.iserver_accounts(list(state.accounts.values()), state.selected, state.session.session_id))

    async def switch_account(request: Request) -> Response:
        need_brokerage(state)
        body = as_dict(await json_body(request))
        acct_id = body.get("acctId")
        if not acct_id:
            raise ApiError(400, {"error": "Bad Request: acctId is required", "statusCode": 400})
        if acct_id not in state.accounts:
            raise ApiError(500, {"error": "Invalid account ID"})
        if acct_id == state.selected:
            return ok({"success": "Account already set"})
        state.selected = acct_id
        return ok({"set": True, "acctId": acct_id})

    async def iserver_summary(request: Request) -> Response:
        need_accounts(state)
        acct = iserver_account(state, request.path_params["account_id"])
        return ok(rp.iserver_summary(acct, metrics(acct)))

    async def pnl(request: Request) -> Response:
        need_accounts(state)
        pre = state.session.preflight
        if not pre.pnl_seen:
            pre.pnl_seen = True
            return ok({"upnl": {}})
        acct = state.accounts[state.selected]
        daily = acct.realized_pnl
        for p in acct.positions.values():
            q = state.market.quote(p.conid)
            if q is not None:
                daily += p.quantity * (q.last - q.prior_close) * p.multiplier
        return ok({"upnl": {f"{acct.account_id}.Core": rp.pnl_row(acct, metrics(acct), daily)}})

    async def portfolio_accounts(request: Request) -> Response:
        need_sso(state)
        state.session.portfolio_queried = True
        brokerage = state.session.authenticated
        return ok([rp.portfolio_account(a, brokerage) for a in state.accounts.values()])

    async def meta(request: Request) -> Response:
        need_portfolio(state)
        return ok(rp.portfolio_account(portfolio_account(state, request.path_params["account_id"])))

    async def summary(request: Request) -> Response:
        need_portfolio(state)
        acct = portfolio_account(state, request.path_params["account_id"])
        return ok(rp.portfolio_summary(acct, metrics(acct), state.clock.now()))

    async def ledger(request: Request) -> Response:
        need_portfolio(state)
        acct = portfolio_account(state, request.path_params["account_id"])
        return ok(rp.ledger(acct, metrics(acct), state.clock.now()))

    async def positions(request: Request) -> Response:
        need_portfolio(state)
        acct = portfolio_account(state, request.path_params["account_id"])
        page = int_param(request.path_params["page"], "pageId")
        now = state.clock.now()
        cached = state.positions_cache.get(acct.account_id)
        if cached is None or (now - cached[0]).total_seconds() >= state.config.positions_cache_s or now < cached[0]:
            cached = (now, position_rows(state, acct))
            state.positions_cache[acct.account_id] = cached
        qp = request.query_params
        rows = _sorted(cached[1], qp.get("sort", ""), qp.get("direction", "a"))
        return ok(rows[page * PAGE_SIZE : (page + 1) * PAGE_SIZE] if page >= 0 else [])

    async def position_by_conid(request: Request) -> Response:
        need_portfolio(state)
        acct = portfolio_account(state, request.path_params["account_id"])
        conid = int_param(request.path_params["conid"], "conid")
        return ok([r for r in position_rows(state, acct) if r["conid"] == conid])

    async def positions_any_account(request: Request) -> Response:
        need_portfolio(state)
        conid = int_param(request.path_params["conid"], "conid")
        out: dict[str, Any] = {}
        for acct in state.accounts.values():
            rows = [r for r in position_rows(state, acct) if r["conid"] == conid]
            if rows:
                out[acct.account_id] = rows
        return ok(out)

    async def invalidate(request: Request) -> Response:
        need_portfolio(state)
        acct = portfolio_account(state, request.path_params["account_id"])
        state.positions_cache.pop(acct.account_id, None)
        return ok({"message": "success"})

    async def positions2(request: Request) -> Response:
        need_sso(state)
        acct = portfolio_account(state, request.path_params["account_id"])
        now = state.clock.now()
        out = []
        for r in position_rows(state, acct):
            out.append(
                {
                    "position": r["position"],
                    "conid": str(r["conid"]),
                    "avgCost": r["avgCost"],
                    "avgPrice": r["avgPrice"],
                    "currency": "USD",
                    "description": r["contractDesc"],
                    "isLastToLoq": False,
                    "marketPrice": r["mktPrice"],
                    "marketValue": r["mktValue"],
                    "realizedPnl": r["realizedPnl"],
                    "unrealizedPnl": r["unrealizedPnl"],
                    "secType": r["assetClass"],
                    "timestamp": int(now.timestamp()),
                    "assetClass": r["assetClass"],
                    "sector": None,
                    "group": None,
                    "model": "",
                }
            )
        return ok(out)

    return [
        Route("/v1/api/iserver/accounts", iserver_accounts, methods=["GET"]),
        Route("/v1/api/iserver/account", switch_account, methods=["POST"]),
        Route("/v1/api/iserver/account/pnl/partitioned", pnl, methods=["GET"]),
        Route("/v1/api/iserver/account/{account_id}/summary", iserver_summary, methods=["GET"]),
        Route("/v1/api/portfolio/accounts", portfolio_accounts, methods=["GET"]),
        Route("/v1/api/portfolio/subaccounts", portfolio_accounts, methods=["GET"]),
        Route("/v1/api/portfolio/positions/{conid}", positions_any_account, methods=["GET"]),
        Route("/v1/api/portfolio/{account_id}/meta", meta, methods=["GET"]),
        Route("/v1/api/portfolio/{account_id}/summary", summary, methods=["GET"]),
        Route("/v1/api/portfolio/{account_id}/ledger", ledger, methods=["GET"]),
        Route("/v1/api/portfolio/{account_id}/positions/invalidate", invalidate, methods=["POST"]),
        Route("/v1/api/portfolio/{account_id}/positions/{page}", positions, methods=["GET"]),
        Route("/v1/api/portfolio/{account_id}/position/{conid}", position_by_conid, methods=["GET"]),
        Route("/v1/api/portfolio2/{account_id}/positions", positions2, methods=["GET"]),
    ]
