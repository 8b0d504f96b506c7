"""The registry's tables: `ibkr_credentials` (one row per connection) and `ibkr_connection_accounts`.

Every change is written in one transaction with its `connection.*` events (the outbox), under the owner's
`app.user_id` (Row Level Security on PostgreSQL). Only the directory and the key rotation read across users,
in a read-only transaction (`all_users_read_transaction`). The username is stored encrypted, bound to its
owner and connection (associated data), under the key id the row records; it is never decrypted to answer
a request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ibkr_common.clock import Clock
from ibkr_common.connections import not_registered
from ibkr_common.crypto import CredentialCipher, DecryptionError
from ibkr_common.db.engine import all_users_read_transaction, user_transaction
from ibkr_common.db.models import ConnectionAccount, Credential
from ibkr_common.events import EventPublisher
from ibkr_common.outbox import stage_event
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.subjects import Subjects
from ibkr_contract.connections import (
    AccountView,
    ConnectionPayload,
    ConnectionView,
    GatewaySettings,
    RotateKeyResult,
)
from ibkr_registry.quarantine import drop_own_tombstones, leave_tombstone, refuse_if_quarantined

SOURCE = "registry"


def associated_data(user_id: str, connection: str) -> bytes:
    """What an encrypted username is bound to: its owner and its connection (a value copied to another row
    does not decrypt)."""
    return f"ibkr_credentials\x1f{user_id}\x1f{connection}".encode()


def settle(row: Credential) -> None:
    """The state that follows from the row's facts: the bootstrap connection is always enabled; one switched
    off stays `disabled`; a verified one is `enabled` once nothing is left to acknowledge."""
    if row.bootstrap:
        row.state, row.enabled = "enabled", True
    elif row.state == "disabled":
        row.enabled = False
    elif row.verified_at is None:
        row.state, row.enabled = "unverified", False
    else:
        ready = row.missing_disclosures is not None and not row.missing_disclosures
        row.state, row.enabled = ("enabled", True) if ready else ("verified", False)


def account_view(account: ConnectionAccount) -> AccountView:
    """The per-account part of a connection's view."""
    net = account.net_liquidation
    return AccountView(account_id=account.account_id, title=account.title, account_type=account.account_type,
                       currency=account.currency, net_liquidation=None if net is None else format(net, "f"),
                       options_level=account.options_level, live_enabled=account.live_enabled)


def view_of(row: Credential, accounts: list[ConnectionAccount]) -> ConnectionView:
    """A connection as the registry shows it: never the username, only whether one is stored."""
    gateway = GatewaySettings(host=row.gateway_host, port=row.gateway_port, ssl=row.gateway_ssl,
                              ca_pem=row.gateway_ca_pem)
    return ConnectionView(
        connection=row.connection, user_id=row.user_id, environment=row.environment,  # type: ignore[arg-type]
        gateway=gateway, state=row.state, enabled=row.enabled, bootstrap=row.bootstrap,  # type: ignore[arg-type]
        username_set=row.username_encrypted is not None, key_id=row.key_id,
        accounts=[account_view(a) for a in sorted(accounts, key=lambda a: a.account_id)],
        acknowledged=list(row.acknowledged or []), missing_disclosures=list(row.missing_disclosures or []),
        verified_at=row.verified_at, created_at=row.created_at, updated_at=row.updated_at,
    )


@dataclass
class ReadAccount:
    """One account as a verification read it back."""

    account_id: str
    title: str | None = None
    account_type: str | None = None
    currency: str | None = None
    net_liquidation: Decimal | None = None


Change = Callable[[Credential, list[ConnectionAccount], AsyncSession], Awaitable[list[str]]]


class RegistryStore:
    """Reads and changes connections; each change commits with its events."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cipher: CredentialCipher, clock: Clock, *,
                 stream: str, broker: Any, quarantine_s: float,
                 on_committed: Callable[[], None] = lambda: None) -> None:
        self.sessions = sessions
        self.quarantine_s = quarantine_s
        self.cipher = cipher
        self.clock = clock
        self.stream = stream
        self.broker = broker
        self.on_committed = on_committed

    # ---- reading -------------------------------------------------------------------------------
    async def owner_of(self, connection: str) -> tuple[str, bool] | None:
        """`(owner, bootstrap)` of a connection, or None when it is not registered."""
        async with all_users_read_transaction(self.sessions) as session:
            row = (await session.execute(select(Credential.user_id, Credential.bootstrap)
                                         .where(Credential.connection == connection))).first()
        return None if row is None else (row[0], bool(row[1]))

    async def require(self, connection: str, user_id: str, *, check_bootstrap_owner: bool) -> str:
        """The owner of `connection` once `user_id` may act on it: NOT_FOUND when it is not registered,
        FORBIDDEN when someone else owns it (the bootstrap connection only when its ownership is enforced)."""
        found = await self.owner_of(connection)
        if found is None:
            raise not_registered(connection)
        owner, bootstrap = found
        if owner != user_id and (not bootstrap or check_bootstrap_owner):
            raise ServiceError(ErrorCode.FORBIDDEN, f"user_id {user_id!r} does not own connection {connection!r}",
                               [{"field": "user_id", "message": "not the connection's owner"}])
        return owner

    async def get(self, connection: str, owner: str) -> ConnectionView:
        """The view of one connection (its owner's transaction)."""
        async with user_transaction(self.sessions, owner) as session:
            row, accounts = await self._load(session, connection)
            return view_of(row, accounts)

    async def list_owned(self, user_id: str) -> list[ConnectionView]:
        """The connections `user_id` owns."""
        async with user_transaction(self.sessions, user_id) as session:
            rows = (await session.execute(select(Credential).where(Credential.user_id == user_id)
                                          .order_by(Credential.connection))).scalars().all()
            return [view_of(row, await self._accounts(session, row.connection)) for row in rows]

    async def directory(self) -> list[ConnectionView]:
        """Every connection of every user (for the services that serve them)."""
        async with all_users_read_transaction(self.sessions) as session:
            rows = (await session.execute(select(Credential).order_by(Credential.connection))).scalars().all()
            accounts = (await session.execute(select(ConnectionAccount))).scalars().all()
        by_conn: dict[str, list[ConnectionAccount]] = {}
        for account in accounts:
            by_conn.setdefault(account.connection, []).append(account)
        return [view_of(row, by_conn.get(row.connection, [])) for row in rows]

    async def accounts_of(self, connection: str, owner: str) -> list[ConnectionAccount]:
        """The per-account rows of a connection."""
        async with user_transaction(self.sessions, owner) as session:
            return await self._accounts(session, connection)

    # ---- changing ------------------------------------------------------------------------------
    async def create(self, *, user_id: str, connection: str, environment: str, gateway: GatewaySettings,
                     username: str | None, bootstrap: bool = False) -> ConnectionView:
        """A new connection (unverified, disabled), with its `registered` event; CONFLICT when the id is taken,
        or when another user deleted it less than the quarantine ago (`ibkr_registry.quarantine`; the
        environment's bootstrap connection is the operator's choice and not held back)."""
        now = self.clock.now()
        row = Credential(user_id=user_id, connection=connection, environment=environment,
                         gateway_host=gateway.host, gateway_port=gateway.port, gateway_ssl=gateway.ssl,
                         gateway_ca_pem=gateway.ca_pem, state="unverified", enabled=False, bootstrap=bootstrap,
                         acknowledged=[], missing_disclosures=None, created_at=now, updated_at=now)
        if username is not None:
            row.username_encrypted = self.cipher.encrypt(username, associated_data(user_id, connection))
            row.key_id = self.cipher.current_key_id
        settle(row)
        try:
            async with user_transaction(self.sessions, user_id) as session:
                session.add(row)
                await session.flush()
                if not bootstrap:
                    await refuse_if_quarantined(session, connection, user_id, now)
                await drop_own_tombstones(session, connection, user_id, now)
                view = view_of(row, [])
                self._stage(session, view, ["registered"] + (["enabled"] if row.enabled else []), [])
        except IntegrityError:
            raise ServiceError(ErrorCode.CONFLICT, f"connection {connection!r} exists already",
                               [{"field": "connection", "message": "exists already"}]) from None
        self.on_committed()
        return view

    async def change(self, connection: str, owner: str, apply: Change,
                     kind: Literal["updated", "verified"] = "updated") -> ConnectionView:
        """Apply `apply(row, accounts, session)` (which returns the names of what it changed), settle the state,
        and commit with the events it calls for: `kind` when something changed, `enabled` / `disabled` when
        the connection switched."""
        async with user_transaction(self.sessions, owner) as session:
            row, accounts = await self._load(session, connection, for_update=True)
            was_enabled = row.enabled
            changes = await apply(row, accounts, session)
            settle(row)
            if changes or row.enabled != was_enabled:
                row.updated_at = self.clock.now()
            await session.flush()
            accounts = await self._accounts(session, connection)
            view = view_of(row, accounts)
            kinds: list[str] = [kind] if changes or kind == "verified" else []
            if row.enabled != was_enabled:
                kinds.append("enabled" if row.enabled else "disabled")
            self._stage(session, view, kinds, changes)
        if kinds:
            self.on_committed()
        return view

    async def delete(self, connection: str, owner: str) -> ConnectionView:
        """Remove a connection and its accounts, with the `removed` event; the id stays reserved for `owner`
        for the quarantine (a tombstone)."""
        async with user_transaction(self.sessions, owner) as session:
            row, accounts = await self._load(session, connection, for_update=True)
            view = view_of(row, accounts)
            await session.execute(delete(ConnectionAccount).where(ConnectionAccount.connection == connection))
            await session.delete(row)
            await leave_tombstone(session, connection, owner, self.clock.now(), self.quarantine_s)
            self._stage(session, view, ["removed"], [])
        self.on_committed()
        return view

    async def rotate(self) -> RotateKeyResult:
        """Re-encrypt every stored username under the current key; rows the keyring cannot open are reported."""
        async with all_users_read_transaction(self.sessions) as session:
            rows = (await session.execute(
                select(Credential.user_id, Credential.connection, Credential.username_encrypted)
                .where(Credential.username_encrypted.is_not(None)).order_by(Credential.connection))).all()
        rotated = current = 0
        failed: list[dict[str, str]] = []
        for user_id, connection, value in rows:
            aad = associated_data(user_id, connection)
            try:
                if not self.cipher.needs_rotation(value):
                    current += 1
                    continue
                fresh = self.cipher.rotate(value, aad)
            except DecryptionError as exc:
                failed.append({"connection": connection, "user_id": user_id, "error": str(exc)})
                continue
            async with user_transaction(self.sessions, user_id) as session:
                row = (await session.execute(select(Credential).where(Credential.connection == connection)
                                             .with_for_update())).scalar_one_or_none()
                if row is None or row.username_encrypted != value:
                    continue  # changed or removed meanwhile: it was written under the current key
                row.username_encrypted, row.key_id = fresh, self.cipher.current_key_id
            rotated += 1
        return RotateKeyResult(key_id=self.cipher.current_key_id, rows=len(rows), rotated=rotated,
                               already_current=current, failed=failed)

    def encrypt_username(self, row: Credential, username: str) -> None:
        """Store `username` on `row`, encrypted under the current key and bound to the row."""
        row.username_encrypted = self.cipher.encrypt(username, associated_data(row.user_id, row.connection))
        row.key_id = self.cipher.current_key_id

    # ---- helpers -------------------------------------------------------------------------------
    async def _load(self, session: AsyncSession, connection: str, *, for_update: bool = False
                    ) -> tuple[Credential, list[ConnectionAccount]]:
        query = select(Credential).where(Credential.connection == connection)
        if for_update:
            query = query.with_for_update()
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            raise not_registered(connection)
        return row, await self._accounts(session, connection)

    @staticmethod
    async def _accounts(session: AsyncSession, connection: str) -> list[ConnectionAccount]:
        return list((await session.execute(
            select(ConnectionAccount).where(ConnectionAccount.connection == connection)
            .order_by(ConnectionAccount.account_id))).scalars().all())

    def _stage(self, session: AsyncSession, view: ConnectionView, kinds: list[str], changes: list[str]) -> None:
        publisher = EventPublisher(self.broker, subjects=Subjects(view.connection), stream=self.stream,
                                   source=SOURCE, environment=view.environment, clock=self.clock)
        payload = ConnectionPayload(connection=view, changes=changes).model_dump(mode="json")
        for kind in kinds:
            stage_event(session, publisher, publisher.build(f"connection.{kind}", payload, user_id=view.user_id))


async def replace_accounts(session: AsyncSession, row: Credential, accounts: list[ConnectionAccount],
                     read: list[ReadAccount], at: datetime) -> bool:
    """Make the connection's per-account rows the accounts a verification read back, keeping each one's
    settings; accounts no longer listed are dropped. True when the set of accounts changed."""
    held = {a.account_id: a for a in accounts}
    for account in read:
        target = held.pop(account.account_id, None)
        if target is None:
            target = ConnectionAccount(connection=row.connection, account_id=account.account_id,
                                       user_id=row.user_id, options_level=0, live_enabled=False)
            session.add(target)
        target.title, target.account_type = account.title, account.account_type
        target.currency, target.net_liquidation = account.currency, account.net_liquidation
        target.verified_at = target.updated_at = at
    for gone in held.values():
        await session.delete(gone)
    return bool(held) or len(read) != len(accounts)
