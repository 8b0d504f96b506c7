"""How long the gateway takes to answer, per endpoint (README "Latency model").

The CP Gateway answers most calls by a round trip to IBKR's servers; REFERENCE.md has few timings
(`travelTime: 7` ms inside IBKR for a history call, snapshot values refreshed about every 500 ms, an
internal timeout after 10 s answered 503). The table below is therefore mostly a stated assumption:
tens of milliseconds for reads, more for order writes, which IBKR checks before it answers. Each value
is the whole round trip added to a call; half is spent before the call acts (the request on its way)
and half after (the answer on its way), so the simulator's state changes mid-way, as IBKR's does.
A seeded jitter of +-`jitter` (default 20 %) spreads the values; nothing exceeds the 10 s timeout.
"""

from __future__ import annotations

import fnmatch
import random
import re
from dataclasses import dataclass, field
from typing import Any

#: (method or "*", path regex relative to /v1/api, milliseconds, why). First match wins.
MODEL: tuple[tuple[str, str, float, str], ...] = (
    ("*", r"/tickle", 15, "session keep-alive, answered from the gateway's session (assumption)"),
    ("*", r"/iserver/auth/status", 15, "auth status of the gateway's session (assumption)"),
    ("*", r"/logout", 20, "assumption"),
    ("GET", r"/sso/validate", 40, "one SSO check at IBKR (assumption)"),
    ("POST", r"/iserver/(auth/ssodh/init|reauthenticate)", 250, "opens the brokerage session (assumption)"),
    ("GET", r"/iserver/accounts", 60, "assumption"),
    ("POST", r"/iserver/account", 60, "switch account (assumption)"),
    ("GET", r"/iserver/marketdata/snapshot", 25, "served from the stream IBKR refreshes ~every 500 ms [doc]"),
    ("GET", r"/iserver/marketdata/history", 50, "travelTime 7 ms inside IBKR [obs KB] plus the hop (assumption)"),
    ("*", r"/iserver/marketdata/.*", 30, "assumption"),
    ("POST", r"/iserver/account/[^/]+/orders/whatif", 200, "margin preview computed by IBKR (assumption)"),
    ("POST", r"/iserver/account/[^/]+/orders", 150, "order checks before the answer (assumption)"),
    ("POST", r"/iserver/reply/[^/]+", 120, "confirmation of a question (assumption)"),
    ("POST", r"/iserver/account/[^/]+/order/[^/]+", 150, "modify (assumption)"),
    ("DELETE", r"/iserver/account/[^/]+/order/[^/]+", 100, "cancel acknowledgement (assumption)"),
    ("GET", r"/iserver/account/orders", 60, "assumption"),
    ("GET", r"/iserver/account/order/status/[^/]+", 50, "assumption"),
    ("GET", r"/iserver/account/trades", 60, "assumption"),
    ("*", r"/iserver/questions/.*", 40, "assumption"),
    ("*", r"/iserver/(secdef|contract)/.*", 80, "contract lookups (assumption)"),
    ("*", r"/trsrv/.*", 60, "assumption"),
    ("POST", r"/portfolio/[^/]+/positions/invalidate", 30, "assumption"),
    ("GET", r"/portfolio/[^/]+/positions/[^/]+", 60, "assumption"),
    ("*", r"/portfolio.*", 40, "assumption"),
    ("*", r"/iserver/account/.*", 50, "summary and pnl (assumption)"),
)
DEFAULT_MS = 40.0  # any other path (assumption)
CAP_MS = 10_000.0  # REFERENCE section 5: an internal timeout after 10 s is answered 503
_COMPILED = [(m, re.compile(p + r"$"), ms) for m, p, ms, _ in MODEL]


def model_ms(method: str, path: str) -> float:
    """The model's round trip (ms) of a call to `path` (relative to /v1/api)."""
    for m, rx, ms in _COMPILED:
        if (m == "*" or m == method) and rx.match(path):
            return ms
    return DEFAULT_MS


def _override_matches(key: str, method: str, path: str) -> bool:
    """`"POST /iserver/account/*/orders"` or a bare glob (any method), on the path relative to /v1/api."""
    want_method, _, glob = key.partition(" ") if " " in key else ("", "", key)
    if want_method and want_method.upper() != method:
        return False
    return fnmatch.fnmatchcase(path, glob)


@dataclass
class Latency:
    """The model as configured: on/off, a scale, a jitter fraction and per-endpoint overrides (ms)."""

    enabled: bool = True
    scale: float = 1.0
    jitter: float = 0.2
    overrides: dict[str, float] = field(default_factory=dict)
    seed: int = 42
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def base_ms(self, method: str, path: str) -> float:
        """The round trip before scale and jitter: the last matching override, else the model."""
        for key in reversed(list(self.overrides)):
            if _override_matches(key, method, path):
                return self.overrides[key]
        return model_ms(method, path)

    def delay_s(self, method: str, path: str) -> float:
        """Seconds this call takes (0 when off)."""
        if not self.enabled or self.scale <= 0:
            return 0.0
        ms = self.base_ms(method, path) * self.scale
        if self.jitter > 0 and ms > 0:
            ms *= 1 + self.rng.uniform(-self.jitter, self.jitter)
        return min(max(ms, 0.0), CAP_MS) / 1000

    def describe(self) -> dict[str, Any]:
        """What `GET /sim/latency` answers."""
        return {
            "enabled": self.enabled,
            "scale": self.scale,
            "jitter": self.jitter,
            "overrides": dict(self.overrides),
            "default_ms": DEFAULT_MS,
            "cap_ms": CAP_MS,
            "model": [{"method": m, "path": p, "ms": ms, "source": why} for m, p, ms, why in MODEL],
        }
