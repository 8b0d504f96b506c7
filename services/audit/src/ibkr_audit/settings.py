"""Settings of the audit service (environment variables, documented in services/audit/README.md)."""

from __future__ import annotations

from pydantic import Field

from ibkr_common.settings import DatabaseServiceSettings, env


class AuditSettings(DatabaseServiceSettings):
    """The audit service's own variables on top of the common ones."""

    audit_consumer: str = Field(
        "audit",
        validation_alias=env("IBKR_AUDIT_CONSUMER"),
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Name of the durable JetStream pull consumer (shared by replicas).",
    )
    audit_batch_max: int = Field(
        1000, validation_alias=env("IBKR_AUDIT_BATCH_MAX"), ge=1, le=5000,
        description="At most this many events per database transaction.",
    )
    audit_max_latency_ms: int = Field(
        50, validation_alias=env("IBKR_AUDIT_MAX_LATENCY_MS"), ge=1, le=10_000,
        description="How long a fetch waits for messages when none are there; a fifth of it is the pause "
        "after a fetch that did not fill a batch.",
    )
    audit_ack_wait_s: float = Field(
        60.0, validation_alias=env("IBKR_AUDIT_ACK_WAIT_S"), gt=0, le=3600,
        description="JetStream ack wait: an unacknowledged message is redelivered after this.",
    )
    audit_max_ack_pending: int = Field(
        5000, validation_alias=env("IBKR_AUDIT_MAX_ACK_PENDING"), ge=1,
        description="At most this many delivered, unacknowledged messages (bounds memory).",
    )
    audit_retry_max_s: float = Field(
        5.0, validation_alias=env("IBKR_AUDIT_RETRY_MAX_S"), gt=0, le=300,
        description="Longest pause between attempts while the database is unavailable.",
    )
