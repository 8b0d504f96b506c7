"""SQLAlchemy models of every table the product keeps. Each table has exactly one writer service.

User-owned tables carry `user_id` and are protected by Row Level Security on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ibkr_common.db.types import Money, UtcDateTime


class Base(DeclarativeBase):
    """Declarative base of ibkr-stack's tables."""


class Credential(Base):
    """One connection (a Client Portal login) of a user: gateway, environment, the username encrypted
    (`ibkr_common.crypto`, key id per row), and where its setup stands (writer: registry).

    The registry (services/registry) is the only service that reads or writes this table; the others learn
    connections from its commands and events (`ibkr_common.connections.ConnectionDirectory`)."""

    __tablename__ = "ibkr_credentials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    connection: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(8))
    gateway_host: Mapped[str] = mapped_column(String(255))
    gateway_port: Mapped[int] = mapped_column(Integer)
    gateway_ssl: Mapped[bool] = mapped_column(Boolean, default=True)
    gateway_ca_pem: Mapped[str | None] = mapped_column(Text)
    username_encrypted: Mapped[str | None] = mapped_column(Text)
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="unverified")
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    bootstrap: Mapped[bool] = mapped_column(Boolean, default=False)
    acknowledged: Mapped[list[Any]] = mapped_column(JSON, default=list)
    missing_disclosures: Mapped[list[Any] | None] = mapped_column(JSON)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (
        UniqueConstraint("user_id", "connection", name="uq_credentials_user_connection"),
        UniqueConstraint("connection", name="uq_credentials_connection"),
    )


class ConnectionAccount(Base):
    """One account of a connection: the owner's settings and what verification read back (writer: registry)."""

    __tablename__ = "ibkr_connection_accounts"
    connection: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    options_level: Mapped[int] = mapped_column(Integer, default=0)
    live_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str | None] = mapped_column(String(255))
    account_type: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[str | None] = mapped_column(String(8))
    net_liquidation: Mapped[Decimal | None] = mapped_column(Money())
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConnectionTombstone(Base):
    """A deleted connection id held back from other users (writer: registry): until `until`, only `user_id`,
    its last owner, may register it again. A client the auth callout granted the id keeps its grant until
    its user JWT expires; the quarantine outlasts that, so no other user inherits a forgotten grant."""

    __tablename__ = "ibkr_connection_tombstones"
    connection: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    until: Mapped[datetime] = mapped_column(UtcDateTime)


class AccountInfo(Base):
    """The broker's account summary as last synced (writer: sync-worker)."""

    __tablename__ = "ibkr_account_info"
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    connection: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_type: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str | None] = mapped_column(String(8))
    net_liquidation: Mapped[Decimal | None] = mapped_column(Money())
    equity_with_loan: Mapped[Decimal | None] = mapped_column(Money())
    previous_day_equity: Mapped[Decimal | None] = mapped_column(Money())
    cash: Mapped[Decimal | None] = mapped_column(Money())
    buying_power: Mapped[Decimal | None] = mapped_column(Money())
    available_funds: Mapped[Decimal | None] = mapped_column(Money())
    excess_liquidity: Mapped[Decimal | None] = mapped_column(Money())
    day_trades_remaining: Mapped[int | None] = mapped_column(Integer)
    day_trades_remaining_t1: Mapped[int | None] = mapped_column(Integer)
    day_trades_remaining_t2: Mapped[int | None] = mapped_column(Integer)
    day_trades_remaining_t3: Mapped[int | None] = mapped_column(Integer)
    day_trades_remaining_t4: Mapped[int | None] = mapped_column(Integer)
    pdt_flag: Mapped[bool | None] = mapped_column(Boolean)
    options_level: Mapped[int | None] = mapped_column(Integer)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Position(Base):
    """One position of an account as last synced (writer: sync-worker)."""

    __tablename__ = "ibkr_positions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    connection: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(32))
    conid: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(255))
    sec_type: Mapped[str | None] = mapped_column(String(8))
    currency: Mapped[str | None] = mapped_column(String(8))
    quantity: Mapped[Decimal] = mapped_column(Money())
    avg_cost: Mapped[Decimal | None] = mapped_column(Money())
    avg_price: Mapped[Decimal | None] = mapped_column(Money())
    market_price: Mapped[Decimal | None] = mapped_column(Money())
    market_value: Mapped[Decimal | None] = mapped_column(Money())
    unrealized_pnl: Mapped[Decimal | None] = mapped_column(Money())
    realized_pnl: Mapped[Decimal | None] = mapped_column(Money())
    expiry: Mapped[date | None] = mapped_column(Date)
    strike: Mapped[Decimal | None] = mapped_column(Money())
    right: Mapped[str | None] = mapped_column(String(1))
    multiplier: Mapped[Decimal | None] = mapped_column(Money())
    underlying_conid: Mapped[int | None] = mapped_column(BigInteger)
    underlying_symbol: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("connection", "account_id", "conid", name="uq_positions_account_conid"),)


class Order(Base):
    """An order as the broker reports it, with status history and fills (writer: sync-worker)."""

    __tablename__ = "ibkr_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    connection: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(32))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    conid: Mapped[int | None] = mapped_column(BigInteger)
    symbol: Mapped[str | None] = mapped_column(String(64))
    sec_type: Mapped[str | None] = mapped_column(String(8))
    side: Mapped[str | None] = mapped_column(String(8))
    order_type: Mapped[str | None] = mapped_column(String(16))
    quantity: Mapped[Decimal | None] = mapped_column(Money())
    filled_quantity: Mapped[Decimal | None] = mapped_column(Money())
    remaining_quantity: Mapped[Decimal | None] = mapped_column(Money())
    limit_price: Mapped[Decimal | None] = mapped_column(Money())
    stop_price: Mapped[Decimal | None] = mapped_column(Money())
    avg_fill_price: Mapped[Decimal | None] = mapped_column(Money())
    tif: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24))
    status_history: Mapped[list[Any]] = mapped_column(JSON, default=list)
    fills: Mapped[list[Any]] = mapped_column(JSON, default=list)
    origin: Mapped[str] = mapped_column(String(16), default="broker")
    content_hash: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_execution_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (
        UniqueConstraint("connection", "order_id", name="uq_orders_connection_order"),
        Index("ix_orders_account_status", "connection", "account_id", "status"),
        Index("ix_orders_account_page", "connection", "account_id", "id"),  # orders.get's keyset pages
        Index("ix_orders_client_order_id", "connection", "client_order_id"),
    )


class SessionTracking(Base):
    """The session-keeper's last known state of a connection (writer: session-keeper)."""

    __tablename__ = "ibkr_session_tracking"
    connection: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32))
    authenticated: Mapped[bool] = mapped_column(Boolean, default=False)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    competing: Mapped[bool] = mapped_column(Boolean, default=False)
    in_maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_tickle_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    warned_for: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ActivityLog(Base):
    """The append-only, hash-chained audit log of every event (writer: audit)."""

    __tablename__ = "ibkr_trading_activity_log"
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    conn: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stream_seq: Mapped[int | None] = mapped_column(BigInteger)
    envelope: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_activity_type_occurred", "type", "occurred_at"),
        Index("ix_activity_account_occurred", "account_id", "occurred_at"),
    )


class DeadLetter(Base):
    """Messages of the event stream that were not valid envelopes (writer: audit)."""

    __tablename__ = "ibkr_audit_dead_letters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(255))
    stream_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ComplianceAcknowledgment(Base):
    """A user's acknowledgment of a disclosure, per environment and version (writer: compliance)."""

    __tablename__ = "ibkr_compliance_acknowledgments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    environment: Mapped[str] = mapped_column(String(8))
    disclosure_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(16))
    acknowledged_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (
        UniqueConstraint("user_id", "environment", "disclosure_id", "version", name="uq_ack_user_env_disclosure"),
    )


class ComplianceDecisionLog(Base):
    """Every compliance decision with the state it was made on (writer: compliance)."""

    __tablename__ = "trading_compliance_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    connection: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str | None] = mapped_column(String(32))
    client_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(8))
    reason_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    regime: Mapped[str | None] = mapped_column(String(24))
    order: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    latency_ms: Mapped[Decimal | None] = mapped_column(Money(12, 3))
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderLedger(Base):
    """Compliance's order ledger: client_order_id to outcome, the idempotency record (writer: compliance)."""

    __tablename__ = "ibkr_order_ledger"
    connection: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TradingControl(Base):
    """Whether new opening orders are halted on a connection, and why (writer: compliance)."""

    __tablename__ = "ibkr_trading_controls"
    connection: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    halted: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(255))
    changed_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxEvent(Base):
    """Events written in the same transaction as the state they describe, relayed to JetStream."""

    __tablename__ = "ibkr_event_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    envelope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    __table_args__ = (Index("ix_outbox_pending", "source", "published_at", "id"),)


class ConsoleUser(Base):
    """A sign-in account of the operator console and the owner it acts for (writer: console).

    Not a user-owned table: the console reads it before anyone is signed in (to check a password), and
    `owner_user_id` names the connection owner the account acts for (the identity model of CONTRACT.md).
    """

    __tablename__ = "console_users"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(8))
    owner_user_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (CheckConstraint("role IN ('viewer', 'trader', 'admin')", name="ck_console_users_role"),)


#: Tables whose rows belong to a user: Row Level Security on PostgreSQL. The activity log is not one:
#: it is the record of every event of every connection (user_id is a column to filter on, often null
#: for gateway and session events), written by audit alone and append-only; it is read through
#: `audit.query` (filterable by account, not restricted by user: the operator's record).
USER_OWNED_TABLES = (
    "ibkr_credentials",
    "ibkr_account_info",
    "ibkr_positions",
    "ibkr_orders",
    "ibkr_session_tracking",
    "ibkr_compliance_acknowledgments",
    "trading_compliance_log",
    "ibkr_order_ledger",
    "ibkr_trading_controls",
    "ibkr_connection_accounts",
    "ibkr_connection_tombstones",
)
#: Tables that only grow: no UPDATE or DELETE (enforced by triggers).
APPEND_ONLY_TABLES = ("ibkr_trading_activity_log",)
