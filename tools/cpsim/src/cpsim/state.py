"""Everything the simulator knows, in one object that /sim/reset rebuilds."""

from __future__ import annotations

import fnmatch
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from cpsim.accounts import Account
from cpsim.clock import SimClock
from cpsim.config import SimConfig
from cpsim.hours import normalise_mode
from cpsim.latency import Latency
from cpsim.limits import RateLimiter
from cpsim.market import Market
from cpsim.orders import OrderBook
from cpsim.session import Session

DEFAULT_ACCOUNT = "DU1234567"
NY = ZoneInfo("America/New_York")


@dataclass
class Fault:
    """The next `count` calls whose path matches `path_glob` misbehave."""

    path_glob: str
    status: int | None = None
    body: Any = None
    delay_ms: int = 0
    count: int = 1
    drop_connection: bool = False
    html: bool = False
    method: str | None = None
    #: The call is served first and the fault applies to its answer (delay, drop): the gateway acted and the
    #: client never learns it, the lost answer of an order that was accepted.
    after: bool = False

    def matches(self, method: str, path: str) -> bool:
        """Glob match on the full path or on the path relative to /v1/api."""
        if self.method and self.method.upper() != method:
            return False
        short = path[len("/v1/api") :] if path.startswith("/v1/api") else path
        return fnmatch.fnmatchcase(path, self.path_glob) or fnmatch.fnmatchcase(short, self.path_glob)


class SimState:
    """Clock, market, session, limits, latency, market hours, accounts, orders, faults and the request log.

    One per gateway: a process serving several gateways (`--gateway`) holds one SimState for each.
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = SimClock()
        self.reset()

    def reset(
        self, seed: int | None = None, accounts: list[dict[str, Any]] | None = None, keep_clock: bool = False
    ) -> None:
        """Fresh state: the gateway's accounts (by default one paper margin account DU1234567 with
        1,000,000 USD), brokerage session open, latency and market hours as configured."""
        if not keep_clock:
            self.clock.reset()
        now = self.clock.now()
        cfg = self.config
        self.seed = cfg.seed if seed is None else seed
        self.market = Market(self.seed, now.astimezone(NY).date(), cfg.walk)
        self.market.last_step = now
        self.session = Session(cfg.timezone, cfg.idle_timeout_s, cfg.max_session_age_s)
        self.session.login(now)
        self.limits = RateLimiter(enabled=True, penalty_s=cfg.penalty_s)
        self.latency = Latency(enabled=cfg.latency, scale=cfg.latency_scale, seed=self.seed)
        self.market_hours = normalise_mode(cfg.market_hours)
        self.hours_state: tuple[bool, bool] | None = None  # (regular, extended) open at the last tick
        self.accounts: dict[str, Account] = {}
        for spec in accounts or [{"id": a} for a in cfg.accounts]:
            acct = Account(str(spec.get("id", DEFAULT_ACCOUNT)))
            self.accounts[acct.account_id] = acct
        self.selected = next(iter(self.accounts))
        self.book = OrderBook()
        self.faults: list[Fault] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=cfg.request_log_size)
        self.positions_cache: dict[str, tuple[datetime, list[dict[str, Any]]]] = {}
        self.dirty = False

    def market_ref(self) -> Market:
        """The current market (routes call this: /sim/reset replaces the object)."""
        return self.market

    def today(self) -> date:
        """The trading date (New York) on the sim clock."""
        return self.clock.now().astimezone(NY).date()

    def price(self, conid: int) -> Decimal | None:
        """Last price of a conid of the universe (None outside it)."""
        q = self.market.quote(conid)
        return q.last if q is not None else None

    def positions_changed(self, account: str) -> None:
        """A fill happened: working orders should be re-examined on the next tick."""
        self.dirty = True

    def account(self, account_id: str) -> Account | None:
        """An account by id."""
        return self.accounts.get(account_id)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching the call; consumes one of its uses."""
        for f in self.faults:
            if f.count > 0 and f.matches(method, path):
                f.count -= 1
                if f.count <= 0:
                    self.faults.remove(f)
                return f
        return None
