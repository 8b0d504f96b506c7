"""The simulator's clock: real time plus an offset that /sim/clock moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SimClock:
    """Wall-clock time shifted by a settable offset; always tz-aware UTC."""

    def __init__(self, frozen: datetime | None = None) -> None:
        self._offset = timedelta(0)
        self._frozen: datetime | None = frozen.astimezone(UTC) if frozen else None

    @staticmethod
    def _real() -> datetime:
        return datetime.now(UTC)

    def now(self) -> datetime:
        """Current simulated time (UTC)."""
        if self._frozen is not None:
            return self._frozen + self._offset
        return self._real() + self._offset

    def set(self, when: datetime) -> None:
        """Jump to `when` (naive values are taken as UTC); time keeps running from there."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        base = self._frozen if self._frozen is not None else self._real()
        self._offset = when.astimezone(UTC) - base

    def advance(self, seconds: float) -> None:
        """Move the clock forward (or back, if negative) by `seconds`."""
        self._offset += timedelta(seconds=seconds)

    def reset(self) -> None:
        """Back to real time."""
        self._offset = timedelta(0)

    @property
    def offset_s(self) -> float:
        """Seconds between simulated and real time."""
        return self._offset.total_seconds()


def ms(t: datetime) -> int:
    """Milliseconds since the epoch, as IBKR's `_r` and timestamp fields."""
    return int(t.timestamp() * 1000)
