"""Maps the case format of ``services/compliance/examples/cases-examples.yaml`` onto the engine's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from .config import RulesConfig
from .engine import evaluate
from .hours import NY
from .model import (
    AccountState,
    BrokerSession,
    DayTradeRecord,
    Decision,
    Execution,
    MarketData,
    OrderLeg,
    OrderSpec,
    Position,
    Quote,
    Restriction,
    ServiceFlags,
    WorkingOrder,
    underlying_of,
)


class CaseError(ValueError):
    """A malformed case: names the case and the field."""

    def __init__(self, case_id: str, field: str, problem: str) -> None:
        super().__init__(f"case {case_id}: field {field}: {problem}")
        self.case_id = case_id
        self.field = field


@dataclass(frozen=True)
class CaseInputs:
    case_id: str
    order: OrderSpec
    account: AccountState
    market: MarketData
    config: RulesConfig
    now: datetime
    regime: str | None
    flags: ServiceFlags


_ORDER_TYPES = {"mkt": "market", "lmt": "limit", "stp": "stop", "stp_lmt": "stop_limit", "stop_limit": "stop_limit"}


class _Reader:
    def __init__(self, case_id: str) -> None:
        self.case_id = case_id

    def fail(self, field: str, problem: str) -> CaseError:
        return CaseError(self.case_id, field, problem)

    def dec(self, raw: Any, field: str) -> Decimal | None:
        if raw is None:
            return None
        if isinstance(raw, bool):
            raise self.fail(field, f"expected a number, got {raw!r}")
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            raise self.fail(field, f"expected a number, got {raw!r}") from None

    def req_dec(self, raw: Any, field: str) -> Decimal:
        value = self.dec(raw, field)
        if value is None:
            raise self.fail(field, "missing")
        return value

    def integer(self, raw: Any, field: str) -> int | None:
        value = self.dec(raw, field)
        return int(value) if value is not None else None

    def moment(self, raw: Any, field: str) -> datetime:
        if isinstance(raw, datetime):
            value = raw
        elif isinstance(raw, str):
            try:
                value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise self.fail(field, f"not an ISO 8601 time: {raw!r}") from None
        else:
            raise self.fail(field, f"expected an ISO 8601 time, got {raw!r}")
        return value if value.tzinfo is not None else value.replace(tzinfo=NY)

    def day(self, raw: Any, field: str) -> date:
        if isinstance(raw, datetime):
            return raw.date()
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(str(raw)[:10])
        except ValueError:
            raise self.fail(field, f"not a date: {raw!r}") from None

    def mapping(self, raw: Any, field: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.fail(field, "expected a mapping")
        return raw

    def items(self, raw: Any, field: str) -> list[Any]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise self.fail(field, "expected a list")
        return raw

    def side(self, raw: Any, field: str) -> str:
        text = str(raw or "").lower()
        if text in ("buy", "bot", "b"):
            return "buy"
        if text in ("sell", "sld", "s", "sell_short", "short"):
            return "sell"
        raise self.fail(field, f"side must be buy or sell, got {raw!r}")

    def effect(self, raw: Any) -> str:
        text = str(raw or "auto").lower()
        return text if text in ("open", "close") else "auto"


def _first(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return None


def _unsettled(data: dict[str, Any]) -> bool:
    return any("unsettled" in str(key).lower() and bool(value) for key, value in data.items())


def _order(r: _Reader, raw: dict[str, Any]) -> OrderSpec:
    kind = str(_first(raw, "type", "order_type") or "limit").lower()
    legs = []
    for i, leg in enumerate(r.items(raw.get("legs"), "order.legs")):
        leg = r.mapping(leg, f"order.legs[{i}]")
        if not leg.get("symbol"):
            raise r.fail(f"order.legs[{i}].symbol", "missing")
        legs.append(
            OrderLeg(
                symbol=str(leg["symbol"]).replace(" ", "").upper(),
                side=r.side(leg.get("side"), f"order.legs[{i}].side"),  # type: ignore[arg-type]
                ratio=r.integer(_first(leg, "ratio_qty", "ratio"), f"order.legs[{i}].ratio_qty") or 1,
                position_effect=r.effect(leg.get("position_effect")),  # type: ignore[arg-type]
                price=r.dec(leg.get("price"), f"order.legs[{i}].price"),
            )
        )
    symbol = raw.get("symbol")
    if not legs and not symbol:
        raise r.fail("order.symbol", "missing (and no legs)")
    return OrderSpec(
        symbol=str(symbol).replace(" ", "").upper() if symbol else None,
        side=r.side(raw.get("side"), "order.side") if not legs or raw.get("side") else None,  # type: ignore[arg-type]
        qty=r.req_dec(_first(raw, "qty", "quantity"), "order.qty"),
        order_type=_ORDER_TYPES.get(kind, kind),  # type: ignore[arg-type]
        time_in_force=str(_first(raw, "time_in_force", "tif") or "day").lower(),
        limit_price=r.dec(raw.get("limit_price"), "order.limit_price"),
        stop_price=r.dec(raw.get("stop_price"), "order.stop_price"),
        position_effect=r.effect(raw.get("position_effect")),  # type: ignore[arg-type]
        legs=tuple(legs),
        extended_hours=bool(raw.get("extended_hours", False)),
    )


def _restrictions(r: _Reader, raw: dict[str, Any]) -> tuple[Restriction, ...]:
    result = []
    for i, item in enumerate(r.items(raw.get("restrictions"), "account.restrictions")):
        if isinstance(item, str):
            result.append(Restriction(type=item))
            continue
        item = r.mapping(item, f"account.restrictions[{i}]")
        until = item.get("until")
        kind = _first(item, "type", "kind", "name")
        if kind is None:
            raise r.fail(f"account.restrictions[{i}].type", "missing")
        result.append(
            Restriction(type=str(kind), until=r.day(until, f"account.restrictions[{i}].until") if until else None)
        )
    if raw.get("closing_only"):
        result.append(Restriction(type="closing_only"))
    return tuple(result)


def _account(r: _Reader, raw: dict[str, Any]) -> AccountState:
    broker = str(raw.get("broker") or "").lower()
    if not broker:
        raise r.fail("account.broker", "missing")
    ibkr = broker == "ibkr"
    level_raw = _first(raw, "options_level") if ibkr else _first(raw, "options_trading_level", "options_level")
    if level_raw is None:
        level_raw = raw.get("options_approved_level")
    executions = []
    for i, e in enumerate(r.items(raw.get("today_executions"), "account.today_executions")):
        e = r.mapping(e, f"account.today_executions[{i}]")
        executions.append(
            Execution(
                time=r.moment(e.get("time"), f"account.today_executions[{i}].time"),
                symbol=str(e.get("symbol") or "").replace(" ", "").upper(),
                side=r.side(e.get("side"), f"account.today_executions[{i}].side"),  # type: ignore[arg-type]
                qty=r.req_dec(_first(e, "qty", "quantity"), f"account.today_executions[{i}].qty"),
                price=r.dec(e.get("price"), f"account.today_executions[{i}].price"),
                order_id=str(e["order_id"]) if e.get("order_id") is not None else None,
                position_effect=r.effect(e.get("position_effect")),  # type: ignore[arg-type]
                unsettled_funds=_unsettled(e),
            )
        )
    positions = []
    for i, p in enumerate(r.items(raw.get("positions"), "account.positions")):
        p = r.mapping(p, f"account.positions[{i}]")
        opened = p.get("opened")
        positions.append(
            Position(
                symbol=str(p.get("symbol") or "").replace(" ", "").upper(),
                qty=r.req_dec(_first(p, "qty", "quantity"), f"account.positions[{i}].qty"),
                opened=r.moment(opened, f"account.positions[{i}].opened") if opened else None,
                unsettled_funds=_unsettled(p),
            )
        )
    orders = []
    for i, o in enumerate(r.items(raw.get("open_orders"), "account.open_orders")):
        o = r.mapping(o, f"account.open_orders[{i}]")
        kind = str(_first(o, "type", "order_type") or "limit").lower()
        orders.append(
            WorkingOrder(
                symbol=str(o.get("symbol") or "").replace(" ", "").upper(),
                side=r.side(o.get("side"), f"account.open_orders[{i}].side"),  # type: ignore[arg-type]
                qty=r.req_dec(_first(o, "qty", "quantity"), f"account.open_orders[{i}].qty"),
                position_effect=r.effect(o.get("position_effect")),  # type: ignore[arg-type]
                order_type=_ORDER_TYPES.get(kind, kind),  # type: ignore[arg-type]
                limit_price=r.dec(o.get("limit_price"), f"account.open_orders[{i}].limit_price"),
                status=str(o.get("status") or "new"),
            )
        )
    records = None
    if raw.get("day_trades_in_window") is not None:
        records = []
        for i, d in enumerate(r.items(raw.get("day_trades_in_window"), "account.day_trades_in_window")):
            d = r.mapping(d, f"account.day_trades_in_window[{i}]")
            records.append(
                DayTradeRecord(
                    date=r.day(d.get("date"), f"account.day_trades_in_window[{i}].date"),
                    symbol=d.get("symbol"),
                    count=r.integer(d.get("count", 1), f"account.day_trades_in_window[{i}].count") or 0,
                )
            )
    session_raw = raw.get("session")
    session = None
    if session_raw is not None:
        s = r.mapping(session_raw, "account.session")
        session = BrokerSession(
            authenticated=bool(s.get("authenticated", True)),
            competing=bool(s.get("competing", False)),
            connected=bool(s.get("connected", True)),
        )
    future = tuple(
        r.integer(raw.get(f"daytradesremainingt+{k}"), f"account.daytradesremainingt+{k}") for k in range(1, 5)
    )
    synced = raw.get("synced_at")
    environment = str(raw.get("environment") or "").lower()
    if environment not in ("paper", "live"):
        raise r.fail("account.environment", f"must be paper or live, got {raw.get('environment')!r}")
    account_type = str(raw.get("account_type") or "margin").lower()
    if account_type not in ("margin", "cash"):
        raise r.fail("account.account_type", f"must be margin or cash, got {raw.get('account_type')!r}")
    return AccountState(
        broker=broker,
        environment=environment,  # type: ignore[arg-type]
        account_id=str(raw.get("account_id") or ""),
        live_trading_enabled=bool(raw.get("live_trading_enabled", False)),
        account_type=account_type,  # type: ignore[arg-type]
        equity=r.dec(_first(raw, "netliquidation", "equity") if ibkr else _first(raw, "equity", "netliquidation"),
                     "account.equity"),
        previous_equity=r.dec(
            _first(raw, "last_equity", "previous_close_equity", "previousdaynetliquidation", "previous_day_nlv"),
            "account.last_equity",
        ),
        previous_maintenance_margin=r.dec(
            _first(raw, "last_maintenance_margin", "previous_maintenance_margin", "maintmarginreq"),
            "account.last_maintenance_margin",
        ) or Decimal("0"),
        pattern_day_trader=bool(raw.get("pattern_day_trader") or False),
        options_level=r.integer(level_raw, "account.options_level"),
        option_buying_power=r.dec(
            _first(raw, "availablefunds", "options_buying_power", "option_buying_power") if ibkr
            else _first(raw, "options_buying_power", "option_buying_power", "availablefunds"),
            "account.options_buying_power",
        ),
        stock_buying_power=r.dec(_first(raw, "buying_power", "buyingpower"), "account.buying_power"),
        cash=r.dec(_first(raw, "cash", "totalcashvalue"), "account.cash"),
        settled_cash=r.dec(_first(raw, "settledcash", "settled_cash"), "account.settledcash"),
        daytrades_remaining=r.integer(raw.get("daytradesremaining"), "account.daytradesremaining"),
        daytrades_remaining_future=future if any(v is not None for v in future) else (),
        broker_day_trade_count=r.integer(raw.get("daytrade_count"), "account.daytrade_count"),
        day_trades_in_window=tuple(records) if records is not None else None,
        total_trades_in_window=r.integer(raw.get("total_trades_in_window"), "account.total_trades_in_window"),
        today_executions=tuple(executions),
        positions=tuple(positions),
        open_orders=tuple(orders),
        restrictions=_restrictions(r, raw),
        trading_blocked=bool(raw.get("trading_blocked") or raw.get("account_blocked")),
        session=session,
        snapshot_age_s=r.dec(raw.get("snapshot_age_s"), "account.snapshot_age_s"),
        synced_at=r.moment(synced, "account.synced_at") if synced else None,
        base_url=raw.get("base_url"),
        fields_present={str(k): bool(v) for k, v in r.mapping(raw.get("fields_present"), "fields_present").items()},
    )


def _quote(r: _Reader, raw: Any, field: str, default_symbol: str | None) -> Quote:
    q = r.mapping(raw, field)
    symbol = q.get("symbol") or default_symbol
    as_of = _first(q, "as_of", "time", "timestamp")
    return Quote(
        symbol=str(symbol).replace(" ", "").upper() if symbol else None,
        bid=r.dec(q.get("bid"), f"{field}.bid"),
        ask=r.dec(q.get("ask"), f"{field}.ask"),
        age_s=r.dec(q.get("age_s"), f"{field}.age_s"),
        as_of=r.moment(as_of, f"{field}.as_of") if as_of else None,
        stale=bool(q.get("stale", False)),
    )


def _market(r: _Reader, raw: dict[str, Any], order: OrderSpec) -> MarketData:
    quotes: dict[str, Quote] = {}
    default_symbol = order.symbol
    if raw.get("quote") is not None:
        quote = _quote(r, raw["quote"], "market.quote", default_symbol)
        if quote.symbol:
            quotes[quote.symbol] = quote
    listed = raw.get("quotes")
    if isinstance(listed, dict):
        for symbol, q in listed.items():
            quote = _quote(r, q, f"market.quotes.{symbol}", str(symbol))
            quotes[quote.symbol or str(symbol)] = quote
    else:
        for i, q in enumerate(r.items(listed, "market.quotes")):
            quote = _quote(r, q, f"market.quotes[{i}]", None)
            if quote.symbol is None:
                raise r.fail(f"market.quotes[{i}].symbol", "missing")
            quotes[quote.symbol] = quote
    prices: dict[str, Decimal] = {}
    for root, price in r.mapping(raw.get("underlying_prices"), "market.underlying_prices").items():
        prices[str(root).upper()] = r.req_dec(price, f"market.underlying_prices.{root}")
    single = r.dec(_first(raw, "underlying_price", "underlying_last"), "market.underlying_price")
    if single is not None:
        prices[""] = single
        symbol = order.symbol or (order.legs[0].symbol if order.legs else None)
        if symbol:
            prices.setdefault(underlying_of(symbol), single)
    return MarketData(quotes=quotes, underlying_prices=prices)


def _flags(raw_case: dict[str, Any], account: dict[str, Any]) -> ServiceFlags:
    missing = _first(raw_case, "missing_disclosures") or _first(account, "missing_disclosures") or ()
    halted = raw_case.get("trading_halted") or account.get("trading_halted") or False
    requested = _first(raw_case, "requested_environment", "environment")
    return ServiceFlags(
        trading_halted=bool(halted),
        missing_disclosures=tuple(str(m) for m in missing),
        requested_environment=str(requested).lower() if requested else None,  # type: ignore[arg-type]
    )


def case_inputs(raw_case: dict[str, Any], base: RulesConfig, index: int = 0) -> CaseInputs:
    """Build the engine inputs of one case (``expected`` is never read)."""
    case_id = str(raw_case.get("id") or f"#{index + 1}")
    r = _Reader(case_id)
    if raw_case.get("now") is None:
        raise r.fail("now", "missing")
    now = r.moment(raw_case["now"], "now")
    order = _order(r, r.mapping(raw_case.get("order"), "order"))
    account_raw = r.mapping(raw_case.get("account"), "account")
    if not account_raw:
        raise r.fail("account", "missing")
    try:
        account = _account(r, account_raw)
        config = RulesConfig.from_mapping(r.mapping(raw_case.get("config"), "config"), base)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = ".".join(str(part) for part in error["loc"])
        raise r.fail(location or "case", error["msg"]) from None
    market = _market(r, r.mapping(raw_case.get("market"), "market"), order)
    regime = raw_case.get("regime")
    if regime is not None and str(regime) not in ("legacy_pdt", "intraday_margin", "auto"):
        raise r.fail("regime", f"must be legacy_pdt, intraday_margin or auto, got {regime!r}")
    return CaseInputs(case_id, order, account, market, config, now, regime, _flags(raw_case, account_raw))


def evaluate_case(raw_case: dict[str, Any], base: RulesConfig, index: int = 0) -> tuple[str, Decision]:
    """Evaluate one case of the case format."""
    inputs = case_inputs(raw_case, base, index)
    decision = evaluate(
        inputs.order,
        inputs.account,
        inputs.config,
        inputs.now,
        market=inputs.market,
        regime=inputs.regime,
        flags=inputs.flags,
    )
    return inputs.case_id, decision
