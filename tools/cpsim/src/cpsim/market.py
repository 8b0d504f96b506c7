"""The simulated market: instruments, option chains, quotes and a seeded random walk."""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
OPTION_EXCHANGES = (
    "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,NASDAQBX,MIAX,GEMINI,EDGX,MERCURY,PEARL,EMERALD,MEMX,IBUSOPT"
)
SPREAD_CONID = 28812380  # IBKR's USD combo ("spread") conid used in conidex combo strings


@dataclass(frozen=True)
class Instrument:
    """One tradable contract."""

    conid: int
    symbol: str
    sec_type: str  # STK or OPT
    name: str
    listing_exchange: str = "NASDAQ"
    kind: str = "COMMON"  # IBKR `type`: COMMON, ETF
    und_conid: int = 0
    expiry: date | None = None
    strike: Decimal = Decimal(0)
    right: str = ""  # C or P
    multiplier: int = 1
    known: bool = True  # False for positions injected with conids outside the universe

    @property
    def month_code(self) -> str:
        """`MMMYY` as used by secdef search/strikes (empty for stocks)."""
        return f"{MONTHS[self.expiry.month - 1]}{self.expiry:%y}" if self.expiry else ""

    @property
    def description(self) -> str:
        """IBKR's contractDesc, e.g. `SPY    JAN2025 440 C [SPY   250117C00440000 100]`."""
        if self.sec_type != "OPT" or self.expiry is None:
            return self.symbol
        return (
            f"{self.symbol:<6} {MONTHS[self.expiry.month - 1]}{self.expiry:%Y} {fmt_strike(self.strike)} "
            f"{self.right} [{self.local_symbol} {self.multiplier}]"
        )

    @property
    def local_symbol(self) -> str:
        """OCC symbol for options, the ticker for stocks."""
        if self.sec_type != "OPT" or self.expiry is None:
            return self.symbol
        return f"{self.symbol:<6}{self.expiry:%y%m%d}{self.right}{int(self.strike * 1000):08d}"


@dataclass
class Quote:
    """Top of book plus the day's statistics (Decimal prices)."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    prior_close: Decimal
    volume: int = 0
    pinned: bool = False  # set through /sim/prices: the walk leaves it alone

    def touch(self, last: Decimal) -> None:
        """Record a new last price in the day's high/low."""
        self.last = last
        self.high = max(self.high, last)
        self.low = min(self.low, last)


def fmt_strike(strike: Decimal) -> str:
    """`440` or `187.5`, as IBKR prints strikes."""
    return format(strike.normalize(), "f")


def q2(x: Decimal | float) -> Decimal:
    """Round to cents."""
    return Decimal(str(x)).quantize(CENT, rounding=ROUND_HALF_UP)


STOCKS: tuple[tuple[int, str, str, str, str, str], ...] = (
    (265598, "AAPL", "APPLE INC", "NASDAQ", "COMMON", "230.00"),
    (756733, "SPY", "SPDR S&P 500 ETF TRUST", "ARCA", "ETF", "655.00"),
    (320227571, "QQQ", "INVESCO QQQ TRUST SERIES 1", "NASDAQ", "ETF", "585.00"),
    (76792991, "TSLA", "TESLA INC", "NASDAQ", "COMMON", "250.00"),
    (272093, "MSFT", "MICROSOFT CORP", "NASDAQ", "COMMON", "420.00"),
    (9579970, "IWM", "ISHARES RUSSELL 2000 ETF", "ARCA", "ETF", "220.00"),
)


def third_friday(year: int, month: int) -> date:
    """The standard monthly option expiry."""
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def expiries(today: date, weeklies: int = 4, monthlies: int = 3) -> list[date]:
    """Weekly Friday expiries for the next `weeklies` weeks plus `monthlies` monthly expiries."""
    out: set[date] = set()
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    for i in range(weeklies):
        out.add(friday + timedelta(weeks=i))
    y, m, n = today.year, today.month, 0
    while n < monthlies:
        tf = third_friday(y, m)
        if tf >= today:
            out.add(tf)
            n += 1
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return sorted(out)


def strike_step(price: Decimal) -> Decimal:
    """Strike spacing by price level."""
    if price < 50:
        return Decimal("1")
    if price < 200:
        return Decimal("2.5")
    return Decimal("5")


def _norm_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@dataclass
class Market:
    """All instruments and their quotes. Pure state; the caller supplies the time."""

    seed: int = 42
    today: date = field(default_factory=lambda: date(2026, 1, 2))
    walk_enabled: bool = True
    instruments: dict[int, Instrument] = field(default_factory=dict)
    quotes: dict[int, Quote] = field(default_factory=dict)
    by_symbol: dict[str, int] = field(default_factory=dict)
    chains: dict[int, list[int]] = field(default_factory=dict)  # underlying conid -> option conids
    volatility: float = 0.0002
    last_step: datetime | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        for conid, sym, name, exch, kind, px in STOCKS:
            self.instruments[conid] = Instrument(conid, sym, "STK", name, exch, kind)
            self.by_symbol[sym] = conid
            price = Decimal(px)
            self.quotes[conid] = Quote(price - CENT, price + CENT, price, price, price, price, price, 1_000_000)
            self._build_chain(conid, price)

    def _build_chain(self, und: int, price: Decimal) -> None:
        base = self.instruments[und]
        step = strike_step(price)
        atm = (price / step).to_integral_value() * step
        conids: list[int] = []
        for exp in expiries(self.today):
            for i in range(-10, 11):
                strike = atm + step * i
                for right in ("C", "P"):
                    key = f"{base.symbol}{exp:%Y%m%d}{right}{strike}"
                    conid = 500_000_000 + zlib.crc32(key.encode()) % 400_000_000
                    while conid in self.instruments:
                        conid += 1
                    opt = Instrument(
                        conid,
                        base.symbol,
                        "OPT",
                        base.name,
                        base.listing_exchange,
                        "EQUITY",
                        und,
                        exp,
                        strike,
                        right,
                        100,
                    )
                    self.instruments[conid] = opt
                    conids.append(conid)
        self.chains[und] = conids

    # ---- look-ups -------------------------------------------------------------------------------

    def get(self, conid: int) -> Instrument | None:
        """The instrument, or None when the conid is unknown."""
        return self.instruments.get(conid)

    def stock(self, symbol: str) -> Instrument | None:
        """The stock/ETF with this ticker."""
        conid = self.by_symbol.get(symbol.upper())
        return self.instruments[conid] if conid is not None else None

    def months(self, und: int) -> list[str]:
        """Option months (MMMYY) of an underlying, in expiry order."""
        seen: dict[str, None] = {}
        for c in self.chains.get(und, []):
            seen.setdefault(self.instruments[c].month_code, None)
        return list(seen)

    def options(self, und: int, month: str = "", strike: Decimal | None = None, right: str = "") -> list[Instrument]:
        """Options of an underlying filtered by month code, strike and right."""
        out = []
        for c in self.chains.get(und, []):
            o = self.instruments[c]
            if month and o.month_code != month.upper():
                continue
            if strike is not None and o.strike != strike:
                continue
            if right and o.right != right.upper()[:1]:
                continue
            out.append(o)
        return out

    def strikes(self, und: int, month: str) -> list[Decimal]:
        """Distinct strikes listed for a month."""
        return sorted({o.strike for o in self.options(und, month)})

    # ---- prices ---------------------------------------------------------------------------------

    def quote(self, conid: int) -> Quote | None:
        """Current quote; option quotes are derived from the underlying unless pinned."""
        inst = self.instruments.get(conid)
        if inst is None:
            return self.quotes.get(conid)
        if inst.sec_type == "OPT" and not (conid in self.quotes and self.quotes[conid].pinned):
            return self._option_quote(inst)
        return self.quotes.get(conid)

    def _option_quote(self, o: Instrument) -> Quote:
        und = self.quotes[o.und_conid].last
        assert o.expiry is not None
        years = max((o.expiry - self.today).days, 1) / 365
        s, k, sigma = float(und), float(o.strike), 0.25
        sd = s * sigma * math.sqrt(years)
        intrinsic = max(s - k, 0.0) if o.right == "C" else max(k - s, 0.0)
        tv = 0.4 * sd * math.exp(-(((k - s) / sd) ** 2) / 2)
        mid = max(q2(intrinsic + tv), Decimal("0.05"))
        prev = self.quotes.get(o.conid)
        q = Quote(mid - Decimal("0.05"), mid + Decimal("0.05"), mid, mid, mid, mid, mid, 1000)
        if prev is not None:
            q.open, q.prior_close, q.volume = prev.open, prev.prior_close, prev.volume
            q.high, q.low = max(prev.high, mid), min(prev.low, mid)
        self.quotes[o.conid] = q
        return q

    def delta(self, o: Instrument) -> float:
        """A rough Black-Scholes delta, for snapshot field 7308."""
        und = float(self.quotes[o.und_conid].last)
        years = max(((o.expiry or self.today) - self.today).days, 1) / 365
        d1 = (math.log(und / float(o.strike)) + 0.5 * 0.0625 * years) / (0.25 * math.sqrt(years))
        return _norm_cdf(d1) if o.right == "C" else _norm_cdf(d1) - 1

    def set_price(self, conid: int, bid: Decimal | None, ask: Decimal | None, last: Decimal | None) -> Quote:
        """Pin a quote (from /sim/prices); missing sides are derived from the others."""
        cur = self.quote(conid)
        ref = (
            last
            if last is not None
            else (bid + ask) / 2
            if bid is not None and ask is not None
            else (bid if bid is not None else ask if ask is not None else cur.last if cur else Decimal(0))
        )
        assert ref is not None
        b = bid if bid is not None else (ref - CENT if ask is None else min(ref, ask) - CENT)
        a = ask if ask is not None else (ref + CENT if bid is None else max(ref, bid) + CENT)
        if cur is None:
            cur = Quote(b, a, ref, ref, ref, ref, ref, 0)
        cur.bid, cur.ask, cur.pinned = b, a, True
        cur.touch(ref)
        self.quotes[conid] = cur
        return cur

    def step(self, now: datetime, max_steps: int = 600) -> bool:
        """Advance the random walk by one step per elapsed sim second; True when prices moved."""
        if self.last_step is None or now < self.last_step:
            self.last_step = now
            return False
        n = int((now - self.last_step).total_seconds())
        if n <= 0 or not self.walk_enabled:
            if n > 0:
                self.last_step = now
            return False
        self.last_step = now
        for _ in range(min(n, max_steps)):
            for conid, _sym, *_ in STOCKS:
                q = self.quotes[conid]
                if q.pinned:
                    continue
                last = max(q2(q.last * Decimal(str(1 + self._rng.gauss(0, self.volatility)))), CENT)
                q.touch(last)
                q.bid, q.ask = last - CENT, last + CENT
        return True
