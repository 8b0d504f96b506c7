"""The pure rules engine: ``evaluate`` runs the checks of RULES.md 7.3 in order and collects every
reason code that fired (block > warn > allow). No I/O besides the bundled XNYS calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from .buying_power import (
    Pricing,
    Requirement,
    cents,
    commission,
    option_buying_power,
    option_requirement,
    price_order,
    working_orders_reserve,
)
from .cash import check_good_faith, check_settled_funds
from .config import RulesConfig
from .gates import check_gates, check_restrictions
from .hours import NY, MarketCalendar, in_ibkr_reset_window, product_hours, trade_date, xnys
from .intraday import apply_intraday_margin
from .legacy import OrderFacts, apply_legacy_pdt, pdt_equity
from .model import (
    AccountState,
    Decision,
    MarketData,
    OrderLeg,
    OrderSpec,
    ServiceFlags,
    Side,
    parse_occ,
    underlying_of,
)
from .options_levels import check_options_level
from .outcome import Outcome
from .regime import choose_regime
from .strategy import LegSpec, Strategy, classify

ZERO = Decimal("0")


def leg_effect(leg: OrderLeg, held: dict[str, Decimal]) -> str:
    """``open`` or ``close``; ``auto`` is inferred from the position in the series."""
    if leg.position_effect in ("open", "close"):
        return leg.position_effect
    quantity = held.get(leg.symbol, ZERO)
    if (leg.side == "sell" and quantity > 0) or (leg.side == "buy" and quantity < 0):
        return "close"
    return "open"


def share_cover(account: AccountState, root: str, order: OrderSpec, config: RulesConfig) -> tuple[Decimal, Decimal]:
    """Free long shares (not pledged to short calls or working sells) and short shares of ``root``."""
    long_shares = ZERO
    short_shares = ZERO
    pledged = ZERO
    for position in account.positions:
        contract = parse_occ(position.symbol)
        if contract is None and position.symbol.upper() == root:
            if position.qty > 0:
                long_shares += position.qty
            else:
                short_shares += -position.qty
        elif contract is not None and contract.root == root and contract.right == "C" and position.qty < 0:
            pledged += -position.qty * config.options_multiplier
    held = {p.symbol: p.qty for p in account.positions}
    for working in account.open_orders:
        if not working.is_working or working.side != "sell":
            continue
        contract = parse_occ(working.symbol)
        if contract is None and working.symbol.upper() == root:
            pledged += working.qty
        elif contract is not None and contract.root == root and contract.right == "C" and (
            working.position_effect == "open"
            or (working.position_effect == "auto" and held.get(working.symbol, ZERO) <= 0)
        ):
            pledged += working.qty * config.options_multiplier
    for leg in order.effective_legs():
        if parse_occ(leg.symbol) is None and leg.symbol.upper() == root and leg.side == "buy":
            long_shares += order.qty * leg.ratio
    return long_shares - pledged, short_shares


@dataclass
class _Order:
    legs: tuple[OrderLeg, ...]
    effects: list[str]
    opening: bool
    option_open: list[tuple[int, LegSpec]]
    is_option: bool


def _describe(order: OrderSpec, account: AccountState) -> _Order:
    held = {p.symbol: p.qty for p in account.positions}
    legs = order.effective_legs()
    effects = [leg_effect(leg, held) for leg in legs]
    option_open: list[tuple[int, LegSpec]] = []
    for index, (leg, effect) in enumerate(zip(legs, effects, strict=True)):
        contract = parse_occ(leg.symbol)
        if contract is not None and effect == "open":
            option_open.append((index, LegSpec(leg.symbol, contract, leg.side, leg.ratio)))
    is_option = any(parse_occ(leg.symbol) is not None for leg in legs)
    return _Order(legs, effects, "open" in effects, option_open, is_option)


def evaluate(
    order: OrderSpec,
    account: AccountState,
    config: RulesConfig,
    now: datetime,
    *,
    market: MarketData | None = None,
    regime: str | None = None,
    flags: ServiceFlags | None = None,
    calendar: MarketCalendar | None = None,
) -> Decision:
    """Decide one order for one account at ``now`` (timezone-aware).

    ``regime``: ``legacy_pdt`` or ``intraday_margin`` as configured for the account, or
    ``None``/``"auto"`` to resolve it (RULES.md 7.2). ``market`` carries quotes and underlying
    prices, ``flags`` the service's halt switch, missing disclosures and requested environment.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    calendar = calendar or xnys()
    market = market or MarketData()
    flags = flags or ServiceFlags()
    out = Outcome()
    today = trade_date(now)
    chosen, resolved = choose_regime(regime, account, today, config)
    out.computed.update(resolved_regime=chosen, regime_resolved_from_account=resolved)
    facts = _describe(order, account)
    out.computed["opening"] = facts.opening

    check_gates(account, flags, now, config, out, opening=facts.opening)
    settled_only = check_restrictions(account, facts.opening, today, out)
    strategy = _check_levels(order, account, facts, config, out)
    pricing = _check_price(order, facts, strategy, market, now, config, out)
    requirement = _check_buying_power(order, account, facts, strategy, pricing, market, config, out)

    leg_quantities: list[tuple[str, Side, Decimal]] = [
        (leg.symbol, leg.side, order.qty * leg.ratio) for leg in facts.legs
    ]
    reduction = requirement.reduction if requirement is not None else None
    if chosen == "legacy_pdt":
        order_facts = OrderFacts(facts.opening, leg_quantities, reduction, facts.is_option)
        apply_legacy_pdt(account, order_facts, config, now, calendar, out)
    else:
        equity = pdt_equity(account, config)
        exempt = equity is not None and equity >= config.pdt_min_equity
        apply_intraday_margin(account, facts.opening, exempt, out)

    check_good_faith(account, leg_quantities, facts.opening, now, config.options_multiplier, out)
    if settled_only and facts.opening and reduction is not None:
        check_settled_funds(account, reduction, out)

    _check_hours(order, account, facts, now, calendar, config, out)
    if out.decision == "allow":
        out.add("OK", "allow", "no warning or block")
    return Decision(decision=out.decision, reasons=tuple(out.reasons), regime=chosen, computed=out.computed)


def _check_levels(
    order: OrderSpec, account: AccountState, facts: _Order, config: RulesConfig, out: Outcome
) -> Strategy | None:
    if not facts.option_open:
        return None
    legs = [spec for _, spec in facts.option_open]
    root = legs[0].contract.root
    free_shares, short_shares = share_cover(account, root, order, config)
    out.computed["free_shares"] = free_shares
    strategy = classify(legs, order.qty, free_shares, short_shares, config.options_multiplier)
    check_options_level(strategy, account, out)
    return strategy


def _needs_price(facts: _Order) -> bool:
    if facts.opening:
        return True
    return any(leg.side == "buy" for leg in facts.legs)


def _check_price(
    order: OrderSpec,
    facts: _Order,
    strategy: Strategy | None,
    market: MarketData,
    now: datetime,
    config: RulesConfig,
    out: Outcome,
) -> Pricing:
    pricing = price_order(order, [leg.side for leg in facts.legs], strategy, market, now, config)
    if pricing.net is not None:
        out.computed["price"] = abs(pricing.net)
    if order.order_type == "market" and _needs_price(facts):
        if pricing.missing_quote:
            out.add("NO_QUOTE_FOR_MARKET_ORDER", "block", "market order without a usable (fresh) quote")
        elif pricing.estimated:
            out.computed["estimated_price"] = pricing.estimated_price
            out.add(
                "MARKET_ORDER_PRICE_ESTIMATED",
                "warn",
                f"market order valued at {pricing.estimated_price} (quote + {config.market_order_price_buffer_pct}%)",
            )
    return pricing


def _check_buying_power(
    order: OrderSpec,
    account: AccountState,
    facts: _Order,
    strategy: Strategy | None,
    pricing: Pricing,
    market: MarketData,
    config: RulesConfig,
    out: Outcome,
) -> Requirement | None:
    if pricing.net is None:
        return None
    if facts.is_option:
        fees = commission(
            account.broker,
            [(order.qty * leg.ratio, pricing.leg_prices.get(i, abs(pricing.net))) for i, leg in enumerate(facts.legs)
             if parse_occ(leg.symbol) is not None],
            config,
        )
        out.computed["commission"] = fees
    else:
        fees = ZERO
    if not facts.opening:
        return None
    if strategy is not None:
        leg_prices = [pricing.leg_prices.get(i) for i, _ in facts.option_open]
        specs = [spec for _, spec in facts.option_open]
        requirement = option_requirement(
            strategy, specs, leg_prices, pricing.net, order.qty, account, market, config, fees
        )
    else:
        cost = cents(abs(pricing.net) * order.qty)
        requirement = Requirement(requirement=cost, reduction=cost, premium=cost)
    out.computed.update(
        premium=requirement.premium,
        requirement=requirement.requirement,
        buying_power_reduction=requirement.reduction,
        order_cost=requirement.reduction,
    )
    if requirement.credit is not None:
        out.computed["credit"] = requirement.credit
    if requirement.debit is not None:
        out.computed["debit"] = requirement.debit
    out.computed.update(requirement.notes)
    power = option_buying_power(account, config) if facts.is_option else (
        account.stock_buying_power if account.account_type == "margin" else option_buying_power(account, config)
    )
    if power is None:
        return requirement
    reserved = working_orders_reserve(account, config) if config.reserve_working_orders else ZERO
    available = power - reserved
    out.computed.update(
        option_buying_power=power, reserved_by_working_orders=reserved, available_buying_power=available
    )
    if requirement.reduction > available:
        out.add(
            "INSUFFICIENT_BUYING_POWER",
            "block",
            f"buying-power reduction {requirement.reduction} exceeds available {available}",
        )
    return requirement


def _check_hours(
    order: OrderSpec,
    account: AccountState,
    facts: _Order,
    now: datetime,
    calendar: MarketCalendar,
    config: RulesConfig,
    out: Outcome,
) -> None:
    contracts = [c for c in (parse_occ(leg.symbol) for leg in facts.legs) if c is not None]
    hours = product_hours(now, contracts, calendar, config)
    out.computed.update(
        market_open=hours.is_open,
        next_session=hours.next_session.isoformat(),
        next_session_open_et=hours.next_open_et.astimezone(NY).strftime("%H:%M"),
        next_session_close_et=hours.next_close_et.astimezone(NY).strftime("%H:%M"),
        underlying=underlying_of(facts.legs[0].symbol),
    )
    if hours.is_open or (not facts.is_option and order.extended_hours):
        pass
    elif order.order_type == "market" and facts.is_option:
        out.add("MARKET_ORDER_OUTSIDE_RTH", "block", "option market order while the options market is closed")
    else:
        out.add(
            "ORDER_QUEUED_UNTIL_NEXT_SESSION",
            "warn",
            f"market closed: queued for the session of {hours.next_session} "
            f"(closes {out.computed['next_session_close_et']} ET)",
        )
    if account.broker == "ibkr" and in_ibkr_reset_window(now, config):
        out.add("BROKER_RESET_WINDOW", "warn", "sent during an IBKR nightly reset window")
