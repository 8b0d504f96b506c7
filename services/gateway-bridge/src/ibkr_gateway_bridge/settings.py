"""Settings of the gateway-bridge (on top of CommonSettings)."""

from __future__ import annotations

from pydantic import Field

from ibkr_common.settings import CommonSettings, env


class BridgeSettings(CommonSettings):
    """Variables of the gateway-bridge; see .env.example."""

    rate_limit_rps: float = Field(
        10.0, validation_alias=env("IBKR_RATE_LIMIT_RPS"), gt=0, le=10_000,
        description="Client Portal requests per second of each connection (each gateway login: 10 through the "
        "gateway, 50 for OAuth).",
    )
    rate_limit_penalty_s: float = Field(
        600.0, validation_alias=env("IBKR_RATE_LIMIT_PENALTY_S"), ge=0, le=3600,
        description="How long an endpoint is left alone after a 429 (IBKR: 10-15 minutes).",
    )
    request_timeout_s: float = Field(
        8.0, validation_alias=env("IBKR_BRIDGE_REQUEST_TIMEOUT_S"), gt=0, le=120,
        description="Read timeout of one Client Portal call.",
    )
    connect_timeout_s: float = Field(3.0, validation_alias=env("IBKR_BRIDGE_CONNECT_TIMEOUT_S"), gt=0, le=60)
    queue_timeout_s: float = Field(
        5.0, validation_alias=env("IBKR_BRIDGE_QUEUE_TIMEOUT_S"), gt=0, le=600,
        description="Longest wait in the rate-limit queue before answering RATE_LIMITED.",
    )
    deadline_s: float = Field(
        9.5, validation_alias=env("IBKR_BRIDGE_DEADLINE_S"), gt=0, le=600,
        description="Every reply except the order operations comes within this (else TIMEOUT).",
    )
    order_budget_s: float = Field(
        18.0, validation_alias=env("IBKR_BRIDGE_ORDER_BUDGET_S"), gt=0, le=600,
        description=("Longest an order placement, reply, modification, cancel or lookup takes, waiting for the "
                     "order lock and resolving a lost answer included (then `unknown` with the evidence, never "
                     "a second send). Keep it below the callers' timeout (IBKR_COMPLIANCE_BRIDGE_TIMEOUT_S, 20)."),
    )
    max_connections: int = Field(4, validation_alias=env("IBKR_BRIDGE_MAX_CONNECTIONS"), ge=1, le=32)
    snapshot_preflight_delay_s: float = Field(
        0.5, validation_alias=env("IBKR_BRIDGE_SNAPSHOT_PREFLIGHT_DELAY_S"), ge=0, le=10,
        description="Pause between a snapshot's pre-flight call and the call that returns data.",
    )
