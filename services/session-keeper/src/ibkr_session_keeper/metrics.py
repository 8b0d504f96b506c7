"""The session-keeper's figures for operators, read from each connection's keeper when Prometheus scrapes."""

from __future__ import annotations

from typing import get_args

from faststream import FastStream
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_common.ops import Observability, observe
from ibkr_common.outbox import OutboxRelay
from ibkr_session_keeper.keepers import Keepers
from ibkr_session_keeper.settings import SessionKeeperSettings
from ibkr_session_keeper.state import Status

STATES: tuple[str, ...] = get_args(Status)


def session_figures(ops: Observability, keepers: Keepers) -> None:
    """Per connection: session state (one series per state, 1 for the current one), seconds to expiry, tickles."""
    ops.gauge("ibkr_session_state", "The session's state: 1 for the current one, 0 for the others.",
              lambda: {(conn, state): k.state.status == state for conn, k in keepers for state in STATES},
              labels=("connection", "state"))
    ops.gauge("ibkr_session_seconds_to_expiry", "Seconds until the session is expected to expire (absent: "
              "unknown).", lambda: {(conn,): k.state.seconds_left(k.clock.now()) for conn, k in keepers},
              labels=("connection",))
    ops.gauge("ibkr_session_authenticated", "1 when the gateway last said authenticated and connected.",
              lambda: {(conn,): k.state.authenticated and k.state.connected for conn, k in keepers},
              labels=("connection",))
    ops.gauge("ibkr_session_in_maintenance", "1 inside the region's maintenance window.",
              lambda: {(conn,): k.state.in_maintenance for conn, k in keepers}, labels=("connection",))
    ops.counter("ibkr_session_tickles", "Tickles sent through the bridge since start.",
                lambda: {(conn,): k.tickles for conn, k in keepers}, labels=("connection",))
    ops.gauge("ibkr_session_connections", "Connections whose session this keeper keeps.", lambda: len(keepers))


def observe_session_keeper(app: FastStream, broker: NatsBroker, settings: SessionKeeperSettings, *,
                           engine: AsyncEngine, keepers: Keepers, relay: OutboxRelay) -> Observability:
    """Health, readiness, metrics and traces of the session-keeper, with its sessions' and outbox figures."""
    ops = observe(app, broker, settings, "session-keeper", database=engine)
    session_figures(ops, keepers)
    ops.outbox(relay)
    ops.publisher(relay.publisher)
    return ops
