"""Order pricing (limit, or the market estimate from the quote) and the buying-power arithmetic of
RULES.md section 4."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from .config import RulesConfig
from .model import AccountState, MarketData, OrderSpec, Quote, parse_occ
from .strategy import LegSpec, Strategy

ZERO = Decimal("0")
CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def round_up(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def usable_quote(quote: Quote | None, now: datetime, config: RulesConfig) -> Quote | None:
    if quote is None or quote.stale:
        return None
    if quote.age_s is not None and quote.age_s > config.max_quote_age_s:
        return None
    if quote.as_of is not None and Decimal(str((now - quote.as_of).total_seconds())) > config.max_quote_age_s:
        return None
    return quote


@dataclass
class Pricing:
    """Per-share leg prices (by leg index) and the signed net price per combo unit (+ debit)."""

    leg_prices: dict[int, Decimal] = field(default_factory=dict)
    net: Decimal | None = None
    estimated: bool = False
    missing_quote: bool = False
    estimated_price: Decimal | None = None


def _market_leg_price(side: str, quote: Quote | None, config: RulesConfig) -> Decimal | None:
    if quote is None:
        return None
    if side == "buy":
        if quote.ask is None:
            return None
        factor = 1 + config.market_order_price_buffer_pct / 100
        return round_up(quote.ask * factor, config.market_order_price_step)
    return quote.bid


def price_order(
    order: OrderSpec,
    sides: list[str],
    strategy: Strategy | None,
    market: MarketData,
    now: datetime,
    config: RulesConfig,
) -> Pricing:
    """Price the order: the limit price, or for a market order the quote (ask + buffer for buys,
    bid for sells). ``sides``: every leg's side, in the order of the legs."""
    pricing = Pricing()
    market_like = order.order_type in ("market", "stop")
    if not order.is_multi_leg:
        if order.order_type in ("limit", "stop_limit") and order.limit_price is not None:
            price: Decimal | None = order.limit_price
        elif order.order_type == "stop" and order.stop_price is not None and order.limit_price is None:
            quote = usable_quote(market.quote_for(order.symbol or ""), now, config)
            price = _market_leg_price(sides[0], quote, config) if quote else order.stop_price
            pricing.estimated = quote is not None
        else:
            quote = usable_quote(market.quote_for(order.symbol or ""), now, config)
            price = _market_leg_price(sides[0], quote, config)
            pricing.estimated = price is not None
            pricing.missing_quote = price is None
            pricing.estimated_price = price
        if price is not None:
            pricing.leg_prices[0] = price
            pricing.net = price if sides[0] == "buy" else -price
        return pricing
    for index, leg in enumerate(order.effective_legs()):
        quote = usable_quote(market.quote_for(leg.symbol), now, config)
        if leg.price is not None:
            pricing.leg_prices[index] = leg.price
        elif market_like:
            leg_price = _market_leg_price(leg.side, quote, config)
            if leg_price is not None:
                pricing.leg_prices[index] = leg_price
        elif quote is not None:
            reference = quote.ask if leg.side == "buy" else quote.bid
            if reference is not None:
                pricing.leg_prices[index] = reference
    all_known = len(pricing.leg_prices) == len(order.legs)
    leg_net = (
        sum(
            (
                (p if order.legs[i].side == "buy" else -p) * order.legs[i].ratio
                for i, p in pricing.leg_prices.items()
            ),
            ZERO,
        )
        if all_known
        else None
    )
    if market_like:
        pricing.estimated = all_known
        pricing.missing_quote = not all_known
        pricing.net = leg_net
        pricing.estimated_price = abs(leg_net) if leg_net is not None else None
        return pricing
    if order.limit_price is None:
        pricing.net = leg_net
        return pricing
    magnitude = abs(order.limit_price)
    if order.limit_price < 0:
        pricing.net = -magnitude
    elif leg_net is not None and leg_net != 0:
        pricing.net = magnitude if leg_net > 0 else -magnitude
    elif strategy is not None and strategy.credit_structure and not strategy.debit_structure:
        pricing.net = -magnitude
    else:
        pricing.net = magnitude
    return pricing


def commission(
    broker: str, contracts_by_leg: list[tuple[Decimal, Decimal | None]], config: RulesConfig
) -> Decimal:
    """Commission plus regulatory fees of an option order: (contracts, per-share price) per leg."""
    schedule = config.commission_for(broker)
    total = ZERO
    contracts_total = ZERO
    for contracts, price in contracts_by_leg:
        rate = schedule.rate_for(price if price is not None else Decimal("1"))
        total += contracts * rate
        contracts_total += contracts
    if contracts_total == 0:
        return ZERO
    total = max(total, schedule.min_per_order)
    return cents(total + contracts_total * config.regulatory_fee_per_contract)


@dataclass
class Requirement:
    requirement: Decimal = ZERO
    reduction: Decimal = ZERO
    premium: Decimal | None = None
    credit: Decimal | None = None
    debit: Decimal | None = None
    fees: Decimal = ZERO
    cash_secured: bool = False
    notes: dict[str, object] = field(default_factory=dict)


def naked_add_per_share(leg: LegSpec, underlying: Decimal, config: RulesConfig) -> Decimal:
    """Reg T / Cboe uncovered requirement per share, without the premium."""
    rate = config.naked_rate_broad_index if leg.contract.root in config.broad_based_index_roots else config.naked_rate
    strike = leg.contract.strike
    if leg.contract.right == "C":
        otm = max(strike - underlying, ZERO)
        return max(rate * underlying - otm, config.naked_min_rate * underlying)
    otm = max(underlying - strike, ZERO)
    return max(rate * underlying - otm, config.naked_min_rate * strike)


def option_requirement(
    strategy: Strategy,
    legs: list[LegSpec],
    leg_prices: list[Decimal | None],
    net: Decimal,
    qty: Decimal,
    account: AccountState,
    market: MarketData,
    config: RulesConfig,
    fees: Decimal,
) -> Requirement:
    """Requirement and buying-power reduction of an opening option order (section 4)."""
    units = qty * config.options_multiplier
    result = Requirement(fees=fees)
    kind = strategy.kind
    if kind in ("long_call", "long_put", "long_combo"):
        result.premium = cents(net * units)
        result.debit = result.premium
        result.requirement = result.reduction = cents(net * units + fees)
    elif kind in ("covered_call", "covered_put"):
        result.premium = result.credit = cents(-net * units)
    elif kind == "short_put" and (account.broker == "alpaca" or account.account_type == "cash"):
        result.cash_secured = True
        result.premium = result.credit = cents(-net * units)
        result.requirement = result.reduction = cents(legs[0].contract.strike * units)
    elif kind in ("short_put", "naked_call"):
        leg = legs[0]
        price = -net
        naked = qty * leg.ratio - strategy.covered_contracts
        underlying = _underlying(leg, market, result)
        per_share = price + naked_add_per_share(leg, underlying, config)
        result.premium = result.credit = cents(price * units)
        result.requirement = cents(per_share * naked * config.options_multiplier)
        result.reduction = cents(result.requirement - price * naked * config.options_multiplier + fees)
    elif strategy.bounded and kind != "credit_calendar":
        loss = strategy.structural_loss * units
        if net >= 0:
            result.debit = cents(net * units)
            result.requirement = result.reduction = cents(loss + net * units + fees)
        else:
            result.credit = cents(-net * units)
            result.requirement = cents(loss)
            applied = ZERO if account.account_type == "cash" else -net * units
            result.reduction = cents(max(loss - applied, ZERO) + fees)
    else:
        _uncovered_combo(strategy, legs, leg_prices, net, qty, market, config, result)
    return result


def _underlying(leg: LegSpec, market: MarketData, result: Requirement) -> Decimal:
    price = market.underlying_price(leg.contract.root)
    if price is None:
        result.notes["underlying_price_assumed"] = True
        return leg.contract.strike
    return price


def _uncovered_combo(
    strategy: Strategy,
    legs: list[LegSpec],
    leg_prices: list[Decimal | None],
    net: Decimal,
    qty: Decimal,
    market: MarketData,
    config: RulesConfig,
    result: Requirement,
) -> None:
    multiplier = config.options_multiplier
    shorts = [(leg, price) for leg, price in zip(legs, leg_prices, strict=True) if leg.side == "sell"]
    longs = [(leg, price) for leg, price in zip(legs, leg_prices, strict=True) if leg.side == "buy"]
    adds = [naked_add_per_share(leg, _underlying(leg, market, result), config) * leg.ratio for leg, _ in shorts]
    straddle = len(shorts) == 2 and {leg.contract.right for leg, _ in shorts} == {"C", "P"}
    base = max(adds) if straddle else sum(adds, ZERO)
    if all(price is not None for _, price in shorts + longs):
        short_premium = sum((p * leg.ratio for leg, p in shorts if p is not None), ZERO)
        long_premium = sum((p * leg.ratio for leg, p in longs if p is not None), ZERO)
    else:
        short_premium, long_premium = max(-net, ZERO), max(net, ZERO)
    units = qty * multiplier
    result.credit = cents(max(-net, ZERO) * units)
    result.requirement = cents((base + short_premium + long_premium) * units)
    result.reduction = cents((base + long_premium) * units + result.fees)


def option_buying_power(account: AccountState, config: RulesConfig) -> Decimal | None:
    """The broker's option buying power: Alpaca ``options_buying_power``, IBKR ``availablefunds``;
    a margin account under the margin minimum gets no leverage (cash)."""
    power = account.option_buying_power
    if power is None and account.account_type == "cash":
        power = account.settled_cash
    if (
        power is not None
        and account.account_type == "margin"
        and account.equity is not None
        and account.equity < config.margin_min_equity
        and account.cash is not None
    ):
        power = min(power, account.cash)
    return power


def working_orders_reserve(account: AccountState, config: RulesConfig) -> Decimal:
    """Buying power held by working opening buy orders (closing orders add nothing back)."""
    reserved = ZERO
    for order in account.open_orders:
        if not order.is_working or order.side != "buy" or order.position_effect == "close":
            continue
        if order.limit_price is None:
            continue
        multiplier = config.options_multiplier if _is_option(order.symbol) else 1
        reserved += order.limit_price * order.qty * multiplier
    return cents(reserved)


def _is_option(symbol: str) -> bool:
    return parse_occ(symbol) is not None
