"""The ``intraday_margin`` rules, RULES.md section 7.5 (buying power is checked in step 5)."""

from __future__ import annotations

from .model import AccountState
from .outcome import Outcome


def apply_intraday_margin(account: AccountState, opening: bool, pdt_exempt: bool, out: Outcome) -> None:
    if account.account_type == "cash":
        out.add("PDT_NOT_APPLICABLE_CASH_ACCOUNT", "allow", "cash account: the PDT rule does not apply")
        return
    out.add(
        "PDT_NOT_APPLICABLE_INTRADAY_MARGIN_REGIME",
        "allow",
        "intraday margin regime: no day-trade count and no $25,000 minimum",
    )
    counter = account.daytrades_remaining if account.broker == "ibkr" else None
    if counter == -1:
        out.add("IBKR_DAY_TRADES_UNLIMITED", "allow", "IBKR reports unlimited day trades")
    elif counter == 0 and opening and not pdt_exempt:
        # A count can only survive as the broker's own (house) rule; IBKR's counter is authoritative.
        out.add(
            "IBKR_PDT_NO_DAY_TRADES_REMAINING",
            "block",
            "IBKR still reports no day trades remaining: it rejects opening orders",
        )
