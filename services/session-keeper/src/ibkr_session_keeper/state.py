"""The session state machine (pure): observations and time in, new state, events and actions out.

Inputs are what the gateway said (`Observation`, from a tickle or an auth-status call) and the
clock (`on_clock`: maintenance windows, the expiry warning, expiry, reminders). Outputs are the
events to emit (short types of `SESSION_EVENTS` with a payload) and the recovery actions to take
through the bridge. No storm: a state is announced when it changes; a bad state that persists is
reminded at most every `reminder`; `login_required` is said once; inside a maintenance window bad
states are not announced and recovery is paced at the longest backoff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ibkr_session_keeper.expiry import MAX_SESSION_AGE, Expiry, SsoCountdown, predict_expiry
from ibkr_session_keeper.windows import WindowTable

Status = Literal["unknown", "authenticated", "unauthenticated", "competing", "gateway_down", "expired", "logged_out"]
Action = Literal["init", "init_compete", "reauthenticate", "status_check"]
LOGIN_REQUIRED = "login_required"
#: Recovery action by reason of an unauthenticated state.
RECOVERY: dict[str, Action] = {"not_connected": "init", "no_bridge": "init", "session_lost": "reauthenticate"}
EXPIRY_TOLERANCE = timedelta(seconds=30)


@dataclass(frozen=True)
class Observation:
    """What one call to the gateway (through the bridge) showed.

    kind `auth`: the gateway answered with its auth flags; `no_session`: no session at all (401,
    only a browser login helps); `no_bridge`: the brokerage session is not open (`no bridge`);
    `gateway_error`: unreachable, an error status or an answer that makes no sense (`detail`).
    """

    kind: Literal["auth", "no_session", "no_bridge", "gateway_error"]
    authenticated: bool = False
    connected: bool = False
    competing: bool = False
    sso_expires_ms: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Policy:
    """The keeper's configuration, as the state machine needs it."""

    region: str
    windows: WindowTable
    warning: timedelta = timedelta(minutes=60)
    reminder: timedelta = timedelta(minutes=5)
    on_competing: Literal["wait", "takeover"] = "wait"
    backoff_initial: timedelta = timedelta(seconds=5)
    backoff_max: timedelta = timedelta(minutes=5)
    max_attempts: int = 5
    use_sso_expires: bool = True

    def backoff(self, attempts: int) -> timedelta:
        """Pause after the `attempts`-th attempt: initial, doubled each time, capped."""
        return min(self.backoff_initial * (2 ** max(0, attempts - 1)), self.backoff_max)


@dataclass
class SessionState:
    """What the keeper knows. The first group is persisted in `ibkr_session_tracking`."""

    status: Status = "unknown"
    authenticated: bool = False
    connected: bool = False
    competing: bool = False
    in_maintenance: bool = False
    login_at: datetime | None = None
    last_tickle_at: datetime | None = None
    expires_at: datetime | None = None
    warned_for: datetime | None = None
    reason: str | None = None
    # in memory only
    authenticated_at: datetime | None = None  # when the brokerage session (re)opened; None: unknown
    sso: SsoCountdown = field(default_factory=SsoCountdown)
    expiry_basis: str | None = None
    expired_for: datetime | None = None
    announced: str | None = None
    announced_at: datetime | None = None
    bad_since: datetime | None = None
    down_detail: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    window: str | None = None
    window_ends_at: datetime | None = None
    login_assumed: bool = False  # login_at is when the keeper first saw the session: ask the gateway

    def seconds_left(self, now: datetime) -> int | None:
        """Seconds until `expires_at` (never negative), or None when unknown."""
        if self.expires_at is None:
            return None
        return max(0, int((self.expires_at - now).total_seconds()))

    def persisted(self) -> tuple[Any, ...]:
        """The persisted fields, to tell whether a write is needed."""
        return (self.status, self.authenticated, self.connected, self.competing, self.in_maintenance,
                self.login_at, self.expires_at, self.warned_for, self.reason)


@dataclass
class Outcome:
    """What to do after a step: events `(type, payload)` to emit, actions to take, whether to persist."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    changed: bool = False

    def extend(self, other: Outcome) -> None:
        self.events += other.events
        self.actions += [a for a in other.actions if a not in self.actions]
        self.changed = self.changed or other.changed


def classify(obs: Observation) -> tuple[Status, str | None]:
    """Status and reason an observation stands for."""
    if obs.kind == "gateway_error":
        return "gateway_down", obs.detail or "gateway_error"
    if obs.kind == "no_session":
        return "unauthenticated", LOGIN_REQUIRED
    if obs.kind == "no_bridge":
        return "unauthenticated", "no_bridge"
    if obs.competing:
        return "competing", "competing_session"
    if obs.authenticated and obs.connected:
        return "authenticated", None
    if not obs.connected:
        return "unauthenticated", "not_connected"
    return "unauthenticated", "session_lost"


def announce_key(status: Status, reason: str | None) -> str:
    """What an announcement is about: the status, with login_required apart from retrying."""
    if status == "unauthenticated":
        return f"unauthenticated:{'login_required' if reason == LOGIN_REQUIRED else 'retrying'}"
    return status


BAD_KEYS = ("unauthenticated:retrying", "competing", "gateway_down")
#: Bad states expected inside a maintenance window: not announced there.
MAINTENANCE_EXPECTED = ("unauthenticated:retrying", "gateway_down")


def snapshot(state: SessionState, now: datetime) -> dict[str, Any]:
    """The fields every session event carries."""
    return {
        "status": state.status,
        "authenticated": state.authenticated,
        "connected": state.connected,
        "competing": state.competing,
        "in_maintenance": state.in_maintenance,
        "expires_at": state.expires_at,
        "seconds_left": state.seconds_left(now),
        "reason": state.reason,
    }


def _status_event(state: SessionState, now: datetime, policy: Policy, reminder: bool) -> tuple[str, dict[str, Any]]:
    payload = snapshot(state, now)
    if reminder:
        payload |= {"reminder": True, "since": state.bad_since}
    if state.status == "authenticated":
        payload |= {"login_at": state.login_at, "expiry_basis": state.expiry_basis}
        return "authenticated", payload
    if state.status == "competing":
        action = "takeover" if policy.on_competing == "takeover" else "wait"
        return "competing", payload | {"policy": policy.on_competing, "action": action}
    if state.status == "gateway_down":
        return "gateway_down", payload | {"detail": state.down_detail}
    if state.status == "expired":
        return "expired", payload | {"expiry_basis": state.expiry_basis}
    if state.status == "logged_out":
        return "logged_out", payload
    message = (
        "log in to the Client Portal Gateway in a browser" if state.reason == LOGIN_REQUIRED
        else "re-authenticating"
    )
    return "unauthenticated", payload | {"attempts": state.attempts, "message": message}


def _announce(state: SessionState, now: datetime, policy: Policy, out: Outcome) -> None:
    key = announce_key(state.status, state.reason)
    if key == state.announced or state.status == "unknown":
        return
    if state.announced == "gateway_down" and state.status != "gateway_down":
        out.events.append(("gateway_up", snapshot(state, now) | {"down_since": state.bad_since}))
        out.actions.append("status_check")
        state.announced, state.bad_since = "gateway_up", None
    if state.in_maintenance and key in MAINTENANCE_EXPECTED:
        return  # expected during a reset: no alarm (a needed human login is still said, once)
    if key in BAD_KEYS or key == "unauthenticated:login_required":
        state.bad_since = state.bad_since or now
    else:
        state.bad_since = None
    out.events.append(_status_event(state, now, policy, reminder=False))
    state.announced, state.announced_at = key, now


def _new_period(state: SessionState, obs: Observation, now: datetime, policy: Policy) -> None:
    if state.login_at is None or state.reason in (LOGIN_REQUIRED, "logout"):
        state.login_at = now  # a new login; a reopened brokerage session keeps the login it belongs to
        state.login_assumed = True
    state.authenticated_at = now
    state.sso = SsoCountdown()
    state.expires_at = None
    _refresh_expiry(state, obs, now, policy)
    state.attempts, state.next_attempt_at = 0, None


def _refresh_expiry(state: SessionState, obs: Observation, now: datetime, policy: Policy) -> None:
    """expires_at from the login and the regional reset; an earlier end only when ssoExpires counts down to it."""
    if state.login_at is None:
        state.login_at = now
    expiry = predict_expiry(region=policy.region, login_at=state.login_at, authenticated_at=state.authenticated_at,
                            now=now)
    if policy.use_sso_expires:
        if obs.sso_expires_ms:  # an auth-status check has none: the countdown stands as it was
            state.sso.read(now, obs.sso_expires_ms)
        trusted = state.sso.trusted
        if trusted is not None and now < trusted < expiry.at - EXPIRY_TOLERANCE:
            expiry = Expiry(trusted, "sso_expires")  # the gateway stopped extending the session
    _set_expiry(state, expiry, now, policy)


def learn_login(state: SessionState, login_at: datetime, now: datetime, policy: Policy) -> Outcome:
    """The gateway told when the user logged in (AUTH_TIME): predict the expiry from it."""
    state.login_assumed = False
    if login_at > now or now - login_at >= MAX_SESSION_AGE or login_at == state.login_at:
        return Outcome()
    before = state.persisted()
    state.login_at = login_at
    _refresh_expiry(state, Observation("auth", state.authenticated, state.connected, state.competing), now, policy)
    return Outcome(changed=state.persisted() != before)


def _set_expiry(state: SessionState, expiry: Expiry, now: datetime, policy: Policy) -> None:
    """Move expires_at only by more than the tolerance; a warning already given is not repeated for it."""
    if state.expires_at is not None and abs(expiry.at - state.expires_at) <= EXPIRY_TOLERANCE:
        state.expiry_basis = state.expiry_basis or expiry.basis  # unknown after a restart
        return
    warned = state.expires_at is not None and state.warned_for == state.expires_at
    state.expires_at, state.expiry_basis = expiry.at, expiry.basis
    if warned and expiry.at - policy.warning <= now:
        state.warned_for = expiry.at  # `expiring` was said for this session already: once is enough


def observe(state: SessionState, obs: Observation, now: datetime, policy: Policy) -> Outcome:
    """Apply one observation of the gateway at `now`."""
    out = Outcome()
    before = state.persisted()
    _check_expiry(state, now, policy, out, check=False)  # time passed since the last look at the clock
    status, reason = classify(obs)
    if state.status == "logged_out" and status == "unauthenticated":
        return out  # we logged out ourselves: no session is what we expect
    state.authenticated = obs.kind == "auth" and obs.authenticated and obs.connected and not obs.competing
    state.connected = obs.kind in ("auth", "no_bridge") and (obs.connected or obs.kind == "no_bridge")
    state.competing = obs.kind == "auth" and obs.competing
    if status == "authenticated":
        expired = state.expires_at is not None and now >= state.expires_at
        if state.status != "authenticated" or state.expires_at is None or expired:
            _new_period(state, obs, now, policy)
        else:
            _refresh_expiry(state, obs, now, policy)
        state.attempts, state.next_attempt_at = 0, None
    if (status == "gateway_down") != (state.status == "gateway_down"):
        state.attempts, state.next_attempt_at = 0, None  # recovery counts start over across an outage
    if status == "gateway_down":
        state.down_detail = reason
    if status == "unauthenticated" and reason != LOGIN_REQUIRED and state.attempts >= policy.max_attempts:
        reason = LOGIN_REQUIRED if not state.in_maintenance else reason
    state.status, state.reason = status, reason
    if obs.kind == "no_session":
        state.expires_at = state.warned_for = state.expiry_basis = None  # the login is gone: nothing to expire
    _announce(state, now, policy, out)
    _recover(state, obs, now, policy, out)
    out.changed = state.persisted() != before
    return out


def _recover(state: SessionState, obs: Observation, now: datetime, policy: Policy, out: Outcome) -> None:
    if state.status == "gateway_down":  # look again soon (backoff), sooner than the next tickle
        if state.next_attempt_at is None or now >= state.next_attempt_at:
            state.attempts += 1
            state.next_attempt_at = now + policy.backoff(state.attempts)
        return
    action: Action | None = None
    if state.status == "competing" and policy.on_competing == "takeover":
        action = "init_compete"
    elif state.status == "unauthenticated" and obs.kind != "no_session":
        action = RECOVERY.get(state.reason or "", "init")
    if action is None:
        return
    if state.next_attempt_at is not None and now < state.next_attempt_at:
        return
    state.attempts += 1
    delay = policy.backoff_max if state.in_maintenance else policy.backoff(state.attempts)
    state.next_attempt_at = now + delay
    out.actions.append(action)


def recovery_due(state: SessionState, now: datetime) -> bool:
    """Whether a recovery attempt is scheduled and its time has come."""
    return (
        state.status in ("unauthenticated", "competing", "gateway_down")
        and state.next_attempt_at is not None
        and now >= state.next_attempt_at
    )


def on_clock(state: SessionState, now: datetime, policy: Policy) -> Outcome:
    """Time-driven changes at `now`: maintenance windows, the expiry warning, expiry, reminders."""
    out = Outcome()
    before = state.persisted()
    active = policy.windows.active(now)
    if active is not None and state.in_maintenance and state.window is None:
        state.window, state.window_ends_at = active.label, active.ends_at  # resumed inside a window
    if active is not None and not state.in_maintenance:
        state.in_maintenance, state.window, state.window_ends_at = True, active.label, active.ends_at
        out.events.append(("maintenance_started", snapshot(state, now)
                           | {"window": active.label, "started_at": active.started_at, "ends_at": active.ends_at}))
    elif active is None and state.in_maintenance:
        out.events.append(("maintenance_ended", snapshot(state, now) | {"window": state.window}
                           | {"in_maintenance": False}))
        state.in_maintenance, state.window, state.window_ends_at = False, None, None
        state.next_attempt_at = None  # recover at once, at the normal pace
        state.attempts = 0
        out.actions.append("status_check")
        _announce(state, now, policy, out)
    _check_expiry(state, now, policy, out, check=True)
    key = announce_key(state.status, state.reason)
    if (
        key in BAD_KEYS and key == state.announced and not state.in_maintenance
        and state.announced_at is not None and now - state.announced_at >= policy.reminder
    ):
        out.events.append(_status_event(state, now, policy, reminder=True))
        state.announced_at = now
    out.changed = out.changed or state.persisted() != before
    return out


def _check_expiry(state: SessionState, now: datetime, policy: Policy, out: Outcome, check: bool) -> None:
    """`expired` once when expires_at has passed; `expiring` once inside the warning period."""
    if state.expires_at is not None and state.status not in ("logged_out", "expired"):
        if now >= state.expires_at and state.expired_for != state.expires_at:
            state.expired_for = state.expires_at
            state.status, state.reason, state.authenticated = "expired", state.expiry_basis, False
            out.events.append(_status_event(state, now, policy, reminder=False))
            state.announced, state.announced_at = "expired", now
            if check:
                out.actions.append("status_check")
        elif state.expires_at - policy.warning <= now < state.expires_at and state.warned_for != state.expires_at:
            state.warned_for = state.expires_at
            left = (state.expires_at - now).total_seconds()
            out.events.append(("expiring", snapshot(state, now)
                               | {"minutes_left": math.ceil(left / 60), "expiry_basis": state.expiry_basis}))


def logged_out(state: SessionState, now: datetime, policy: Policy) -> Outcome:
    """We logged the session out on request."""
    out = Outcome()
    state.status, state.reason = "logged_out", "logout"
    state.authenticated = state.connected = state.competing = False
    state.expires_at = state.warned_for = None
    state.attempts, state.next_attempt_at, state.bad_since = 0, None, None
    out.events.append(_status_event(state, now, policy, reminder=False))
    state.announced, state.announced_at = "logged_out", now
    out.changed = True
    return out


def reset_recovery(state: SessionState) -> None:
    """A human asked to re-authenticate: start the attempts over, allow login_required again."""
    state.attempts, state.next_attempt_at = 0, None
    if state.status == "logged_out":
        state.status = "unknown"
    if state.announced == "unauthenticated:login_required":
        state.announced = None
