"""Settings of the sync-worker (environment variables, on top of the common ones)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from ibkr_common.settings import DatabaseServiceSettings, env


class SyncSettings(DatabaseServiceSettings):
    """The sync-worker's own variables; `IBKR_SYNC_INTERVAL` (ms) is a common one."""

    trades_days: int = Field(
        7, validation_alias=env("IBKR_SYNC_TRADES_DAYS"), ge=1, le=7,
        description="How many days of executions each sync reads (Client Portal allows 1-7; 7 covers the "
        "five-session day-trade window).",
    )
    account_event_move: Decimal = Field(
        Decimal("0.01"), validation_alias=env("IBKR_SYNC_ACCOUNT_EVENT_MOVE"), ge=0, le=1,
        description="`account.updated` also when net liquidation, equity with loan, buying power, available "
        "funds or excess liquidity moved more than this fraction since last announced (0: only cash, "
        "day trades and flags).",
    )
    options_levels: str = Field(
        "", validation_alias=env("IBKR_OPTIONS_LEVELS"),
        description="Option trading levels by account, `DU1234567=2,U7654321=3` (`*=2` for every account): "
        "Client Portal does not report them (IBKR's Account Settings > Trading Permissions shows them); "
        "an account without one has an unknown level and compliance refuses its option orders.",
    )

    @field_validator("options_levels")
    @classmethod
    def _levels_readable(cls, value: str) -> str:
        parse_options_levels(value)
        return value

    def options_level_of(self, account_id: str) -> int | None:
        """The configured option level of an account (None: unknown)."""
        levels = parse_options_levels(self.options_levels)
        return levels.get(account_id.upper(), levels.get("*"))
    invalidate_positions: bool = Field(
        True, validation_alias=env("IBKR_SYNC_INVALIDATE_POSITIONS"),
        description="Discard the gateway's positions cache before each read (one extra call per account).",
    )
    pnl_tolerance_abs: Decimal = Field(
        Decimal("1.00"), validation_alias=env("IBKR_SYNC_PNL_TOLERANCE_ABS"), ge=0,
        description="Unrealized P&L within this amount of (price - cost) x quantity x multiplier is kept as given.",
    )
    pnl_tolerance_rel: Decimal = Field(
        Decimal("0.005"), validation_alias=env("IBKR_SYNC_PNL_TOLERANCE_REL"), ge=0,
        description="... or within this fraction of the position's market value.",
    )
    bridge_timeout_s: float = Field(
        30.0, validation_alias=env("IBKR_SYNC_BRIDGE_TIMEOUT_S"), gt=0, le=300,
        description="How long one bridge request may take (it queues behind the 10 req/s limit).",
    )
    submit_timeout_s: float = Field(
        30.0, validation_alias=env("IBKR_SYNC_SUBMIT_TIMEOUT_S"), gt=0, le=300,
        description="How long positions.close waits for compliance's orders.submit.",
    )
    fill_resync_delay_ms: int = Field(
        1000, validation_alias=env("IBKR_SYNC_FILL_RESYNC_DELAY_MS"), ge=0, le=60_000,
        description="Delay of the extra sync after an order was submitted or a fill was seen.",
    )
    synced_at_heartbeat_s: int = Field(
        300, validation_alias=env("IBKR_SYNC_SYNCED_AT_HEARTBEAT_S"), ge=0,
        description="A sync that changed nothing still stamps synced_at in the database this often "
        "(0: never); in between, the service answers with the time it keeps in memory.",
    )


def parse_options_levels(text: str) -> dict[str, int]:
    """`ACCOUNT=LEVEL,...` into a mapping; ValueError naming the bad entry."""
    levels: dict[str, int] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        account, sep, level = entry.partition("=")
        if not sep or not account.strip() or not level.strip().isdigit() or not 0 <= int(level) <= 4:
            raise ValueError(f"{entry!r}: want ACCOUNT=LEVEL with a level from 0 to 4")
        levels[account.strip().upper()] = int(level)
    return levels
