"""Gates (RULES.md 7.3 step 1 and 2): the connection, environment, live enablement, broker session, snapshot age,
service halt, disclosures and account restrictions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from .config import RulesConfig
from .model import AccountState, Environment, Reason, Restriction, ServiceFlags
from .outcome import Outcome

_SETTLED_CASH_MARKERS = ("cash_up_front", "free_rid", "freerid", "cash_available", "settled", "good_faith", "gfv")
_FULL_BLOCK_MARKERS = ("trading_blocked", "account_blocked", "trading_suspended", "suspended", "frozen_all")


def actual_environment(account: AccountState) -> Environment | None:
    """The environment the account really belongs to, when it can be told from the account."""
    if account.broker == "ibkr":
        return "paper" if account.account_id.upper().startswith("D") else "live"
    if account.broker == "alpaca":
        if account.base_url:
            return "paper" if "paper" in account.base_url.lower() else "live"
        if account.account_id.upper().startswith("PA"):
            return "paper"
    return None


def check_gates(
    account: AccountState,
    flags: ServiceFlags,
    now: datetime,
    config: RulesConfig,
    out: Outcome,
    *,
    opening: bool = True,
) -> None:
    for reason in connection_reasons(flags):
        out.add(reason.code, reason.severity, reason.message)
    declared = flags.requested_environment or account.environment
    actual = actual_environment(account)
    if declared != account.environment or (actual is not None and actual != declared):
        out.add(
            "ENVIRONMENT_MISMATCH",
            "block",
            f"declared environment {declared} does not match account {account.account_id}",
        )
    if declared == "live" and not account.live_trading_enabled:
        out.add("LIVE_TRADING_NOT_ENABLED", "block", "live order from an account not enabled for live trading")
    session = account.session
    if (
        account.broker == "ibkr"
        and session is not None
        and (not session.authenticated or session.competing or not session.connected)
    ):
        out.add("BROKER_SESSION_NOT_AUTHENTICATED", "block", "the IBKR brokerage session is not usable")
    age = snapshot_age(account, now)
    out.computed["snapshot_age_s"] = age
    if age is not None and age > config.max_snapshot_age_s:
        out.add("STALE_ACCOUNT_DATA", "block", f"account snapshot is {age}s old (max {config.max_snapshot_age_s}s)")
    if flags.trading_halted and opening:
        out.add("TRADING_HALTED", "block", "trading is halted by the operator: opening orders are refused")
    if flags.missing_disclosures:
        missing = ", ".join(flags.missing_disclosures)
        out.add("DISCLOSURES_NOT_ACKNOWLEDGED", "block", f"disclosures not acknowledged: {missing}")


def connection_reasons(flags: ServiceFlags) -> tuple[Reason, ...]:
    """The gate of the connection itself, which needs no account state: a connection that is not enabled
    blocks every order (the service asks this first and decides nothing more)."""
    if flags.connection_enabled:
        return ()
    return (Reason(code="CONNECTION_NOT_ENABLED", severity="block",
                   message="the connection is not enabled: verify the connection and acknowledge its disclosures"),)


def snapshot_age(account: AccountState, now: datetime) -> Decimal | None:
    if account.snapshot_age_s is not None:
        return account.snapshot_age_s
    if account.synced_at is not None:
        return Decimal(str((now - account.synced_at).total_seconds()))
    return None


def active_restrictions(account: AccountState, today: date) -> list[Restriction]:
    return [r for r in account.restrictions if r.until is None or today <= r.until]


def requires_settled_cash(restriction: Restriction) -> bool:
    kind = restriction.type.lower()
    return any(marker in kind for marker in _SETTLED_CASH_MARKERS)


def check_restrictions(account: AccountState, opening: bool, today: date, out: Outcome) -> bool:
    """Closing-only and blocked accounts; returns whether purchases need settled cash."""
    settled_only = False
    for restriction in active_restrictions(account, today):
        if requires_settled_cash(restriction):
            settled_only = True
            continue
        full = any(marker in restriction.type.lower() for marker in _FULL_BLOCK_MARKERS)
        if opening or full:
            out.add(
                "ACCOUNT_RESTRICTED_CLOSING_ONLY",
                "block",
                f"account restriction {restriction.type}: opening orders are blocked",
            )
    if account.trading_blocked:
        out.add("ACCOUNT_RESTRICTED_CLOSING_ONLY", "block", "the broker has blocked trading on the account")
    return settled_only
