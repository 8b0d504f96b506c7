"""Settings of the session-keeper (on top of CommonSettings); documented in .env.example and README."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ibkr_common.settings import DatabaseServiceSettings, env
from ibkr_session_keeper.windows import DEFAULT_WINDOWS, WindowTable, parse_windows


class SessionKeeperSettings(DatabaseServiceSettings):
    """Variables of the session-keeper."""

    gateway_region: Literal["us", "eu", "asia"] = Field(
        "us", validation_alias=env("IBKR_GATEWAY_REGION"),
        description="Region whose midnight ends the session: us (New York), eu (Zug), asia (Hong Kong).",
    )
    on_competing: Literal["wait", "takeover"] = Field(
        "wait", validation_alias=env("IBKR_ON_COMPETING"),
        description="Another login of the username holds the brokerage session: wait, or take it over.",
    )
    maintenance_windows: str = Field(
        DEFAULT_WINDOWS, validation_alias=env("IBKR_MAINTENANCE_WINDOWS"),
        description="Reset windows: '<region|*> <days> <HH:MM>-<HH:MM> <zone>' rows separated by ';'.",
    )
    session_reminder_s: int = Field(
        300, validation_alias=env("IBKR_SESSION_REMINDER_S"), ge=10, le=86_400,
        description="A bad state that persists is announced again at most this often.",
    )
    reauth_backoff_s: float = Field(
        5.0, validation_alias=env("IBKR_REAUTH_BACKOFF_S"), gt=0, le=3600,
        description="First pause between re-authentication attempts; doubles each time.",
    )
    reauth_backoff_max_s: float = Field(
        300.0, validation_alias=env("IBKR_REAUTH_BACKOFF_MAX_S"), gt=0, le=3600,
        description="Longest pause between attempts (also the pace inside a maintenance window).",
    )
    reauth_max_attempts: int = Field(
        5, validation_alias=env("IBKR_REAUTH_MAX_ATTEMPTS"), ge=1, le=100,
        description="Failed attempts after which a human login is declared necessary (login_required).",
    )
    use_sso_expires: bool = Field(
        True, validation_alias=env("IBKR_USE_SSO_EXPIRES"),
        description="Take now+ssoExpires as the session's end once it counts down across tickles instead of "
        "being extended (the gateway stopped extending the session); a sliding ssoExpires is ignored.",
    )
    bridge_timeout_s: float = Field(
        15.0, validation_alias=env("IBKR_SESSION_BRIDGE_TIMEOUT_S"), gt=0, le=120,
        description="How long to wait for the gateway-bridge's answer to one session call.",
    )

    @field_validator("maintenance_windows")
    @classmethod
    def _windows_parse(cls, value: str) -> str:
        parse_windows(value)
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> SessionKeeperSettings:
        if self.reauth_backoff_max_s < self.reauth_backoff_s:
            raise ValueError("IBKR_REAUTH_BACKOFF_MAX_S must be at least IBKR_REAUTH_BACKOFF_S")
        return self

    def window_table(self) -> WindowTable:
        """The maintenance windows of the configured region."""
        return WindowTable(parse_windows(self.maintenance_windows), self.gateway_region)
