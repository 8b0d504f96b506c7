"""Parsing of Client Portal contract and market-data bodies into typed models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ibkr_common.messages import bridge as m
from ibkr_common.messages import contracts as c
from ibkr_gateway_bridge import mapping as mp
from ibkr_gateway_bridge.mapping import to_decimal as dec
from ibkr_gateway_bridge.mapping import to_int
from ibkr_gateway_bridge.parsing import as_dict, as_list, as_text


def search(body: Any) -> list[c.Contract]:
    out = []
    for item in as_list(body):
        item = as_dict(item)
        conid = to_int(item.get("conid"))
        if conid is None or conid <= 0 or conid == 2147483647:
            continue
        sections = [as_dict(s) for s in as_list(item.get("sections"))]
        months: list[str] = []
        for s in sections:
            if s.get("secType") == "OPT" and s.get("months"):
                months = [x for x in str(s["months"]).split(";") if x]
        first = sections[0].get("secType") if sections else None
        out.append(c.Contract(
            conid=conid, symbol=as_text(item.get("symbol")), name=as_text(item.get("companyName")),
            sec_type=as_text(first) or ("IND" if item.get("restricted") == "IND" else None),
            exchange=as_text(item.get("description")), header=as_text(item.get("companyHeader")), option_months=months,
            derivative_sec_types=[str(s["secType"]) for s in sections[1:] if s.get("secType")],
        ))
    return out


def strikes(body: Any) -> tuple[list[Decimal], list[Decimal]]:
    b = as_dict(body)
    calls = [x for x in (dec(v) for v in as_list(b.get("call"))) if x is not None]
    puts = [x for x in (dec(v) for v in as_list(b.get("put"))) if x is not None]
    return calls, puts


def option_chain(underlying_conid: int, month: str, body: Any) -> c.OptionChain:
    """/iserver/secdef/strikes: the call and put strikes, each sorted and without repeats."""
    calls, puts = strikes(body)
    return c.OptionChain(underlying_conid=underlying_conid, month=month, calls=sorted(set(calls)),
                         puts=sorted(set(puts)))


def contract_info(conid: int, body: Any) -> c.ContractInfo:
    b = as_dict(body)
    und = to_int(b.get("underlying_con_id"))
    return c.ContractInfo(
        conid=to_int(b.get("con_id")) or conid, symbol=as_text(b.get("symbol")),
        sec_type=mp.asset_class(b.get("instrument_type")), name=as_text(b.get("company_name")),
        currency=as_text(b.get("currency")), exchange=as_text(b.get("exchange")),
        valid_exchanges=[x for x in str(b.get("valid_exchanges") or "").split(",") if x],
        local_symbol=as_text(b.get("local_symbol")), trading_class=as_text(b.get("trading_class")),
        multiplier=dec(b.get("multiplier")), strike=dec(b.get("strike")) or None,
        right=mp.right(b.get("right")),  # type: ignore[arg-type]
        expiry=mp.ibkr_date(b.get("expiry_full") or b.get("maturity_date")), underlying_conid=und or None,
        industry=as_text(b.get("industry")), category=as_text(b.get("category")),
    )


def secdef_info(body: Any) -> list[c.DerivativeContract]:
    out = []
    for x in as_list(body):
        x = as_dict(x)
        conid = to_int(x.get("conid"))
        if conid is None:
            continue
        out.append(c.DerivativeContract(
            conid=conid, symbol=as_text(x.get("symbol")), sec_type=as_text(x.get("secType")),
            right=mp.right(x.get("right")), strike=dec(x.get("strike")),  # type: ignore[arg-type]
            expiry=mp.ibkr_date(x.get("maturityDate")), multiplier=dec(x.get("multiplier")),
            trading_class=as_text(x.get("tradingClass")), exchange=as_text(x.get("exchange")),
            currency=as_text(x.get("currency")),
            description=" ".join(str(x[k]) for k in ("desc1", "desc2") if x.get(k)) or None,
        ))
    return out


def secdef(body: Any) -> list[c.SecdefEntry]:
    out = []
    for x in as_list(as_dict(body).get("secdef")):
        x = as_dict(x)
        conid = to_int(x.get("conid"))
        if conid is None:
            continue
        strike, mult, und = dec(x.get("strike")), dec(x.get("multiplier")), to_int(x.get("undConid"))
        has = x.get("hasOptions")
        out.append(c.SecdefEntry(
            conid=conid, symbol=as_text(x.get("ticker")), name=as_text(x.get("name")),
            sec_type=mp.asset_class(x.get("assetClass")),
            currency=as_text(x.get("currency")), listing_exchange=as_text(x.get("listingExchange")),
            expiry=mp.ibkr_date(x.get("expiry")), right=mp.right(x.get("putOrCall")),  # type: ignore[arg-type]
            strike=strike or None, multiplier=mult or None, underlying_conid=und or None,
            has_options=has if isinstance(has, bool) else None,
        ))
    return out


#: Snapshot fields that carry market data; the answer that only opens a conid's stream has none of them.
DATA_FIELDS = ("last", "bid", "ask", "close", "prior_close", "mark")


def has_data(snap: m.Snapshot) -> bool:
    """Whether a snapshot carries data (False: only the pre-flight answer)."""
    return any(k in snap.fields for k in DATA_FIELDS)


def snapshots(body: Any) -> m.Snapshots:
    """/iserver/marketdata/snapshot: one Snapshot per readable element; `complete` when each has data."""
    read = [snapshot(as_dict(item))[0] for item in as_list(body)]
    rows = [s for s in read if s is not None]
    return m.Snapshots(snapshots=rows, complete=all(has_data(s) for s in rows))


def snapshot(item: dict[str, Any]) -> tuple[m.Snapshot | None, bool]:
    """One snapshot element and whether it carries data (False: only the pre-flight answer)."""
    conid = to_int(item.get("conid"))
    if conid is None:
        return None, False
    named = mp.snapshot_fields(item)
    last, is_close, halted = mp.price_flags(named.get("last"))
    values: dict[str, Any] = {k: mp.to_decimal(named.get(k)) for k in mp.SNAPSHOT_DECIMALS if k != "last"}
    snap = m.Snapshot(
        conid=conid, last=last, last_is_close=is_close, halted=halted, availability=named.get("availability"),
        updated_at=mp.ms_time(item.get("_updated")), fields=named, **values,
    )
    return snap, has_data(snap)
