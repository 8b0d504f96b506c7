"""Connections for tests of the services that serve them: the registry's `connection.*` event, published.

`announce_connection` publishes exactly what the registry publishes when a connection is registered,
changed or removed (a `ConnectionPayload` on `ibkr.<conn>.events.connection.<kind>`), so a test of the
bridge, the keeper, the sync-worker or compliance can add a second connection at run time without
starting the registry. Tests of the setup flow itself go through the registry's commands.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from ibkr_contract.connections import AccountView, ConnectionPayload, ConnectionView, GatewaySettings
from ibkr_contract.envelope import new_event
from ibkr_contract.subjects import Subjects


def connection_view(conn: str, *, user_id: str, gateway_url: str, environment: Literal["paper", "live"] = "paper",
                    enabled: bool = True, accounts: list[dict[str, Any]] | None = None) -> ConnectionView:
    """A registry view of a connection whose gateway is at `gateway_url` (`https://127.0.0.1:5001`)."""
    scheme, rest = gateway_url.split("://", 1)
    host, port = rest.rstrip("/").rsplit(":", 1)
    now = datetime.now(UTC)
    return ConnectionView(
        connection=conn, user_id=user_id, environment=environment,
        gateway=GatewaySettings(host=host, port=int(port), ssl=scheme == "https"),
        state="enabled" if enabled else "unverified", enabled=enabled, username_set=True,
        accounts=[AccountView(**a) for a in accounts or []], created_at=now, updated_at=now,
    )


async def announce_connection(nc: Any, view: ConnectionView,
                              kind: Literal["registered", "updated", "enabled", "disabled", "removed"] = "registered",
                              ) -> None:
    """Publish the registry's event for `view` on the connection's events subject (JetStream, acknowledged).

    `nc` is a connected nats-py client; the events stream must exist (the services' fixtures create it)."""
    envelope = new_event(f"connection.{kind}", conn=view.connection, environment=view.environment,
                         source="registry", occurred_at=datetime.now(UTC), user_id=view.user_id,
                         payload=ConnectionPayload(connection=view).model_dump(mode="json"))
    subject = Subjects(view.connection).event(f"connection.{kind}")
    await nc.jetstream().publish(subject, json.dumps(envelope.model_dump(mode="json")).encode(),
                                 headers={"Nats-Msg-Id": str(envelope.event_id)})
