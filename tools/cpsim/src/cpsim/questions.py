"""Order questions ("reply messages") by IBKR message id."""

from __future__ import annotations

from decimal import Decimal

SURE = "\nAre you sure you want to submit this order?"
MESSAGES: dict[str, str] = {
    "o163": 'The following order "{desc}" price exceeds \nthe Percentage constraint of {pct}%.{sure}',
    "o354": "You are submitting an order without market data. We strongly recommend against this as it may "
    "result in erroneous and unexpected trades.{sure}",
    "o382": "The following value exceeds the Tick Size Limit of 10 ticks.{sure}",
    "o383": 'The following order "{desc}" size exceeds the Size Limit of 500.{sure}',
    "o403": "This order will most likely trigger and fill immediately.{sure}",
    "o451": 'The following order "{desc}" value estimate exceeds \nthe Total Value Limit of 1,000,000 USD.{sure}',
    "o10151": "Market orders may be executed at a price that is very different from the displayed price.\n{sure}",
    "o10331": "You are about to submit a stop order. Please be aware of the various stop order types available "
    "and the risks associated with each one.{sure}",
}


def text(message_id: str, desc: str = "", pct: Decimal = Decimal(3)) -> str:
    """The question text for a message id (a generic text for ids without a known wording)."""
    template = MESSAGES.get(message_id, "Order precaution " + message_id + ".{sure}")
    return template.format(desc=desc, pct=pct.normalize(), sure=SURE)


def default_questions(
    order_type: str,
    side: str,
    limit: Decimal | None,
    stop: Decimal | None,
    last: Decimal | None,
    pct: Decimal,
    quantity: Decimal,
) -> list[str]:
    """Questions the simulated gateway asks on its own for an order."""
    out: list[str] = []
    if last is None:
        out.append("o354")
        return out
    if limit is not None and order_type in ("LMT", "STP_LMT") and last > 0 and abs(limit - last) / last * 100 > pct:
        out.append("o163")
    if stop is not None and order_type in ("STP", "STP_LMT") and (last >= stop if side == "BUY" else last <= stop):
        out.append("o403")
    if quantity > 500 * 100:
        out.append("o383")
    return out
