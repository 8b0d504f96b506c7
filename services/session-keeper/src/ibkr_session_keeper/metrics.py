"""The session-keeper's figures for operators, read from the keeper's state when Prometheus scrapes."""

from __future__ import annotations

from typing import get_args

from faststream import FastStream
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from ibkr_common.ops import Observability, observe
from ibkr_common.outbox import OutboxRelay
from ibkr_session_keeper.keeper import Keeper
from ibkr_session_keeper.settings import SessionKeeperSettings
from ibkr_session_keeper.state import Status

STATES: tuple[str, ...] = get_args(Status)


def session_figures(ops: Observability, keeper: Keeper) -> None:
    """Session state (one series per state, 1 for the current one), seconds to expiry, tickles."""
    ops.gauge("ibkr_session_state", "The session's state: 1 for the current one, 0 for the others.",
              lambda: {(state,): keeper.state.status == state for state in STATES}, labels=("state",))
    ops.gauge("ibkr_session_seconds_to_expiry", "Seconds until the session is expected to expire (absent: "
              "unknown).", lambda: keeper.state.seconds_left(keeper.clock.now()))
    ops.gauge("ibkr_session_authenticated", "1 when the gateway last said authenticated and connected.",
              lambda: keeper.state.authenticated and keeper.state.connected)
    ops.gauge("ibkr_session_in_maintenance", "1 inside the region's maintenance window.",
              lambda: keeper.state.in_maintenance)
    ops.counter("ibkr_session_tickles", "Tickles sent through the bridge since start.", lambda: keeper.tickles)


def observe_session_keeper(app: FastStream, broker: NatsBroker, settings: SessionKeeperSettings, *,
                           engine: AsyncEngine, keeper: Keeper, relay: OutboxRelay) -> Observability:
    """Health, readiness, metrics and traces of the session-keeper, with its session and outbox figures."""
    ops = observe(app, broker, settings, "session-keeper", database=engine)
    session_figures(ops, keeper)
    ops.outbox(relay)
    ops.publisher(relay.publisher)
    return ops
