"""`status.<service>`: `ibkr_contract.status`, re-exported here, and the answer each service builds."""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ibkr_contract.status import ServiceStatus, ServiceStatusRequest

__all__ = ["ServiceStatus", "ServiceStatusRequest", "service_status"]


def service_status(service: str, connection: str, started_at: datetime, now: datetime,
                   details: dict[str, Any] | None = None) -> ServiceStatus:
    """The `ServiceStatus` of a service (its version read from the installed `ibkr-<service>` package)."""
    try:
        package_version = version(f"ibkr-{service}")
    except PackageNotFoundError:
        package_version = "unknown"
    return ServiceStatus(service=service, version=package_version, connection=connection, started_at=started_at,
                         now=now, details=details or {})
