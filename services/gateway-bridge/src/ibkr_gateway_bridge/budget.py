"""The overall time limit of one order operation (placement, reply, modify, cancel, lookup).

Callers (compliance) wait a fixed time for the bridge; an order operation that answers later is
lost to them even when it did the right thing. So each operation starts a `Budget` and every step
(waiting for the order lock, the POST, each lookup of a lost answer) gets only what is left of it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

#: Share of the remaining budget a POST may spend in the rate-limit queue / waiting for its answer;
#: the rest is kept for resolving a lost answer by cOID.
QUEUE_SHARE = 0.2
POST_SHARE = 0.4
#: Shortest read timeout given to a call (httpx needs a positive one).
MIN_CALL_S = 0.05


@dataclass(frozen=True)
class Budget:
    """A deadline on the event loop's clock (what `asyncio.timeout_at` uses)."""

    total_s: float
    deadline: float

    @classmethod
    def start(cls, total_s: float) -> Budget:
        return cls(total_s, asyncio.get_running_loop().time() + total_s)

    def remaining(self) -> float:
        """Seconds left (0 when spent)."""
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def call_limits(self, read_cap_s: float, queue_cap_s: float, *, read_share: float = 1.0,
                    queue_share: float = 1.0) -> dict[str, float]:
        """`timeout_s` / `max_wait_s` for one Client Portal call: the settings' values, cut to the budget."""
        left = self.remaining()
        return {"timeout_s": max(MIN_CALL_S, min(read_cap_s, left * read_share)),
                "max_wait_s": max(0.0, min(queue_cap_s, left * queue_share))}
