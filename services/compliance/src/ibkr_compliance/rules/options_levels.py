"""Option permission levels by broker profile (IBKR levels 1-4, RULES.md 3.1; Alpaca levels 0-3,
RULES.md 2.3) and coverage of short calls."""

from __future__ import annotations

from .model import AccountState
from .outcome import Outcome
from .strategy import Strategy


def required_level(strategy: Strategy, broker: str) -> int | None:
    """The level the strategy needs at the broker; ``None`` when no level permits it."""
    if broker == "alpaca":
        return strategy.alpaca_level
    return strategy.ibkr_level


def check_options_level(strategy: Strategy, account: AccountState, out: Outcome) -> None:
    level = account.options_level
    needed = required_level(strategy, account.broker)
    out.computed["strategy"] = strategy.kind
    out.computed["options_level"] = level
    out.computed["required_level"] = needed if not (strategy.naked_call and account.account_type == "cash") else None
    if level is None or level <= 0:
        out.add("OPTIONS_NOT_ENABLED", "block", "options trading is not enabled on the account")
        return
    if strategy.naked_call:
        if account.account_type == "cash" or needed is None or level < needed:
            out.add(
                "UNCOVERED_CALL_NOT_PERMITTED",
                "block",
                f"an uncovered short call is not permitted ({account.broker}, {account.account_type}, level {level})",
            )
            if strategy.kind == "naked_call":
                out.add(
                    "INSUFFICIENT_SHARES_FOR_COVERED_CALL",
                    "block",
                    "fewer free shares than contracts x multiplier",
                )
        if needed is not None and level < needed:
            out.add("OPTIONS_LEVEL_INSUFFICIENT", "block", f"{strategy.kind} needs level {needed}, account has {level}")
        return
    if needed is None:
        out.add("OPTIONS_LEVEL_INSUFFICIENT", "block", f"{strategy.kind} is not offered at {account.broker}")
    elif level < needed:
        out.add("OPTIONS_LEVEL_INSUFFICIENT", "block", f"{strategy.kind} needs level {needed}, account has {level}")
