"""Request and reply models of the session-keeper (`ibkr.<conn>.session.*`). Served by the session-keeper."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SessionStatusName = Literal[
    "unknown", "authenticated", "unauthenticated", "competing", "gateway_down", "expired", "logged_out"
]


class SessionRequest(BaseModel):
    """The body of `session.status`, `session.logout` and `session.reauthenticate`: `{}`, or `{user_id}` from a
    trusted caller acting for a user (checked against the connection's owner: FORBIDDEN)."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, max_length=64, description="The user the caller acts for; checked against "
                                "the connection's owner (FORBIDDEN).")


class SessionStatusResult(BaseModel):
    """The keeper's view of the Client Portal session, answered from memory."""

    authenticated: bool = Field(description="The brokerage session is usable (and connected, not competing).")
    connected: bool = Field(description="The gateway holds a session with IBKR's backend.")
    competing: bool = Field(description="Another login of the same username holds the brokerage session.")
    expires_at: datetime | None = Field(None, description="Predicted end of the session (UTC).")
    last_tickle_at: datetime | None = Field(None, description="Last tickle the gateway answered (UTC).")
    in_maintenance: bool = Field(description="Inside a scheduled reset window: failures are expected.")
    status: SessionStatusName = Field(description="The state the keeper is in.", examples=["authenticated"])
    reason: str | None = Field(
        None, description="Why it is not authenticated: login_required, session_lost, not_connected, no_bridge, "
        "competing_session, logout, an expiry basis, or the gateway's error.",
    )
    login_at: datetime | None = Field(None, description="When the login the session counts from happened (UTC).")
    seconds_left: int | None = Field(None, description="Seconds until expires_at.")
    expiry_basis: str | None = Field(None, description="What decided expires_at: max_age, regional_reset, sso_expires.")
    maintenance_window: str | None = Field(None, description="The window row we are in, when in_maintenance.")
    maintenance_ends_at: datetime | None = None
    region: Literal["us", "eu", "asia"] = Field(description="Region whose midnight resets the session.")


class SessionLogoutResult(BaseModel):
    """Answer of `session.logout`."""

    logged_out: bool
