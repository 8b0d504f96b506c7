"""Request and reply models of the audit service: `audit.query` and `audit.verify` (served by audit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

QUERY_DEFAULT_LIMIT = 100
QUERY_MAX_LIMIT = 1000


class AuditQueryRequest(BaseModel):
    """`ibkr.<conn>.audit.query`: stored events of `<conn>`, newest first, paged by `before_seq`.

    Every filter is optional and they combine with AND. `since` is inclusive, `until` exclusive
    (both on `occurred_at`). The reply's `next_before_seq` is the cursor of the next (older) page.
    A query answers the events of the connection it was sent on; `user_id`, when given, must own that
    connection (FORBIDDEN otherwise). Only on the bootstrap connection with ownership not enforced
    (`IBKR_ENFORCE_OWNERSHIP` off) and no `user_id` does it see every connection, as before (`conn` narrows).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type_prefix: str | None = Field(
        None, min_length=1, max_length=64, description="Event type prefix, e.g. `orders` or `gateway.call`."
    )
    account_id: str | None = Field(None, min_length=1, max_length=32)
    conn: str | None = Field(
        None, pattern=r"^[a-z0-9-]{1,32}$",
        description="Only this connection's events; another connection than the one asked on is FORBIDDEN, except "
        "on the bootstrap connection's unscoped view.")
    user_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@:-]{1,64}$",
        description="The user the caller acts for; checked against the connection's owner (FORBIDDEN).")
    since: AwareDatetime | None = Field(None, description="occurred_at >= since")
    until: AwareDatetime | None = Field(None, description="occurred_at < until")
    limit: int = Field(QUERY_DEFAULT_LIMIT, ge=1, le=QUERY_MAX_LIMIT)
    before_seq: int | None = Field(None, ge=1, description="Only events with seq < before_seq (paging cursor).")

    @model_validator(mode="after")
    def _window(self) -> AuditQueryRequest:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self


class AuditEvent(BaseModel):
    """One stored event: the envelope as stored (secrets redacted), with its place in the chain."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(description="Position in the log, 1, 2, 3, ... without gaps.")
    stored_at: datetime
    hash: str = Field(description="sha256 hex of the previous hash and this row.")
    event_id: str
    type: str
    schema_version: int
    conn: str
    environment: str
    source: str
    occurred_at: datetime
    account_id: str | None = None
    user_id: str | None = None
    correlation_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class AuditQueryResult(BaseModel):
    """Reply of `audit.query`."""

    events: list[AuditEvent]
    next_before_seq: int | None = Field(
        None, description="Pass as `before_seq` for the next, older page; null when this was the last page."
    )


class AuditVerifyRequest(BaseModel):
    """`ibkr.<conn>.audit.verify`: walk the hash chain from `from_seq` (default 1) to the end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_seq: int | None = Field(None, ge=1)


class AuditVerifyResult(BaseModel):
    """Reply of `audit.verify`. `ok` is false when any row was changed, removed or reordered."""

    ok: bool
    events_checked: int
    first_bad_seq: int | None = Field(None, description="The first sequence number whose row or link is wrong.")
    problem: str | None = Field(None, description="What is wrong at first_bad_seq.")
    last_seq: int = Field(0, description="The newest sequence number in the log (0 when empty).")
    last_hash: str | None = None
    dead_letters: int = Field(0, description="Messages of the stream that were not valid envelopes (stored apart).")
    secrets_redacted: int = Field(0, description="Events stored with secret-looking values masked, since start.")
