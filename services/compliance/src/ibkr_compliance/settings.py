"""Settings of the compliance service (on top of CommonSettings); every variable is documented here.

- `IBKR_COMPLIANCE_RULES_FILE`: YAML with the rules thresholds (a `defaults:` mapping as in
  cases-examples.yaml, or a flat one); unset: the engine's defaults.
- `IBKR_COMPLIANCE_REGIME`: `auto` (resolve per RULES.md 7.2), `legacy_pdt` or `intraday_margin`.
- `IBKR_COMPLIANCE_QUESTION_POLICY`: overrides of the IBKR question policy table, e.g.
  `o354=auto_confirm,o163@live=reject,*=ask_user` (see questions.py for the defaults).
- `IBKR_LIVE_ENABLED_ACCOUNTS`: comma-separated live accounts enabled for trading (RULES.md 7.8).
- `IBKR_COMPLIANCE_DISCLOSURE_VERSIONS`: overrides of disclosure versions, e.g. `options_risk=2027-01`
  (a new version is asked again).
- `IBKR_COMPLIANCE_STATE_TIMEOUT_MS`: wait for each piece of synced state before treating it as missing.
- `IBKR_COMPLIANCE_STATE_CACHE_MS`: keep an account's synced pieces this long; its positions/orders/account
  events drop them at once (0: ask the sync-worker for every order).
- `IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S`: wait for the bridge to place / answer / modify an order (keep the
  bridge's IBKR_BRIDGE_ORDER_BUDGET_S below it).
- `IBKR_COMPLIANCE_SUBMIT_BUDGET_S`: `orders.submit` answers within this (the contract promises 30 s).
- `IBKR_COMPLIANCE_RESOLVE_SPACING_S`: least time between the first and the last gateway read that prove an
  uncertain send never arrived.
- `IBKR_COMPLIANCE_MAX_QUESTION_ROUNDS`: IBKR questions answered by policy for one order.
- `IBKR_COMPLIANCE_ACCOUNT_RESTRICTIONS`: restrictions the broker imposed on accounts, which Client Portal
  does not report, e.g. `U1234567=closing_only:2027-03-01;DU7654321=trading_blocked` (type[:last day]).
- `IBKR_COMPLIANCE_RESOLVE_ON_START`: run the resolver of `pending`/`unknown` ledger rows (from the start on).
- `IBKR_MIGRATE_ON_START`: run the migrations at start (always on SQLite).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from ibkr_common.settings import DatabaseServiceSettings, env
from ibkr_compliance.rules import Restriction, RulesConfig


class ComplianceSettings(DatabaseServiceSettings):
    """The compliance service's own variables."""

    rules_file: Path | None = Field(
        None, validation_alias=env("IBKR_COMPLIANCE_RULES_FILE"),
        description="YAML with the rules configuration; unset: RulesConfig defaults (= cases-examples.yaml).",
    )
    regime: Literal["auto", "legacy_pdt", "intraday_margin"] = Field(
        "auto", validation_alias=env("IBKR_COMPLIANCE_REGIME"),
        description="The day-trading regime; auto resolves it per account and trade date.",
    )
    question_policy: str = Field(
        "", validation_alias=env("IBKR_COMPLIANCE_QUESTION_POLICY"),
        description="Overrides of the question policy table: id[@environment]=action, comma-separated.",
    )
    live_enabled_accounts: str = Field(
        "", validation_alias=env("IBKR_LIVE_ENABLED_ACCOUNTS"),
        description="Live accounts enabled for trading (comma-separated); all others are refused live.",
    )
    disclosure_versions: str = Field(
        "", validation_alias=env("IBKR_COMPLIANCE_DISCLOSURE_VERSIONS"),
        description="Overrides of disclosure versions: id=version, comma-separated.",
    )
    state_timeout_ms: int = Field(
        2_000, validation_alias=env("IBKR_COMPLIANCE_STATE_TIMEOUT_MS"), ge=50, le=60_000,
        description="Wait for each piece of synced state (account, positions, orders, session, quote).",
    )
    state_cache_ms: int = Field(
        2_000, validation_alias=env("IBKR_COMPLIANCE_STATE_CACHE_MS"), ge=0, le=30_000,
        description="Keep an account's synced pieces this long (dropped at once by its events); 0: never.",
    )
    event_linger_ms: int = Field(
        20, validation_alias=env("IBKR_COMPLIANCE_EVENT_LINGER_MS"), ge=0, le=5_000,
        description=("How long the outbox relay lets events gather before it publishes them in one round "
                     "(orders come in bursts). Events are committed with their state first; the answer to "
                     "orders.submit never waits for it. 0: a round after every write."),
    )
    bridge_timeout_s: float = Field(
        20.0, validation_alias=env("IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S"), gt=0, le=600,
        description=("Wait for the bridge's answer to a placement, reply or modify (the bridge's own order budget, "
                     "IBKR_BRIDGE_ORDER_BUDGET_S, 18, is kept below it); an order without an answer by then is "
                     "`unknown` and resolved by its cOID."),
    )
    submit_budget_s: float = Field(
        25.0, validation_alias=env("IBKR_COMPLIANCE_SUBMIT_BUDGET_S"), ge=3, le=120,
        description=("orders.submit answers within this: deciding, recording and sending included (the send "
                     "waits what is left, at most IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S); the contract promises 30 s."),
    )
    resolve_spacing_s: float = Field(
        6.0, validation_alias=env("IBKR_COMPLIANCE_RESOLVE_SPACING_S"), ge=0, le=300,
        description=("An uncertain send is concluded not sent only after two complete gateway reads without it "
                     "(live orders and trades), at least this far apart."),
    )
    max_question_rounds: int = Field(
        10, validation_alias=env("IBKR_COMPLIANCE_MAX_QUESTION_ROUNDS"), ge=1, le=20,
        description="Questions answered by policy for one order before giving the order back to the user.",
    )
    account_restrictions: str = Field(
        "", validation_alias=env("IBKR_COMPLIANCE_ACCOUNT_RESTRICTIONS"),
        description=("Restrictions the broker put on accounts (Client Portal does not report them), "
                     "ACCOUNT=type[:last day][+type...] separated by ';': closing_only (a 90-day freeze, say), "
                     "trading_blocked, settled_cash_only."),
    )
    resolve_on_start: bool = Field(
        True, validation_alias=env("IBKR_COMPLIANCE_RESOLVE_ON_START"),
        description=("Run the resolver: ledger rows left pending/unknown get their outcome by cOID at the gateway, "
                     "from the start and whenever a send goes uncertain."),
    )

    @field_validator("live_enabled_accounts", "question_policy", "disclosure_versions")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("account_restrictions")
    @classmethod
    def _restrictions_parse(cls, value: str) -> str:
        parse_restrictions(value)
        return value.strip()

    @property
    def restrictions(self) -> dict[str, tuple[Restriction, ...]]:
        """The operator's account restrictions, by account (upper case)."""
        return parse_restrictions(self.account_restrictions)

    @property
    def live_accounts(self) -> frozenset[str]:
        """The live accounts enabled for trading."""
        return frozenset(a.strip().upper() for a in self.live_enabled_accounts.split(",") if a.strip())

    def rules_config(self) -> RulesConfig:
        """The engine configuration: the file's values over the defaults."""
        if self.rules_file is None:
            return RulesConfig()
        raw: Any = yaml.safe_load(self.rules_file.read_text(encoding="utf-8")) or {}
        if isinstance(raw, dict) and isinstance(raw.get("defaults"), dict):
            raw = raw["defaults"]
        if not isinstance(raw, dict):
            raise ValueError(f"{self.rules_file}: expected a mapping of rule settings")
        return RulesConfig.from_mapping(raw)


RESTRICTION_TYPES = ("closing_only", "trading_blocked", "settled_cash_only")


def parse_restrictions(text: str) -> dict[str, tuple[Restriction, ...]]:
    """`ACCOUNT=type[:YYYY-MM-DD][+type...];...` by account; ValueError naming the bad entry."""
    result: dict[str, tuple[Restriction, ...]] = {}
    for account, kinds in pairs(text.replace(";", ","), form="ACCOUNT=type[:last day]").items():
        entry = f"{account}={kinds}"
        found: list[Restriction] = []
        for item in kinds.split("+"):
            kind, _, until = item.strip().partition(":")
            if kind not in RESTRICTION_TYPES:
                raise ValueError(f"{entry!r}: unknown restriction {kind!r} (one of {', '.join(RESTRICTION_TYPES)})")
            try:
                last = date.fromisoformat(until) if until else None
            except ValueError:
                raise ValueError(f"{entry!r}: {until!r} is not a date (YYYY-MM-DD)") from None
            found.append(Restriction(type=kind, until=last))
        result[account.upper()] = tuple(found)
    return result


def pairs(text: str, *, form: str = "key=value") -> dict[str, str]:
    """`a=1,b=2` as a dict (blank items ignored); a malformed item raises ValueError naming `form`."""
    result: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"expected {form}, got {item!r}")
        result[key.strip()] = value.strip()
    return result
