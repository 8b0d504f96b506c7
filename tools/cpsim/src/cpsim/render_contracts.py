"""JSON bodies of contract search/definition and market-data snapshot endpoints."""

from __future__ import annotations

import zlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from cpsim.clock import ms
from cpsim.market import MONTHS, OPTION_EXCHANGES, Instrument, Market, Quote, fmt_strike
from cpsim.payloads import recorded

STOCK_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,LTSE,MEMX,PEARL"


def mexi_conid(symbol: str) -> int:
    """Stable conid of the (non-US) MEXI listing that IBKR also returns for US tickers."""
    return 30_000_000 + zlib.crc32(("MEXI" + symbol).encode()) % 9_000_000


def search_results(market: Market, inst: Instrument, name_only: bool) -> list[dict[str, Any]]:
    """GET /iserver/secdef/search for one underlying: the US listing first, then MEXI."""
    header = f"{inst.name} - {inst.listing_exchange}"
    if name_only:
        return [{"conid": str(inst.conid), "companyHeader": header, "companyName": inst.name, "symbol": inst.symbol}]
    expiries = sorted({o.expiry for o in market.options(inst.conid) if o.expiry})
    first = {
        "conid": str(inst.conid),
        "companyHeader": header,
        "companyName": inst.name,
        "symbol": inst.symbol,
        "description": inst.listing_exchange,
        "restricted": None,
        "fop": None,
        "opt": ";".join(f"{e:%Y%m%d}" for e in expiries),
        "war": None,
        "sections": [
            {"secType": "STK"},
            {
                "secType": "OPT",
                "months": ";".join(market.months(inst.conid)),
                "exchange": OPTION_EXCHANGES.replace(",", ";"),
            },
            {"secType": "BAG"},
        ],
    }
    second = {
        "conid": str(mexi_conid(inst.symbol)),
        "companyHeader": f"{inst.name} - MEXI",
        "companyName": inst.name,
        "symbol": inst.symbol,
        "description": "MEXI",
        "restricted": None,
        "sections": [{"secType": "STK", "exchange": "MEXI;"}],
    }
    return [first, second]


def contract_info(inst: Instrument) -> dict[str, Any]:
    """GET /iserver/contract/{conid}/info (snake_case)."""
    body: dict[str, Any] = recorded("Contracts/GET-contract-info.json")
    opt = inst.sec_type == "OPT"
    body.update(
        {
            "symbol": inst.symbol,
            "con_id": inst.conid,
            "instrument_type": inst.sec_type,
            "company_name": inst.name,
            "trading_class": inst.symbol,
            "local_symbol": inst.local_symbol,
            "exchange": "SMART",
            "currency": "USD",
            "valid_exchanges": OPTION_EXCHANGES if opt else STOCK_EXCHANGES,
            "underlying_con_id": inst.und_conid,
            "multiplier": str(inst.multiplier) if opt else None,
            "expiry_full": f"{inst.expiry:%Y%m%d}" if opt and inst.expiry else None,
            "maturity_date": f"{inst.expiry:%Y%m%d}" if opt and inst.expiry else None,
            "contract_month": f"{inst.expiry:%Y%m}" if opt and inst.expiry else None,
            "text": option_text(inst) if opt else None,
            "has_related_contracts": not opt,
        }
    )
    if opt:
        body.update({"strike": fmt_strike(inst.strike), "right": "CALL" if inst.right == "C" else "PUT"})
    return body


def option_text(o: Instrument) -> str:
    """`JAN 05 '24 195 Put`."""
    assert o.expiry is not None
    right = "Call" if o.right == "C" else "Put"
    return f"{MONTHS[o.expiry.month - 1]} {o.expiry:%d} '{o.expiry:%y} {fmt_strike(o.strike)} {right}"


def secdef_info(o: Instrument) -> dict[str, Any]:
    """Element of GET /iserver/secdef/info."""
    return {
        "conid": o.conid,
        "symbol": o.symbol,
        "secType": o.sec_type,
        "exchange": "SMART",
        "listingExchange": None,
        "right": o.right or None,
        "strike": float(o.strike),
        "currency": "USD",
        "cusip": None,
        "coupon": "No Coupon",
        "desc1": o.symbol,
        "desc2": option_text(o) if o.sec_type == "OPT" else None,
        "maturityDate": f"{o.expiry:%Y%m%d}" if o.expiry else None,
        "multiplier": str(o.multiplier),
        "tradingClass": o.symbol,
        "validExchanges": OPTION_EXCHANGES,
        "showPrips": True,
    }


def trsrv_secdef(inst: Instrument) -> dict[str, Any]:
    """Element of GET /trsrv/secdef."""
    body: dict[str, Any] = recorded("Contracts/GET-trsrv-secdef.json")["secdef"][0]
    opt = inst.sec_type == "OPT"
    body.update(
        {
            "conid": inst.conid,
            "name": inst.name,
            "assetClass": inst.sec_type,
            "ticker": inst.symbol,
            "fullName": inst.description,
            "type": "EQUITY" if opt else inst.kind,
            "hasOptions": not opt,
            "listingExchange": inst.listing_exchange,
            "undConid": inst.und_conid,
            "expiry": f"{inst.expiry:%Y%m%d}" if opt and inst.expiry else None,
            "lastTradingDay": f"{inst.expiry:%Y-%m-%d}" if opt and inst.expiry else None,
            "putOrCall": inst.right if opt else None,
            "strike": fmt_strike(inst.strike) if opt else "0",
            "multiplier": float(inst.multiplier) if opt else 0.0,
            "time": 43,
            "allExchanges": STOCK_EXCHANGES,
            "incrementRules": [{"lowerEdge": 0.0, "increment": 0.01}],
            "displayRule": {
                "magnification": 0,
                "displayRuleStep": [{"decimalDigits": 2, "lowerEdge": 0.0, "wholeDigits": 4}],
            },
            "pageSize": 100,
        }
    )
    return body


def trsrv_stocks(inst: Instrument) -> list[dict[str, Any]]:
    """Value of one symbol in GET /trsrv/stocks."""
    return [
        {
            "name": inst.name,
            "chineseName": inst.name,
            "assetClass": "STK",
            "contracts": [
                {"conid": inst.conid, "exchange": inst.listing_exchange, "isUS": True},
                {"conid": mexi_conid(inst.symbol), "exchange": "MEXI", "isUS": False},
            ],
        }
    ]


def _volume(v: int) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:.2f}M"
    if v >= 10_000:
        return f"{v / 1000:.1f}K"
    return f"{v:,}"


def snapshot_fields(market: Market, inst: Instrument, q: Quote) -> dict[str, str]:
    """Every snapshot field cpsim can fill, as IBKR's strings."""
    change = q.last - q.prior_close
    pct = (change / q.prior_close * 100) if q.prior_close else Decimal(0)
    out = {
        "31": f"{q.last:.2f}",
        "84": f"{q.bid:.2f}",
        "86": f"{q.ask:.2f}",
        "85": "100",
        "88": "200",
        "7059": "100",
        "87": _volume(q.volume),
        "7762": str(q.volume),
        "70": f"{q.high:.2f}",
        "71": f"{q.low:.2f}",
        "7295": f"{q.open:.2f}",
        "7296": f"{q.prior_close:.2f}",
        "7741": f"{q.prior_close:.2f}",
        "82": f"{change:+.2f}".replace("+", ""),
        "83": f"{pct:.2f}%",
        "7635": f"{(q.bid + q.ask) / 2:.2f}",
        "55": inst.symbol,
        "6004": inst.listing_exchange,
        "6008": str(inst.conid),
        "6070": inst.sec_type,
        "7051": inst.name,
        "7221": inst.listing_exchange,
        "6509": "RpB",
        "7184": "1",
        "7768": "1",
        "7219": str(inst.conid),
        "7220": inst.description,
    }
    if inst.sec_type == "OPT":
        delta = market.delta(inst)
        out.update(
            {
                "7308": f"{delta:.3f}",
                "7309": "0.010",
                "7310": "-0.050",
                "7311": "0.100",
                "7633": "25.0%",
                "6457": str(inst.und_conid),
                "201": inst.right,
            }
        )
    return out


def snapshot_row(market: Market, conid: int, fields: list[str], first: bool, now: datetime) -> dict[str, Any]:
    """One element of GET /iserver/marketdata/snapshot."""
    row: dict[str, Any] = {"conidEx": str(conid), "conid": conid}
    inst = market.get(conid)
    q = market.quote(conid) if inst is not None else None
    if first or inst is None or q is None:
        if inst is None:
            row.update({"_updated": ms(now), "server_id": "q0"})
        return row
    row.update({"_updated": ms(now), "server_id": f"q{conid % 97}", "6119": f"q{conid % 97}"})
    values = snapshot_fields(market, inst, q)
    for fld in fields or ["31", "84", "86"]:
        if fld in values:
            row[fld] = values[fld]
    row.setdefault("6509", values["6509"])
    return row
