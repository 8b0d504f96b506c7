"""Matching rules: when and at what price an order (or a combo) fills. Pure functions."""

from __future__ import annotations

from decimal import Decimal

from cpsim.market import Quote

ORDER_TYPES: dict[str, str] = {
    "MKT": "MKT",
    "MARKET": "MKT",
    "LMT": "LMT",
    "LIMIT": "LMT",
    "STP": "STP",
    "STOP": "STP",
    "STP_LMT": "STP_LMT",
    "STOP_LIMIT": "STP_LMT",
    "STP LMT": "STP_LMT",
    "STPLMT": "STP_LMT",
}


def triggered(side: str, stop: Decimal, last: Decimal) -> bool:
    """A buy stop elects at or above the stop price, a sell stop at or below."""
    return last >= stop if side == "BUY" else last <= stop


def match(side: str, order_type: str, limit: Decimal | None, quote: Quote, combo: bool = False) -> Decimal | None:
    """The fill price against the quote, or None if the order does not fill now.

    Market orders take the opposite side of the book; limit orders fill at that price when it is
    at or better than the limit (marketable on arrival, or later when the price crosses).
    Stop orders must be triggered by the caller first; they then behave as MKT (STP) or LMT (STP_LMT).
    An instrument with no bid or ask (0) trades at its last price; a combo's net price may be zero or
    negative (a credit), and is taken as it is.
    """
    price = quote.ask if side == "BUY" else quote.bid
    if price <= 0 and not combo:
        price = quote.last
    if order_type in ("MKT", "STP"):
        return price
    if limit is None:
        return None
    if side == "BUY":
        return price if price <= limit else None
    return price if price >= limit else None


def chunk(remaining: Decimal, threshold: Decimal) -> Decimal:
    """How much fills in one go: everything up to the threshold, then threshold-sized pieces."""
    return remaining if threshold <= 0 or remaining <= threshold else threshold


def combo_quote(legs: list[tuple[Quote, int]]) -> Quote:
    """Net quote of a combo from its legs' quotes and signed ratios."""
    bid = ask = last = Decimal(0)
    for q, ratio in legs:
        if ratio > 0:
            bid += q.bid * ratio
            ask += q.ask * ratio
        else:
            bid += q.ask * ratio
            ask += q.bid * ratio
        last += q.last * ratio
    return Quote(bid, ask, last, last, last, last, last)


def parse_combo(conidex: str) -> tuple[int, list[tuple[int, int]]] | None:
    """`{spread_conid};;;{leg}/{ratio},{leg}/{ratio}` -> (spread conid, [(leg conid, ratio)]); None if malformed."""
    if ";;;" not in conidex:
        return None
    head, _, tail = conidex.partition(";;;")
    try:
        spread = int(head)
        legs = []
        for part in tail.split(","):
            conid, _, ratio = part.partition("/")
            legs.append((int(conid), int(ratio or "1")))
    except ValueError:
        return None
    return (spread, legs) if legs else None
