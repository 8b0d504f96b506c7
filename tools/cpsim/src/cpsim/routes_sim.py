"""The /sim control API of CONTRACT.md (never rate limited, no session needed)."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cpsim import trading
from cpsim.accounts import Account, Position
from cpsim.sim_state import dump_state
from cpsim.state import Fault, SimState
from cpsim.web import (
    ok,
    sim_bool,
    sim_error,
    sim_int,
    sim_json,
    sim_number,
    sim_object,
    sim_seconds,
    sim_str,
    sim_time,
)

ZERO = Decimal(0)
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS")
SIDES_OF_QUOTE = ("bid", "ask", "last")
SIDES = {"B": "B", "BUY": "B", "BOT": "B", "S": "S", "SELL": "S", "SLD": "S"}


def _items(body: Any, key: str) -> list[Any]:
    """A list body, or the list under `key` of an object body, or one object as a list of one."""
    if isinstance(body, dict) and key in body:
        body = body[key]
        if not isinstance(body, list):
            raise sim_error(key, "must be a list")
    return body if isinstance(body, list) else [sim_object(body)]


def account_fields(body: Any, where: str = "") -> dict[str, Any]:
    """The summary fields of CONTRACT.md `POST /sim/accounts/{id}`, validated (nothing is applied here)."""
    body = sim_object(body, where.rstrip(".") or "body")
    out: dict[str, Any] = {}
    if "account_type" in body:
        out["account_type"] = sim_str(body["account_type"], where + "account_type", ("margin", "cash"))
    for key in ("cash", "equity"):
        if key in body:
            out[key] = sim_number(body[key], where + key)
    for key in ("buying_power", "available_funds"):
        if key in body:
            out[key] = None if body[key] is None else sim_number(body[key], where + key)
    if "day_trades_remaining" in body:
        v = body["day_trades_remaining"]
        out["day_trades_remaining"] = None if v is None else sim_int(v, where + "day_trades_remaining", -1)
    if "options_level" in body:
        out["options_level"] = sim_int(body["options_level"], where + "options_level", 0, 4)
    if "title" in body:
        if not isinstance(body["title"], str):
            raise sim_error(where + "title", "must be a string")
        out["title"] = body["title"]
    return out


def apply_account_fields(state: SimState, acct: Account, fields: dict[str, Any]) -> None:
    """Set the fields `account_fields` validated."""
    m = acct.metrics(state.price, state.today())
    if "account_type" in fields:
        acct.account_type = fields["account_type"]
    if "cash" in fields:
        acct.cash = fields["cash"]
    if "equity" in fields:
        acct.cash = fields["equity"] - (m["stock_mv"] + m["option_mv"])
    if "buying_power" in fields:
        acct.buying_power_override = fields["buying_power"]
    if "available_funds" in fields:
        acct.available_funds_override = fields["available_funds"]
    if "day_trades_remaining" in fields:
        acct.set_day_trades_remaining(fields["day_trades_remaining"])
    if "options_level" in fields:
        acct.options_level = fields["options_level"]
    if "title" in fields:
        acct.title = fields["title"]


def _text(raw: dict[str, Any], key: str, where: str, default: str) -> str:
    v = raw.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise sim_error(where + key, "must be a string")
    return str(v)


def _position(state: SimState, raw: Any, where: str) -> Position:
    if not isinstance(raw, dict) or "conid" not in raw:
        raise sim_error(where.rstrip("."), "must be an object with at least conid and quantity")
    conid = sim_int(raw["conid"], where + "conid", 1)
    inst = state.market.get(conid)
    if inst is not None:
        p = trading.position_template(inst)
    else:
        symbol = _text(raw, "symbol", where, str(conid))
        p = Position(conid, symbol, _text(raw, "sec_type", where, "STK").upper(), ZERO, ZERO)
        p.name = _text(raw, "name", where, p.symbol)
    p.quantity = sim_number(raw.get("quantity", 0), where + "quantity")
    avg = raw.get("avg_price", raw.get("market_price", 0))
    p.avg_price = sim_number(avg, where + ("avg_price" if "avg_price" in raw else "market_price"), ZERO)
    if raw.get("market_price") is not None:
        p.market_price = sim_number(raw["market_price"], where + "market_price", ZERO)
    if inst is None:
        if p.sec_type == "OPT":
            p.multiplier = sim_int(raw.get("multiplier", 100), where + "multiplier", 1)
            p.expiry = _text(raw, "expiry", where, "").replace("-", "") or None
            p.strike = sim_number(raw.get("strike", 0), where + "strike", ZERO)
            right = _text(raw, "right", where, "")[:1].upper()
            if right not in ("", "C", "P"):
                raise sim_error(where + "right", "must be C, P, CALL or PUT")
            p.right = right or None
            und = raw.get("underlying")
            und_inst = state.market.stock(_text(raw, "underlying", where, "")) if und is not None else None
            und_conid = raw.get("und_conid")
            p.und_conid = sim_int(und_conid, where + "und_conid", 0) if und_conid else 0
            p.und_conid = p.und_conid or (und_inst.conid if und_inst else 0)
        else:
            p.multiplier = sim_int(raw.get("multiplier", 1), where + "multiplier", 1)
    p.opened_on = None
    return p


def _fault(spec: Any, where: str) -> Fault:
    spec = sim_object(spec, where.rstrip(".") or "body")
    glob = spec.get("path_glob")
    if not isinstance(glob, str) or not glob:
        raise sim_error(where + "path_glob", "is required (a non-empty string)")
    status = spec.get("status")
    method = spec.get("method")
    if method is not None:
        method = sim_str(method, where + "method").upper()
        if method not in METHODS:
            raise sim_error(where + "method", "must be an HTTP method")
    return Fault(
        glob,
        None if status is None else sim_int(status, where + "status", 100, 599),
        spec.get("body"),
        sim_int(spec.get("delay_ms", 0), where + "delay_ms", 0, 600_000),
        sim_int(spec.get("count", 1), where + "count", 1),
        sim_bool(spec.get("drop_connection", False), where + "drop_connection"),
        sim_bool(spec.get("html", False), where + "html"),
        method,
        sim_bool(spec.get("after", False), where + "after"),
    )


def _execution(state: SimState, raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or "conid" not in raw:
        raise sim_error(where.rstrip("."), "must be an object with time, conid, symbol, side, quantity, price")
    conid = sim_int(raw["conid"], where + "conid", 1)
    when = sim_time(raw["time"], where + "time") if raw.get("time") is not None else state.clock.now()
    side = SIDES.get(_text(raw, "side", where, "BUY").upper())
    if side is None:
        raise sim_error(where + "side", "must be BUY or SELL")
    inst = state.market.get(conid)
    order_id = raw.get("order_id")
    if order_id is not None:
        order_id = sim_int(order_id, where + "order_id")
    return {
        "time": when,
        "conid": conid,
        "symbol": _text(raw, "symbol", where, inst.symbol if inst else str(conid)),
        "side": side,
        "size": sim_number(raw.get("quantity", 0), where + "quantity"),
        "price": sim_number(raw.get("price", 0), where + "price", ZERO),
        "order_id": order_id,
        "order_ref": None if raw.get("order_ref") is None else _text(raw, "order_ref", where, ""),
        "sec_type": inst.sec_type if inst else "STK",
        "exchange": inst.listing_exchange if inst else "ISLAND",
        "company_name": inst.name if inst else "",
        "multiplier": inst.multiplier if inst else 1,
        "description": inst.description if inst else "",
    }


def routes(state: SimState) -> list[Route]:
    """The /sim routes, bound to `state`."""

    async def body_of(request: Request) -> dict[str, Any]:
        return sim_object(await sim_json(request))

    async def reset(request: Request) -> Response:
        body = await body_of(request)
        seed = None if body.get("seed") is None else sim_int(body["seed"], "seed")
        keep_clock = sim_bool(body.get("keep_clock", False), "keep_clock")
        specs = body.get("accounts")
        accounts: list[tuple[str, dict[str, Any]]] = []
        if specs is not None:
            if not isinstance(specs, list) or not specs:
                raise sim_error("accounts", "must be a non-empty list")
            for i, spec in enumerate(specs):
                where = f"accounts[{i}]."
                spec = {"id": spec} if isinstance(spec, str) else sim_object(spec, where.rstrip("."))
                account_id = sim_str(spec.get("id", state.config.accounts[0]), where + "id")
                accounts.append((account_id, account_fields(spec, where)))
        state.reset(seed, [{"id": a} for a, _ in accounts] if accounts else None, keep_clock)
        for account_id, fields in accounts:
            apply_account_fields(state, state.accounts[account_id], fields)
        return ok({"reset": True, "accounts": list(state.accounts), "now": state.clock.now().isoformat()})

    async def login(request: Request) -> Response:
        brokerage = sim_bool((await body_of(request)).get("brokerage", True), "brokerage")
        state.session.login(state.clock.now(), brokerage=brokerage)
        return ok(dump_state(state)["session"])

    async def logout(request: Request) -> Response:
        state.session.logout("logout")
        return ok(dump_state(state)["session"])

    async def competing(request: Request) -> Response:
        state.session.set_competing(sim_bool((await body_of(request)).get("competing", True), "competing"))
        return ok(dump_state(state)["session"])

    def account_of(request: Request) -> Account:
        account_id = request.path_params["account_id"]
        acct = state.accounts.get(account_id)
        if acct is None:
            acct = state.accounts[account_id] = Account(account_id)
        return acct

    async def account(request: Request) -> Response:
        fields = account_fields(await body_of(request))
        acct = account_of(request)
        apply_account_fields(state, acct, fields)
        return ok(dump_state(state)["accounts"][acct.account_id])

    async def positions(request: Request) -> Response:
        body = await sim_json(request)
        items = body.get("positions") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise sim_error("positions", "must be a list of positions (the body, or its `positions` key)")
        rows = [_position(state, raw, f"positions[{i}].") for i, raw in enumerate(items)]
        acct = account_of(request)
        acct.positions = {p.conid: p for p in rows if p.quantity != 0}
        state.positions_cache.pop(acct.account_id, None)
        return ok(dump_state(state)["accounts"][acct.account_id])

    async def prices(request: Request) -> Response:
        body = await body_of(request)
        pins = []
        for key, q in body.items():
            inst = state.market.stock(key) if not key.lstrip("-").isdigit() else state.market.get(int(key))
            conid = inst.conid if inst is not None else int(key) if key.isdigit() and int(key) > 0 else None
            if conid is None:
                raise sim_error(key, "is not an instrument (a symbol of the universe or a conid)")
            q = sim_object(q, key)
            got = {k: None if q.get(k) is None else sim_number(q[k], f"{key}.{k}", ZERO) for k in SIDES_OF_QUOTE}
            pins.append((conid, got))
        out = {}
        for conid, got in pins:
            quote = state.market.set_price(conid, got["bid"], got["ask"], got["last"])
            out[str(conid)] = {"bid": float(quote.bid), "ask": float(quote.ask), "last": float(quote.last)}
        state.dirty = True
        trading.tick(state, state.clock.now())
        return ok(out)

    async def market(request: Request) -> Response:
        body = await body_of(request)
        walk = sim_bool(body["walk"], "walk") if "walk" in body else None
        volatility = sim_number(body["volatility"], "volatility", ZERO) if "volatility" in body else None
        if walk is not None:
            state.market.walk_enabled = walk
        if volatility is not None:
            state.market.volatility = float(volatility)
        return ok({"walk": state.market.walk_enabled, "volatility": state.market.volatility})

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await body_of(request)
            when = sim_time(body["now"], "now") if "now" in body else None
            advance = sim_seconds(body["advance_s"], "advance_s") if "advance_s" in body else None
            target = (when or state.clock.now()) + timedelta(seconds=advance or 0)
            if advance is not None and not 1971 <= target.astimezone(UTC).year <= 2199:  # as sim_time, for hours.py
                raise sim_error("advance_s", "would move the clock outside the years 1971 to 2199")
            if when is not None:
                state.clock.set(when)
            if advance is not None:
                state.clock.advance(advance)
            now = state.clock.now()
            state.session.expire(now)
            trading.tick(state, now)
        return ok({"now": state.clock.now().isoformat(), "offset_s": state.clock.offset_s})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
        elif request.method == "POST":
            body = await sim_json(request)
            specs = body if isinstance(body, list) else [sim_object(body)]
            many = isinstance(body, list)
            state.faults.extend([_fault(spec, f"[{i}]." if many else "") for i, spec in enumerate(specs)])
        return ok({"faults": dump_state(state)["faults"]})

    async def questions(request: Request) -> Response:
        ids = (await body_of(request)).get("message_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise sim_error("message_ids", "must be a list of message id strings")
        state.book.injected = list(ids)
        return ok({"message_ids": state.book.injected})

    async def trades(request: Request) -> Response:
        items = _items(await sim_json(request), "trades")
        rows = [_execution(state, raw, f"trades[{i}].") for i, raw in enumerate(items)]
        acct = account_of(request)
        for row in rows:
            state.book.executions_seq += 1
            acct.executions.append({"execution_id": f"0000e0d5.sim.{state.book.executions_seq:02d}.01", **row})
        return ok({"executions": len(acct.executions)})

    async def limits(request: Request) -> Response:
        if request.method == "POST":
            body = await body_of(request)
            enabled = sim_bool(body["enabled"], "enabled") if "enabled" in body else None
            penalty = sim_seconds(body["penalty_s"], "penalty_s") if "penalty_s" in body else None
            if penalty is not None and penalty < 0:
                raise sim_error("penalty_s", "must be at least 0")
            clear = sim_bool(body.get("clear", False), "clear")
            if enabled is not None:
                state.limits.enabled = enabled
            if penalty is not None:
                state.limits.penalty_s = penalty
            if clear:
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
