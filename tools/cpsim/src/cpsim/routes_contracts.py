"""Contract and market-data endpoints: secdef search/strikes/info, contract info, trsrv, snapshot."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cpsim import render_contracts as rc
from cpsim.state import SimState
from cpsim.web import ApiError, as_dict, bad_request, int_param, json_body, need_accounts, need_brokerage, need_sso, ok


def _conid_list(raw: Any) -> list[int]:
    if isinstance(raw, list):
        items = [str(x) for x in raw]
    else:
        items = [x.strip() for x in str(raw or "").split(",") if x.strip()]
    if not items:
        raise bad_request("Conid(s) missing")
    out = []
    for item in items:
        try:
            out.append(int(item.split("@")[0]))
        except ValueError as exc:
            raise bad_request(f"Invalid conid: {item}") from exc
    return out


def routes(state: SimState) -> list[Route]:
    """The contract and market-data routes, bound to `state`."""
    market = state.market_ref

    async def search(request: Request) -> Response:
        need_brokerage(state)
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            params.update(as_dict(await json_body(request)))
        symbol = str(params.get("symbol") or "").strip()
        if not symbol:
            raise ApiError(500, {"error": "symbol is required"})
        name_only = str(params.get("name", "")).lower() == "true"
        sec_type = str(params.get("secType") or "STK").upper()
        m = market()
        if name_only:
            found = [i for i in (m.instruments[c] for c in m.by_symbol.values()) if symbol.upper() in i.name.upper()]
        else:
            inst = m.stock(symbol)
            found = [inst] if inst is not None and sec_type in ("STK", "") else []
        out: list[dict[str, Any]] = []
        for inst in found:
            if not name_only:
                state.session.preflight.searched.add(inst.conid)
            out.extend(rc.search_results(m, inst, name_only))
        return ok(out)

    async def strikes(request: Request) -> Response:
        need_brokerage(state)
        qp = request.query_params
        conid = int_param(qp.get("conid"), "conid")
        if conid not in state.session.preflight.searched:
            return ok({"call": [], "put": []})
        values = [float(s) for s in market().strikes(conid, qp.get("month", ""))]
        return ok({"call": values, "put": list(values)})

    async def info(request: Request) -> Response:
        need_brokerage(state)
        qp = request.query_params
        conid = int_param(qp.get("conid"), "conid")
        m = market()
        inst = m.get(conid)
        if inst is None:
            return ok([])
        if inst.sec_type == "OPT":
            return ok([rc.secdef_info(inst)])
        if conid not in state.session.preflight.searched:
            return ok([])
        month = qp.get("month", "")
        if not month:
            raise bad_request("month is required for derivatives")
        strike: Decimal | None = None
        if qp.get("strike"):
            try:
                strike = Decimal(qp["strike"])
            except InvalidOperation as exc:
                raise bad_request("strike must be a number") from exc
        return ok([rc.secdef_info(o) for o in m.options(conid, month, strike, qp.get("right", ""))])

    async def contract_info(request: Request) -> Response:
        need_brokerage(state)
        conid = int_param(request.path_params["conid"], "conid")
        inst = market().get(conid)
        if inst is None:
            raise ApiError(500, {"error": f"Invalid conid: {conid}"})
        return ok(rc.contract_info(inst))

    async def trsrv_secdef(request: Request) -> Response:
        need_sso(state)
        raw: Any = request.query_params.get("conids")
        if request.method == "POST":
            raw = as_dict(await json_body(request)).get("conids")
        conids = _conid_list(raw)
        if len(conids) > 200:
            raise bad_request("at most 200 conids")
        m = market()
        return ok({"secdef": [rc.trsrv_secdef(i) for i in (m.get(c) for c in conids) if i is not None]})

    async def trsrv_stocks(request: Request) -> Response:
        need_sso(state)
        symbols = [s.strip() for s in request.query_params.get("symbols", "").split(",") if s.strip()]
        if not symbols:
            raise bad_request("symbols missing")
        out = {}
        for sym in symbols:
            inst = market().stock(sym) if sym == sym.upper() else None
            if inst is not None:
                out[sym] = rc.trsrv_stocks(inst)
        return ok(out)

    async def snapshot(request: Request) -> Response:
        need_accounts(state)
        qp = request.query_params
        conids = _conid_list(qp.get("conids"))
        if len(conids) > 100:
            raise bad_request("at most 100 conids")
        fields = [f.strip() for f in qp.get("fields", "").split(",") if f.strip()]
        seen = state.session.preflight.snapshot_seen
        now = state.clock.now()
        rows = []
        for conid in conids:
            rows.append(rc.snapshot_row(market(), conid, fields, conid not in seen, now))
            seen.add(conid)
        return ok(rows)

    async def unsubscribe(request: Request) -> Response:
        need_brokerage(state)
        conid = int_param(as_dict(await json_body(request)).get("conid"), "conid")
        seen = state.session.preflight.snapshot_seen
        if conid not in seen:
            raise ApiError(500, {"error": "unknown"})
        seen.discard(conid)
        return ok({"success": True})

    async def unsubscribe_all(request: Request) -> Response:
        need_brokerage(state)
        state.session.preflight.snapshot_seen.clear()
        return ok({"unsubscribed": True})

    return [
        Route("/v1/api/iserver/secdef/search", search, methods=["GET", "POST"]),
        Route("/v1/api/iserver/secdef/strikes", strikes, methods=["GET"]),
        Route("/v1/api/iserver/secdef/info", info, methods=["GET"]),
        Route("/v1/api/iserver/contract/{conid}/info", contract_info, methods=["GET"]),
        Route("/v1/api/trsrv/secdef", trsrv_secdef, methods=["GET", "POST"]),
        Route("/v1/api/trsrv/stocks", trsrv_stocks, methods=["GET"]),
        Route("/v1/api/iserver/marketdata/snapshot", snapshot, methods=["GET"]),
        Route("/v1/api/iserver/marketdata/unsubscribe", unsubscribe, methods=["POST"]),
        Route("/v1/api/iserver/marketdata/unsubscribeall", unsubscribe_all, methods=["GET"]),
    ]
