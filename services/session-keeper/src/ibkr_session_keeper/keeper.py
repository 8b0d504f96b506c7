"""The keeper's loop: tickle, feed the state machine, act through the bridge, persist with the events.

Every `IBKR_TICKLE_INTERVAL` the bridge's `session.tickle` is called and its flags go through
`state.observe`; every second `state.on_clock` looks at the time (windows, warning, expiry,
reminders). Changes are written to `ibkr_session_tracking` with their events staged in the same
transaction (outbox). `tickled` events are published directly (acknowledged, retried): one per
tickle would otherwise be a database write per tickle; `last_tickle_at` is written at most once a
minute unless something else changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from ibkr_common.clock import Clock
from ibkr_common.envelope import EventEnvelope
from ibkr_common.events import EventPublisher
from ibkr_common.messages.session import SessionStatusResult
from ibkr_common.outbox import OutboxRelay
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_common.tasks import stop_task, wait_event
from ibkr_session_keeper.gateway import SessionGateway
from ibkr_session_keeper.state import (
    BAD_KEYS,
    Action,
    Observation,
    Outcome,
    Policy,
    SessionState,
    announce_key,
    learn_login,
    logged_out,
    observe,
    on_clock,
    recovery_due,
    reset_recovery,
    snapshot,
)
from ibkr_session_keeper.store import TrackingStore

log = logging.getLogger("ibkr_session_keeper.keeper")
TICKLE_PERSIST_EVERY = timedelta(minutes=1)
MAX_ACTION_ROUNDS = 3


class Keeper:
    """Owns the in-memory session state of one connection and the loop that keeps it current."""

    def __init__(
        self, *, policy: Policy, bridge: SessionGateway, store: TrackingStore, publisher: EventPublisher,
        relay: OutboxRelay | None, clock: Clock, tickle_interval_s: float,
        region: Literal["us", "eu", "asia"],
    ) -> None:
        self.policy = policy
        self.bridge = bridge
        self.store = store
        self.publisher = publisher
        self.relay = relay
        self.clock = clock
        self.tickle_interval_s = tickle_interval_s
        self.region = region
        self.state = SessionState()
        self.check_every_s = min(1.0, tickle_interval_s)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._pending: list[EventEnvelope] = []
        self._dirty = False
        self._tickle_persisted_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._login_task: asyncio.Task[None] | None = None
        self.tickles = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Resume from `ibkr_session_tracking`: what was announced then is not announced again."""
        try:
            loaded = await self.store.load()
        except Exception as exc:
            log.warning("could not read ibkr_session_tracking (%s); starting from nothing", type(exc).__name__)
            return
        if loaded is None:
            return
        now = self.clock.now()
        key = announce_key(loaded.status, loaded.reason)
        loaded.announced = None if loaded.status == "unknown" else key
        loaded.announced_at = now
        loaded.bad_since = now if key in BAD_KEYS else None
        self.state = loaded
        self._tickle_persisted_at = loaded.last_tickle_at
        log.info("resumed session state %s (reason %s, expires_at %s)", loaded.status, loaded.reason,
                 loaded.expires_at)

    def start(self) -> None:
        """Run the loop in the background."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop the loop; write what is still unwritten."""
        await stop_task(self._task)
        await stop_task(self._login_task)
        if self._pending or self._dirty:
            await self._commit(Outcome(changed=True))

    def wake(self) -> None:
        """Look at the clock now instead of within the next second."""
        self._wake.set()

    async def run(self) -> None:
        """Tickle every interval; look at the clock every second; never give up."""
        loop = asyncio.get_running_loop()
        next_tickle = loop.time()
        while True:
            try:
                if loop.time() >= next_tickle:
                    next_tickle = loop.time() + self.tickle_interval_s
                    await self.tickle_once()
                elif recovery_due(self.state, self.clock.now()):
                    await self.check_status()
                await self.check_clock()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("session loop step failed; carrying on")
            self._wake.clear()
            await wait_event(self._wake, max(0.0, min(self.check_every_s, next_tickle - loop.time())))

    # ---- steps -------------------------------------------------------------------------------

    async def tickle_once(self) -> None:
        """One tickle through the bridge, its observation, and a `tickled` event when it answered."""
        obs = await self.bridge.tickle()
        if obs is None:
            return
        answered = obs.kind == "auth"
        if obs.kind == "auth" and not (obs.authenticated and obs.connected and not obs.competing):
            confirmed = await self.bridge.status()  # the tickle's copy of the flags may be partial: ask
            if confirmed is not None and confirmed.kind in ("auth", "no_bridge"):
                obs = replace(confirmed, sso_expires_ms=obs.sso_expires_ms)
        now = self.clock.now()
        if answered:
            self.tickles += 1
            self.state.last_tickle_at = now
            persisted = self._tickle_persisted_at
            if persisted is None or now - persisted >= TICKLE_PERSIST_EVERY:
                self._dirty = True
        await self._observe(obs)
        if answered:
            await self.publisher.emit("session.tickled", snapshot(self.state, now) | {"tickled_at": now})

    async def check_status(self) -> None:
        """A full auth-status check through the bridge."""
        obs = await self.bridge.status()
        if obs is not None:
            await self._observe(obs)

    async def check_clock(self) -> None:
        """Apply what the passing of time changes."""
        await self._step(lambda: on_clock(self.state, self.clock.now(), self.policy))

    async def _observe(self, obs: Observation) -> None:
        await self._step(self._observer(obs))
        if self.state.login_assumed and self.state.authenticated and self._login_task is None:
            self._login_task = asyncio.get_running_loop().create_task(self._learn_login())

    async def _learn_login(self) -> None:
        """Ask the gateway when the user logged in (once per login: sso/validate allows 1 a minute)."""
        try:
            login_at = await self.bridge.login_time()
            await self._step(lambda: learn_login(self.state, login_at or self.state.login_at or self.clock.now(),
                                                 self.clock.now(), self.policy))
        except Exception:
            log.exception("could not learn the login time; keeping the assumed one")
        finally:
            self._login_task = None

    async def _step(self, step: Callable[[], Outcome], rounds: int = 0) -> None:
        async with self._lock:
            outcome = step()
            await self._commit(outcome)
        if rounds >= MAX_ACTION_ROUNDS:
            return
        for action in outcome.actions:
            obs = await self._perform(action)
            if obs is not None:
                await self._step(self._observer(obs), rounds + 1)

    def _observer(self, obs: Observation) -> Callable[[], Outcome]:
        return lambda: observe(self.state, obs, self.clock.now(), self.policy)

    async def _perform(self, action: Action) -> Observation | None:
        """Take one action; what it shows of the session is returned (a failed attempt is not an outage)."""
        log.info("session action: %s", action)
        if action == "reauthenticate":
            failed = await self.bridge.reauthenticate()
            if failed is not None and failed.kind != "gateway_error":
                return failed  # no session / no bridge: that is the state
            if failed is not None:
                action = "init"  # reauthenticate refused: ssodh/init is IBKR's current way
        if action in ("init", "init_compete"):
            obs = await self.bridge.init(compete=action == "init_compete")
            if obs is not None and obs.kind != "gateway_error":
                return obs
            log.info("session %s failed (%s); checking the status", action, obs.detail if obs else "no answer")
        return await self.bridge.status()

    async def _commit(self, outcome: Outcome) -> None:
        for kind, payload in outcome.events:
            log.info("session event %s (%s)", kind, payload.get("reason") or payload.get("status"))
            self._pending.append(self.publisher.build(f"session.{kind}", payload))
        if not (outcome.changed or self._pending or self._dirty):
            return
        try:
            await self.store.save(self.state, self.publisher, self._pending)
        except Exception as exc:
            log.warning("could not write ibkr_session_tracking (%s); publishing the events directly",
                        type(exc).__name__)
            for envelope in self._pending:
                await self.publisher.publish(envelope)
            self._pending.clear()
            self._dirty = True
            return
        self._pending.clear()
        self._dirty = False
        self._tickle_persisted_at = self.state.last_tickle_at
        if self.relay is not None:
            self.relay.wake()

    # ---- requests ----------------------------------------------------------------------------

    def status(self) -> SessionStatusResult:
        """The state as `session.status` answers it (from memory)."""
        s, now = self.state, self.clock.now()
        return SessionStatusResult(
            authenticated=s.authenticated, connected=s.connected, competing=s.competing,
            expires_at=s.expires_at, last_tickle_at=s.last_tickle_at, in_maintenance=s.in_maintenance,
            status=s.status, reason=s.reason, login_at=s.login_at, seconds_left=s.seconds_left(now),
            expiry_basis=s.expiry_basis, maintenance_window=s.window, maintenance_ends_at=s.window_ends_at,
            region=self.region,
        )

    async def logout(self) -> bool:
        """Log the gateway session out; `logged_out` is announced and no recovery follows."""
        reply = await self.bridge.logout()
        if not reply.ok and reply.code != ErrorCode.NOT_AUTHENTICATED:
            raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, f"logout failed: {reply.message}",
                               {"bridge_error": reply.code})
        if reply.ok and isinstance(reply.result, dict) and reply.result.get("logged_out") is False:
            raise ServiceError(ErrorCode.GATEWAY_UNAVAILABLE, "logout failed: the gateway did not confirm it")
        await self._step(lambda: logged_out(self.state, self.clock.now(), self.policy))
        return True

    async def reauthenticate(self) -> SessionStatusResult:
        """Open the brokerage session now (ssodh/init with compete), whatever the backoff or policy says."""
        async with self._lock:
            reset_recovery(self.state)
        obs = await self.bridge.init(compete=True)  # a human asked for the session: take it
        if obs is None:
            obs = await self.bridge.status()
        if obs is not None:
            await self._observe(obs)
            if obs.kind == "auth" and obs.connected and not obs.authenticated:
                await asyncio.sleep(0.5)  # the gateway opens the brokerage session asynchronously
                await self.check_status()
        return self.status()
