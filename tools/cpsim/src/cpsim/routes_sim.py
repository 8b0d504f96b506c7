"""The /sim control API of CONTRACT.md (never rate limited, no session needed)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cpsim import trading
from cpsim.accounts import Account, Position
from cpsim.sim_state import dump_state
from cpsim.state import Fault, SimState
from cpsim.web import ApiError, as_dict, json_body, ok


def _dec(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ApiError(400, {"error": f"{name} must be a number"}) from exc


def _account(state: SimState, account_id: str) -> Account:
    acct = state.accounts.get(account_id)
    if acct is None:
        acct = state.accounts[account_id] = Account(account_id)
    return acct


def apply_account_fields(state: SimState, acct: Account, body: dict[str, Any]) -> None:
    """Set summary fields of an account (see CONTRACT.md `POST /sim/accounts/{id}`)."""
    m = acct.metrics(state.price, state.today())
    if "account_type" in body:
        if body["account_type"] not in ("margin", "cash"):
            raise ApiError(400, {"error": "account_type must be margin or cash"})
        acct.account_type = body["account_type"]
    if "cash" in body:
        acct.cash = _dec(body["cash"], "cash")
    if "equity" in body:
        acct.cash = _dec(body["equity"], "equity") - (m["stock_mv"] + m["option_mv"])
    if "buying_power" in body:
        acct.buying_power_override = (
            None if body["buying_power"] is None else _dec(body["buying_power"], "buying_power")
        )
    if "available_funds" in body:
        v = body["available_funds"]
        acct.available_funds_override = None if v is None else _dec(v, "available_funds")
    if "day_trades_remaining" in body:
        v = body["day_trades_remaining"]
        acct.set_day_trades_remaining(None if v is None else int(v))
    if "options_level" in body:
        acct.options_level = int(body["options_level"])
    if "title" in body:
        acct.title = str(body["title"])


def _position(state: SimState, raw: Any) -> Position:
    if not isinstance(raw, dict) or "conid" not in raw:
        raise ApiError(400, {"error": "each position needs at least conid and quantity"})
    conid = int(raw["conid"])
    inst = state.market.get(conid)
    if inst is not None:
        p = trading.position_template(inst)
    else:
        p = Position(
            conid, str(raw.get("symbol", conid)), str(raw.get("sec_type", "STK")).upper(), Decimal(0), Decimal(0)
        )
        p.name = str(raw.get("name", p.symbol))
    p.quantity = _dec(raw.get("quantity", 0), "quantity")
    p.avg_price = _dec(raw.get("avg_price", raw.get("market_price", 0)), "avg_price")
    if raw.get("market_price") is not None:
        p.market_price = _dec(raw["market_price"], "market_price")
    if inst is None:
        if p.sec_type == "OPT":
            p.multiplier = int(raw.get("multiplier", 100))
            exp = str(raw.get("expiry", "")).replace("-", "")
            p.expiry = exp or None
            p.strike = _dec(raw.get("strike", 0), "strike")
            p.right = str(raw.get("right", ""))[:1].upper() or None
            und = raw.get("underlying")
            und_inst = state.market.stock(str(und)) if isinstance(und, str) else None
            p.und_conid = int(raw.get("und_conid") or (und_inst.conid if und_inst else 0))
        else:
            p.multiplier = int(raw.get("multiplier", 1))
    p.opened_on = None
    return p


def routes(state: SimState) -> list[Route]:
    """The /sim routes, bound to `state`."""

    async def reset(request: Request) -> Response:
        body = as_dict(await json_body(request))
        specs = body.get("accounts")
        accounts = [a if isinstance(a, dict) else {"id": a} for a in specs] if isinstance(specs, list) else None
        state.reset(body.get("seed"), accounts, bool(body.get("keep_clock", False)))
        for spec in accounts or []:
            apply_account_fields(state, state.accounts[str(spec.get("id"))], spec)
        return ok({"reset": True, "accounts": list(state.accounts), "now": state.clock.now().isoformat()})

    async def login(request: Request) -> Response:
        body = as_dict(await json_body(request))
        state.session.login(state.clock.now(), brokerage=body.get("brokerage", True) is not False)
        return ok(dump_state(state)["session"])

    async def logout(request: Request) -> Response:
        state.session.logout("logout")
        return ok(dump_state(state)["session"])

    async def competing(request: Request) -> Response:
        body = as_dict(await json_body(request))
        state.session.set_competing(body.get("competing", True) is not False)
        return ok(dump_state(state)["session"])

    async def account(request: Request) -> Response:
        acct = _account(state, request.path_params["account_id"])
        apply_account_fields(state, acct, as_dict(await json_body(request)))
        return ok(dump_state(state)["accounts"][acct.account_id])

    async def positions(request: Request) -> Response:
        acct = _account(state, request.path_params["account_id"])
        body = await json_body(request)
        items = body.get("positions") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise ApiError(400, {"error": "expected a list of positions"})
        acct.positions = {p.conid: p for p in (_position(state, raw) for raw in items) if p.quantity != 0}
        state.positions_cache.pop(acct.account_id, None)
        return ok(dump_state(state)["accounts"][acct.account_id])

    async def prices(request: Request) -> Response:
        body = as_dict(await json_body(request))
        out = {}
        for key, q in body.items():
            inst = state.market.stock(key) if not str(key).lstrip("-").isdigit() else state.market.get(int(key))
            conid = inst.conid if inst is not None else int(key) if str(key).isdigit() else None
            if conid is None or not isinstance(q, dict):
                raise ApiError(400, {"error": f"unknown instrument {key!r}"})
            got = {k: _dec(q[k], k) if q.get(k) is not None else None for k in ("bid", "ask", "last")}
            quote = state.market.set_price(conid, got["bid"], got["ask"], got["last"])
            out[str(conid)] = {"bid": float(quote.bid), "ask": float(quote.ask), "last": float(quote.last)}
        state.dirty = True
        trading.tick(state, state.clock.now())
        return ok(out)

    async def market(request: Request) -> Response:
        body = as_dict(await json_body(request))
        if "walk" in body:
            state.market.walk_enabled = bool(body["walk"])
        if "volatility" in body:
            state.market.volatility = float(body["volatility"])
        return ok({"walk": state.market.walk_enabled, "volatility": state.market.volatility})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = as_dict(await json_body(request))
            if "now" in body:
                try:
                    state.clock.set(datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00")))
                except ValueError as exc:
                    raise ApiError(400, {"error": "now must be an ISO 8601 time"}) from exc
            if "advance_s" in body:
                state.clock.advance(float(body["advance_s"]))
            now = state.clock.now()
            state.session.expire(now)
            trading.tick(state, now)
        return ok({"now": state.clock.now().isoformat(), "offset_s": state.clock.offset_s})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
        elif request.method == "POST":
            body = await json_body(request)
            for spec in body if isinstance(body, list) else [as_dict(body)]:
                if not isinstance(spec, dict) or not spec.get("path_glob"):
                    raise ApiError(400, {"error": "path_glob is required"})
                state.faults.append(
                    Fault(
                        str(spec["path_glob"]),
                        spec.get("status"),
                        spec.get("body"),
                        int(spec.get("delay_ms", 0)),
                        int(spec.get("count", 1)),
                        bool(spec.get("drop_connection", False)),
                        bool(spec.get("html", False)),
                        spec.get("method"),
                    )
                )
        return ok({"faults": dump_state(state)["faults"]})

    async def questions(request: Request) -> Response:
        body = as_dict(await json_body(request))
        ids = body.get("message_ids", [])
        if not isinstance(ids, list):
            raise ApiError(400, {"error": "message_ids must be a list"})
        state.book.injected = [str(i) for i in ids]
        return ok({"message_ids": state.book.injected})

    async def trades(request: Request) -> Response:
        acct = _account(state, request.path_params["account_id"])
        body = await json_body(request)
        items = body if isinstance(body, list) else [body]
        for raw in items:
            if not isinstance(raw, dict) or "conid" not in raw:
                raise ApiError(400, {"error": "each trade needs time, conid, symbol, side, quantity, price"})
            when = datetime.fromisoformat(str(raw.get("time") or state.clock.now().isoformat()).replace("Z", "+00:00"))
            state.book.executions_seq += 1
            inst = state.market.get(int(raw["conid"]))
            side = str(raw.get("side", "BUY")).upper()
            acct.executions.append(
                {
                    "execution_id": f"0000e0d5.sim.{state.book.executions_seq:02d}.01",
                    "time": when,
                    "conid": int(raw["conid"]),
                    "symbol": str(raw.get("symbol") or (inst.symbol if inst else raw["conid"])),
                    "side": "B" if side in ("B", "BUY", "BOT") else "S",
                    "size": _dec(raw.get("quantity", 0), "quantity"),
                    "price": _dec(raw.get("price", 0), "price"),
                    "order_id": raw.get("order_id"),
                    "order_ref": raw.get("order_ref"),
                    "sec_type": inst.sec_type if inst else "STK",
                    "exchange": inst.listing_exchange if inst else "ISLAND",
                    "company_name": inst.name if inst else "",
                    "multiplier": inst.multiplier if inst else 1,
                    "description": inst.description if inst else "",
                }
            )
        return ok({"executions": len(acct.executions)})

    async def limits(request: Request) -> Response:
        if request.method == "POST":
            body = as_dict(await json_body(request))
            if "enabled" in body:
                state.limits.enabled = bool(body["enabled"])
            if "penalty_s" in body:
                state.limits.penalty_s = float(body["penalty_s"])
            if body.get("clear"):
                state.limits.clear()
        return ok(dump_state(state)["limits"])

    async def sim_state(request: Request) -> Response:
        return ok(dump_state(state))

    return [
        Route("/sim/reset", reset, methods=["POST"]),
        Route("/sim/login", login, methods=["POST"]),
        Route("/sim/logout", logout, methods=["POST"]),
        Route("/sim/competing", competing, methods=["POST"]),
        Route("/sim/accounts/{account_id}", account, methods=["POST"]),
        Route("/sim/positions/{account_id}", positions, methods=["POST"]),
        Route("/sim/prices", prices, methods=["POST"]),
        Route("/sim/market", market, methods=["POST"]),
        Route("/sim/clock", clock, methods=["GET", "POST"]),
        Route("/sim/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/sim/questions", questions, methods=["POST"]),
        Route("/sim/trades/{account_id}", trades, methods=["POST"]),
        Route("/sim/limits", limits, methods=["GET", "POST"]),
        Route("/sim/state", sim_state, methods=["GET"]),
    ]
