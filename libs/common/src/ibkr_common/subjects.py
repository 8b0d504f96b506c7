"""The subject catalogue: the public subjects of `ibkr_contract.subjects`, plus the internal `bridge.*` ones.

Every NATS subject the services use is built here or in the contract's catalogue, nowhere else.
"""

from __future__ import annotations

from typing import Final

from ibkr_contract import subjects as public
from ibkr_contract.subjects import (
    ACCOUNT_EVENTS,
    ACCOUNT_SCOPED_AREAS,
    COMPLIANCE_EVENTS,
    CONNECTION_PATTERN,
    EVENT_AREAS,
    EVENT_TYPES,
    ORDER_EVENTS,
    POSITION_EVENTS,
    ROOT,
    SERVICES,
    SESSION_EVENTS,
    SYNC_EVENTS,
    TOKEN_PATTERN,
    TRADING_EVENTS,
    all_connections_events,
    event_type_of,
)

__all__ = [
    "ACCOUNT_EVENTS", "ACCOUNT_SCOPED_AREAS", "BRIDGE_OPERATIONS", "COMPLIANCE_EVENTS", "CONNECTION_PATTERN",
    "EVENT_AREAS", "EVENT_TYPES", "ORDER_EVENTS", "POSITION_EVENTS", "ROOT", "SERVICES", "SESSION_EVENTS",
    "SYNC_EVENTS", "TOKEN_PATTERN", "TRADING_EVENTS", "Subjects",
    "all_connections_events", "event_type_of",
]

#: Operations the gateway-bridge serves under `ibkr.<conn>.bridge.<op>`; only the bridge talks to IBKR.
BRIDGE_OPERATIONS: Final = (
    "session.status", "session.tickle", "session.validate", "session.init", "session.reauthenticate",
    "session.logout",
    "accounts.list", "accounts.portfolio", "accounts.summary", "accounts.ledger", "accounts.pnl",
    "positions.list", "positions.page", "positions.get", "positions.invalidate",
    "orders.place", "orders.reply", "orders.cancel", "orders.modify", "orders.whatif", "orders.live",
    "orders.status", "orders.lookup", "orders.suppress", "orders.suppress_reset",
    "trades.list",
    "contracts.search", "contracts.info", "contracts.strikes", "contracts.secdef_info",
    "contracts.secdef",
    "marketdata.snapshot",
)


class Subjects(public.Subjects):
    """Subjects of one connection (`ibkr.<conn>`): the public ones and the internal bridge's."""

    def bridge(self, operation: str) -> str:
        """Internal request subject of the gateway-bridge for one operation."""
        if operation not in BRIDGE_OPERATIONS:
            raise ValueError(f"unknown bridge operation {operation!r}")
        return f"{self.root}.bridge.{operation}"

    @property
    def bridge_all(self) -> str:
        return f"{self.root}.bridge.>"


#: NATS's auth callout: the server asks here who a connecting client is (services/authz answers).
AUTH_CALLOUT: Final = "$SYS.REQ.USER.AUTH"
#: How long a user JWT the auth callout issues stays valid, in seconds: nats-callout signs every one with
#: `exp = iat + 3600`, and a client keeps the grant it carries until it reconnects or the JWT expires.
USER_JWT_LIFETIME_S: Final = 3600



def server_kick(server_id: str) -> str:
    """The system account's request that makes NATS server `server_id` close one client connection
    (body `{"cid": <client id>}`, nats-server 2.10+); authz sends it when a person's grant changes."""
    return f"$SYS.REQ.SERVER.{server_id}.KICK"
