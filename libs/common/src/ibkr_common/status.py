"""`ibkr.<conn>.status.<service>`: the small responder every service adds to its router."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from faststream.nats import NatsRouter

from ibkr_common.clock import Clock
from ibkr_common.connections import current_connection
from ibkr_common.replies import ok
from ibkr_common.subjects import Subjects
from ibkr_contract.status import ServiceStatus, ServiceStatusRequest

__all__ = ["ServiceStatus", "ServiceStatusRequest", "add_status_responder"]


async def _no_details() -> dict[str, Any]:
    return {}


def add_status_responder(router: NatsRouter, subjects: Subjects, service: str, clock: Clock, *, queue: str,
                         details: Callable[[], Awaitable[dict[str, Any]]] = _no_details,
                         details_of: Callable[[str], Awaitable[dict[str, Any]]] | None = None) -> None:
    """Answer `status.<service>` with a `ServiceStatus`: the version, the start time, and `details()`.

    On `Subjects.every_connection()` it answers for the connection the request came on, with
    `details_of(conn)` (which may raise ServiceError NOT_FOUND for a connection the service does not serve)."""
    started_at = clock.now()
    try:
        package_version = version(f"ibkr-{service}")
    except PackageNotFoundError:
        package_version = "unknown"

    @router.subscriber(subjects.service_status(service), queue=queue,
                       description=f"Who answers for {service}: its version, start time and a few facts. "
                                   "Answers at once (no other service is asked).")
    async def service_status(request: ServiceStatusRequest) -> dict[str, Any]:
        conn = current_connection() if subjects.every else subjects.conn
        facts = await details_of(conn) if details_of is not None else await details()
        return ok(ServiceStatus(service=service, version=package_version, connection=conn,
                                started_at=started_at, now=clock.now(), details=facts))
