"""The registry's commands, `ibkr_admin.connections.*`: the setup flow, reads, and the key rotation.

Every command that carries a `user_id` acts only on that user's connections: an unknown connection is
NOT_FOUND, one owned by someone else FORBIDDEN (the environment's bootstrap connection only when
`IBKR_ENFORCE_OWNERSHIP` is on, as everywhere else).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from faststream.nats import NatsRouter
from sqlalchemy.ext.asyncio import AsyncSession

from ibkr_common.clock import Clock
from ibkr_common.db.models import ConnectionAccount, Credential
from ibkr_common.replies import ErrorCode, ServiceError, ok, reply_middleware
from ibkr_contract.connections import (
    AcknowledgeConnectionRequest,
    AdminSubjects,
    ConnectionList,
    ConnectionRef,
    ConnectionView,
    CreateConnectionRequest,
    DeleteResult,
    DirectoryRequest,
    ListConnectionsRequest,
    RotateKeyRequest,
    RotateKeyResult,
    SettingsRequest,
    UpdateConnectionRequest,
    VerifyResult,
)
from ibkr_contract.status import ServiceStatus, ServiceStatusRequest
from ibkr_registry.settings import RegistrySettings
from ibkr_registry.store import RegistryStore, replace_accounts
from ibkr_registry.verify import Disclosures, acknowledge, read_disclosures, verify_gateway

QUEUE_GROUP = "registry"
#: What each command does and its answer time (the AsyncAPI description of the subject).
ANSWERS = {
    "connections.create": "Steps 1-2 of the setup: a new connection (unverified, disabled); CONFLICT when the id "
                          "is taken, or when another user deleted it less than the quarantine ago "
                          "(IBKR_REGISTRY_QUARANTINE_S; the reply says until when). Answers within 2 s.",
    "connections.verify": "Step 3: checks the gateway through the connection's own gateway-bridge (reachable, "
                          "authenticated, environment, accounts and summaries) and stores the accounts read back. "
                          "Answers within 60 s (the gateway paces account reads).",
    "connections.settings": "Per-account settings (options level 0-4, live enablement on live connections) of "
                            "verified accounts. Answers within 2 s.",
    "connections.acknowledge": "Step 4: forwards the acknowledgment to the connection's compliance and reads back "
                               "what is still missing; enables a verified connection once nothing is. Answers "
                               "within 12 s.",
    "connections.list": "The connections the user owns. Answers within 2 s.",
    "connections.get": "One connection of the user. Answers within 2 s.",
    "connections.update": "Change the gateway or username (back to unverified and disabled), or switch the "
                          "connection off and on (`enabled`). Answers within 2 s.",
    "connections.delete": "Removes a connection; its services drop it. The id stays reserved for its owner for "
                          "the quarantine (IBKR_REGISTRY_QUARANTINE_S). Answers within 2 s.",
    "connections.rotate_key": "Operators only (NATS permissions): re-encrypts every stored credential under the "
                              "current key. Answers within 60 s.",
    "connections.directory": "Internal: every connection of every user, for the services that serve them. "
                             "Answers within 2 s.",
}


def _one_of_bootstrap(connection: str) -> ServiceError:
    return ServiceError(ErrorCode.CONFLICT,
                        f"connection {connection!r} is the environment's bootstrap connection (IBKR_CONNECTION): "
                        "it is configured by the environment, not changed or removed through the registry",
                        [{"field": "connection", "message": "the bootstrap connection"}])


class Handlers:
    """What the commands need: settings, the store, the broker (to the bridges and compliance), a clock."""

    def __init__(self, settings: RegistrySettings, store: RegistryStore, broker: Any, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.clock = clock

    async def _owner(self, request: ConnectionRef) -> str:
        return await self.store.require(request.connection, request.user_id,
                                        check_bootstrap_owner=self.settings.enforce_ownership)

    async def create(self, request: CreateConnectionRequest) -> ConnectionView:
        if request.connection == self.settings.connection:
            raise _one_of_bootstrap(request.connection)
        return await self.store.create(user_id=request.user_id, connection=request.connection,
                                       environment=request.environment, gateway=request.gateway,
                                       username=request.username)

    async def get(self, request: ConnectionRef) -> ConnectionView:
        return await self.store.get(request.connection, await self._owner(request))

    async def list(self, request: ListConnectionsRequest) -> ConnectionList:
        return ConnectionList(connections=await self.store.list_owned(request.user_id))

    async def directory(self, request: DirectoryRequest) -> ConnectionList:
        return ConnectionList(connections=await self.store.directory())

    async def update(self, request: UpdateConnectionRequest) -> ConnectionView:
        owner = await self._owner(request)
        if request.gateway is None and request.username is None and request.enabled is None:
            raise ServiceError(ErrorCode.VALIDATION_ERROR, "body: give gateway, username or enabled",
                               [{"field": "body", "message": "nothing to change: give gateway, username or enabled"}])

        async def apply(row: Credential, accounts: list[ConnectionAccount], session: AsyncSession) -> list[str]:
            if row.bootstrap:
                raise _one_of_bootstrap(row.connection)
            changes: list[str] = []
            gateway = request.gateway
            if gateway is not None and (row.gateway_host, row.gateway_port, row.gateway_ssl, row.gateway_ca_pem) != (
                    gateway.host, gateway.port, gateway.ssl, gateway.ca_pem):
                row.gateway_host, row.gateway_port = gateway.host, gateway.port
                row.gateway_ssl, row.gateway_ca_pem = gateway.ssl, gateway.ca_pem
                changes.append("gateway")
            if request.username is not None:
                self.store.encrypt_username(row, request.username)
                changes.append("username")
            if changes:
                row.verified_at = None  # a new gateway or login must be verified again
            if request.enabled is False and row.state != "disabled":
                row.state = "disabled"
                changes.append("enabled")
            elif request.enabled is True and row.state == "disabled":
                _ready_or_conflict(row)
                row.state = "verified"
                changes.append("enabled")
            elif request.enabled is True and not row.enabled:
                _ready_or_conflict(row)
            return changes

        return await self.store.change(request.connection, owner, apply)

    async def delete(self, request: ConnectionRef) -> DeleteResult:
        owner = await self._owner(request)
        view = await self.store.get(request.connection, owner)
        if view.bootstrap:
            raise _one_of_bootstrap(request.connection)
        await self.store.delete(request.connection, owner)
        return DeleteResult(connection=request.connection, deleted=True)

    async def settings_(self, request: SettingsRequest) -> ConnectionView:
        owner = await self._owner(request)
        now = self.clock.now()

        async def apply(row: Credential, accounts: list[ConnectionAccount], session: AsyncSession) -> list[str]:
            held = {a.account_id: a for a in accounts if a.verified_at is not None}
            problems = []
            seen: set[str] = set()
            for n, item in enumerate(request.accounts):
                if item.account_id in seen:
                    problems.append({"field": f"accounts.{n}.account_id", "message": "given twice"})
                elif item.account_id not in held:
                    problems.append({"field": f"accounts.{n}.account_id",
                                     "message": "not a verified account of this connection (run connections.verify)"})
                elif item.live_enabled and row.environment != "live":
                    problems.append({"field": f"accounts.{n}.live_enabled",
                                     "message": f"live trading cannot be enabled on a {row.environment} connection"})
                seen.add(item.account_id)
            if problems:
                summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
                raise ServiceError(ErrorCode.VALIDATION_ERROR, summary, problems)
            changed = False
            for item in request.accounts:
                account = held[item.account_id]
                if (account.options_level, account.live_enabled) != (item.options_level, item.live_enabled):
                    account.options_level, account.live_enabled = item.options_level, item.live_enabled
                    account.updated_at = now
                    changed = True
            return ["accounts"] if changed else []

        return await self.store.change(request.connection, owner, apply)

    async def verify(self, request: ConnectionRef) -> VerifyResult:
        owner = await self._owner(request)
        before = await self.store.get(request.connection, owner)
        found = await verify_gateway(self.broker, request.connection, before.environment,
                                     self.settings.bridge_timeout_s)
        account = found.accounts[0].account_id if found.accounts else None
        disclosures = await read_disclosures(self.broker, request.connection, owner, account,
                                             self.settings.compliance_timeout_s)
        found.add("disclosures", disclosures.missing == [], _disclosure_detail(disclosures),
                  skipped=disclosures.missing is None)
        now = self.clock.now()

        async def apply(row: Credential, accounts: list[ConnectionAccount], session: AsyncSession) -> list[str]:
            changes: list[str] = []
            if found.ok:
                if await replace_accounts(session, row, accounts, found.accounts, now):
                    changes.append("accounts")
                row.verified_at = now
                changes.append("verified_at")
            elif row.verified_at is not None and not row.bootstrap:
                row.verified_at = None
                changes.append("verified_at")
            changes += _record_disclosures(row, disclosures)
            return changes

        view = await self.store.change(request.connection, owner, apply,
                                       kind="verified" if found.ok else "updated")
        return VerifyResult(ok=found.ok, checks=found.checks, connection=view)

    async def acknowledge(self, request: AcknowledgeConnectionRequest) -> ConnectionView:
        owner = await self._owner(request)
        before = await self.store.get(request.connection, owner)
        await acknowledge(self.broker, request.connection, request.user_id, before.environment,
                          request.disclosures, self.settings.compliance_timeout_s)
        account = before.accounts[0].account_id if before.accounts else None
        # what is missing is the owner's: their acknowledgments decide whether the connection is enabled
        disclosures = await read_disclosures(self.broker, request.connection, owner, account,
                                             self.settings.compliance_timeout_s)

        async def apply(row: Credential, accounts: list[ConnectionAccount], session: AsyncSession) -> list[str]:
            return _record_disclosures(row, disclosures)

        return await self.store.change(request.connection, owner, apply)

    async def rotate_key(self, request: RotateKeyRequest) -> RotateKeyResult:
        return await self.store.rotate()

    async def status_details(self) -> dict[str, Any]:
        """For `ibkr_admin.status.registry`: how many connections, and the current key id."""
        directory = await self.store.directory()
        return {"connections": len(directory), "enabled": sum(v.enabled for v in directory),
                "key_id": self.store.cipher.current_key_id}


def _ready_or_conflict(row: Credential) -> None:
    if row.verified_at is None:
        raise ServiceError(ErrorCode.CONFLICT, "the connection is not verified: run connections.verify first",
                           [{"field": "enabled", "message": "not verified"}])
    if row.missing_disclosures is None or row.missing_disclosures:
        missing = ", ".join(row.missing_disclosures or ["(not read from compliance yet)"])
        raise ServiceError(ErrorCode.CONFLICT, f"disclosures still to acknowledge: {missing}",
                           [{"field": "enabled", "message": f"acknowledge first: {missing}"}])


def _record_disclosures(row: Credential, disclosures: Disclosures) -> list[str]:
    if disclosures.missing is None or disclosures.acknowledged is None:
        return []
    if (row.missing_disclosures, list(row.acknowledged or [])) == (disclosures.missing, disclosures.acknowledged):
        return []
    row.missing_disclosures, row.acknowledged = disclosures.missing, disclosures.acknowledged
    return ["disclosures"]


def _disclosure_detail(disclosures: Disclosures) -> str:
    if disclosures.missing is None:
        return disclosures.problem
    if disclosures.missing:
        return f"still to acknowledge: {', '.join(disclosures.missing)} (connections.acknowledge)"
    return "every disclosure the environment needs is acknowledged"


def build_router(handlers: Handlers, clock: Clock) -> NatsRouter:
    """The router of `ibkr_admin.connections.*` and `ibkr_admin.status.registry` (queue group: replicas share)."""
    router = NatsRouter(middlewares=[reply_middleware()])
    admin = AdminSubjects()
    started_at = clock.now()
    try:
        package_version = version("ibkr-registry")
    except PackageNotFoundError:
        package_version = "unknown"

    def subscriber(name: str, workers: int = 4) -> Any:
        return router.subscriber(admin.command(name), queue=QUEUE_GROUP, max_workers=workers,
                                 description=ANSWERS[name])

    @subscriber("connections.create")
    async def connections_create(request: CreateConnectionRequest) -> dict[str, Any]:
        return ok(await handlers.create(request))

    @subscriber("connections.verify", workers=8)
    async def connections_verify(request: ConnectionRef) -> dict[str, Any]:
        return ok(await handlers.verify(request))

    @subscriber("connections.settings")
    async def connections_settings(request: SettingsRequest) -> dict[str, Any]:
        return ok(await handlers.settings_(request))

    @subscriber("connections.acknowledge")
    async def connections_acknowledge(request: AcknowledgeConnectionRequest) -> dict[str, Any]:
        return ok(await handlers.acknowledge(request))

    @subscriber("connections.list")
    async def connections_list(request: ListConnectionsRequest) -> dict[str, Any]:
        return ok(await handlers.list(request))

    @subscriber("connections.get")
    async def connections_get(request: ConnectionRef) -> dict[str, Any]:
        return ok(await handlers.get(request))

    @subscriber("connections.update")
    async def connections_update(request: UpdateConnectionRequest) -> dict[str, Any]:
        return ok(await handlers.update(request))

    @subscriber("connections.delete")
    async def connections_delete(request: ConnectionRef) -> dict[str, Any]:
        return ok(await handlers.delete(request))

    @subscriber("connections.rotate_key", workers=1)
    async def connections_rotate_key(request: RotateKeyRequest) -> dict[str, Any]:
        return ok(await handlers.rotate_key(request))

    @subscriber("connections.directory")
    async def connections_directory(request: DirectoryRequest) -> dict[str, Any]:
        return ok(await handlers.directory(request))

    @router.subscriber(admin.status("registry"), queue=QUEUE_GROUP,
                       description="Who answers for the registry: its version, start time, how many connections "
                                   "and the current key id. Answers at once.")
    async def service_status(request: ServiceStatusRequest) -> dict[str, Any]:
        return ok(ServiceStatus(service="registry", version=package_version, connection=handlers.settings.connection,
                                started_at=started_at, now=clock.now(), details=await handlers.status_details()))

    return router
