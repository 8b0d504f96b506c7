"""DAY orders end at the close of their session; GTC (and every other time in force) orders keep working.

What a client reads, from REFERENCE.md (the Client Portal API reference the simulator follows):
- section 6, order status strings: "`Cancelled` | `cancelled` | balance cancelled (also system cancels/expiry)",
  and "Cancelled orders may carry `order_cancellation_by_system_reason`, e.g. "Cancelled by System: order
  expired" [doc OAS3/obs]" (the OpenAPI lists that field on the live-orders rows: "Only present for Cancelled
  orders. Provides the reason for order to have been cancelled or rejected by the system.");
- section 7.4, GET /iserver/account/orders "covers working orders plus those filled/cancelled in the current
  brokerage session", and order status knows "only orders known to the current brokerage session; older/unknown
  -> 503". So an expired order stays listed as `Cancelled` until the brokerage session ends (the nightly reset
  at local midnight, `session.py`), then it is gone from both.

Its session is the one in which it may work when it is placed (`hours.Calendar.session`): the regular session
open now or the next one; with `outsideRTH`, the extended session, so it ends at 20:00 (17:00 after an early
close). cpsim has no background ticker: every call to the gateway (and /sim/clock, /sim/prices,
/sim/market_hours) ticks first (`trading.tick`), and the tick expires what the clock has passed the close of,
before anything can fill, at the close's time. A client therefore never sees a DAY order work after its close.
The clock jumping over a whole session gives no chance to trade in it: a DAY order whose session was skipped
expires unfilled. In `always` mode the market never closes and nothing expires.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from cpsim import hours
from cpsim.orders import Order

if TYPE_CHECKING:
    from cpsim.state import SimState

#: REFERENCE.md section 6 (quoted above).
EXPIRED_REASON = "Cancelled by System: order expired"


def stamp(state: SimState, o: Order, now: datetime) -> None:
    """Set when `o` expires: the close of its session for a DAY order in exchange mode, else never."""
    if o.tif == "DAY" and state.market_hours == "exchange":
        o.expires_at = hours.next_close(now, o.outside_rth)
    else:
        o.expires_at = None


def stamp_unstamped(state: SimState, now: datetime) -> None:
    """The market was closed by `/sim/market_hours {"mode": "exchange"}`: DAY orders placed while it was open
    around the clock belong to the session open now or the next one."""
    for o in state.book.working():
        if o.expires_at is None:
            stamp(state, o, now)


def expire(state: SimState, now: datetime) -> None:
    """Cancel every working DAY order whose session closed at or before `now`, as of that close."""
    if state.market_hours != "exchange":
        return
    for o in state.book.working():
        if o.tif == "DAY" and o.expires_at is not None and o.expires_at <= now:
            o.cancel_reason = EXPIRED_REASON
            o.set_status("Cancelled", o.expires_at)
