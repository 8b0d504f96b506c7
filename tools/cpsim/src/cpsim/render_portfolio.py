"""JSON bodies of the account, portfolio and PnL endpoints, built on the recorded templates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from cpsim.accounts import Account, Position
from cpsim.clock import ms
from cpsim.payloads import recorded

ACCOUNT_OPENED_MS = 1769922000000


def f(x: Decimal) -> float:
    """Decimal -> JSON number, as IBKR sends money."""
    return float(x)


def whole(x: Decimal) -> float:
    """Decimal -> a whole-number JSON number (`994831.0`), as /iserver/account/{id}/summary sends money."""
    return float(x.to_integral_value())


def portfolio_account(acct: Account, brokerage_access: bool = True) -> dict[str, Any]:
    """Element of /portfolio/accounts (also /portfolio/{id}/meta)."""
    body: dict[str, Any] = recorded("Portfolio/GET-portfolio-accounts.json")[0]
    aid = acct.account_id
    body.update(
        {
            "id": aid,
            "accountId": aid,
            "accountVan": aid,
            "desc": aid,
            "accountTitle": acct.title,
            "displayName": acct.title,
            "accountStatus": ACCOUNT_OPENED_MS,
            "brokerageAccess": brokerage_access,
            "type": "DEMO" if aid.startswith("D") else "INDIVIDUAL",
        }
    )
    return body


def iserver_accounts(accounts: list[Account], selected: str, session_id: str) -> dict[str, Any]:
    """GET /iserver/accounts."""
    body: dict[str, Any] = recorded("Accounts/GET-iserver-accounts.json")
    props = next(iter(body["acctProps"].values()))
    ids = [a.account_id for a in accounts]
    body["accounts"] = ids
    body["acctProps"] = {i: dict(props) for i in ids}
    body["aliases"] = {i: i for i in ids}
    body["selectedAccount"] = selected
    body["sessionId"] = session_id[:8] + "." + session_id[8:16]
    body["isPaper"] = all(i.startswith("D") for i in ids)
    return body


SUMMARY_KEYS: dict[str, str] = {
    "accruedcash": "zero",
    "availablefunds": "available_funds",
    "availabletotrade": "available_funds",
    "availabletowithdraw": "available_funds",
    "buyingpower": "buying_power",
    "equitywithloanvalue": "equity",
    "excessliquidity": "excess_liquidity",
    "fullavailablefunds": "available_funds",
    "fullexcessliquidity": "excess_liquidity",
    "fullinitmarginreq": "init_margin",
    "fullmaintmarginreq": "maint_margin",
    "grosspositionvalue": "gross",
    "initmarginreq": "init_margin",
    "maintmarginreq": "maint_margin",
    "netliquidation": "equity",
    "previousdayequitywithloanvalue": "equity",
    "totalcashvalue": "cash",
    "settledcash": "cash",
    "lookaheadavailablefunds": "available_funds",
    "lookaheadexcessliquidity": "excess_liquidity",
    "lookaheadinitmarginreq": "init_margin",
    "lookaheadmaintmarginreq": "maint_margin",
    "regtequity": "equity",
    "sma": "equity",
    "daytradesremaining": "day_trades_remaining",
    **{f"daytradesremainingt+{k}": f"day_trades_remaining_t{k}" for k in range(1, 5)},
}


def _entry(amount: Decimal, ts: int, currency: str | None = "USD", value: str | None = None) -> dict[str, Any]:
    return {
        "amount": f(amount),
        "currency": currency,
        "isNull": False,
        "timestamp": ts,
        "value": value if value is not None else format(amount.normalize(), "f"),
        "severity": 0,
    }


def portfolio_summary(acct: Account, m: dict[str, Decimal], now: datetime) -> dict[str, Any]:
    """GET /portfolio/{id}/summary: key -> value object, base keys plus `-s` (securities) segments."""
    ts = int(now.timestamp())
    zero = Decimal(0)
    out: dict[str, Any] = {
        "accountcode": _entry(zero, ts, None, acct.account_id),
        "accountready": _entry(zero, ts, None, "true"),
        "accounttype": _entry(zero, ts, None, "INDIVIDUAL"),
        "segmenttitle-s": _entry(zero, ts, None, "Securities"),
    }
    for key, src in SUMMARY_KEYS.items():
        amount = zero if src == "zero" else m[src]
        day_trades = key.startswith("daytradesremaining")
        currency = None if day_trades else "USD"
        out[key] = _entry(amount, ts, currency)
        if not day_trades:
            out[f"{key}-s"] = _entry(amount, ts, currency)
    equity = m["equity"]
    out["cushion"] = _entry(
        (m["excess_liquidity"] / equity).quantize(Decimal("0.000001")) if equity else zero, ts, None
    )
    out["leverage-s"] = _entry((m["gross"] / equity).quantize(Decimal("0.01")) if equity else zero, ts, None)
    return out


LEDGER_MONEY = (
    "cashbalance",
    "settledcash",
    "netliquidationvalue",
    "stockmarketvalue",
    "stockoptionmarketvalue",
    "unrealizedpnl",
    "realizedpnl",
)


def ledger(acct: Account, m: dict[str, Decimal], now: datetime) -> dict[str, Any]:
    """GET /portfolio/{id}/ledger: USD and BASE entries."""
    template: dict[str, Any] = recorded("Portfolio/GET-portfolio-ledger.json")
    values = {
        "cashbalance": m["cash"],
        "settledcash": m["cash"],
        "netliquidationvalue": m["equity"],
        "stockmarketvalue": m["stock_mv"],
        "stockoptionmarketvalue": m["option_mv"],
        "unrealizedpnl": m["unrealized_pnl"],
        "realizedpnl": m["realized_pnl"],
    }
    out = {}
    for ccy in ("USD", "BASE"):
        e = dict(template[ccy])
        for k in e:
            if isinstance(e[k], float) and k not in values:
                e[k] = 0.0
        e.update({k: f(v) for k, v in values.items()})
        e.update({"acctcode": acct.account_id, "timestamp": int(now.timestamp()), "currency": ccy, "secondkey": ccy})
        out[ccy] = e
    return out


def iserver_summary(acct: Account, m: dict[str, Decimal]) -> dict[str, Any]:
    """GET /iserver/account/{id}/summary: flat numbers, whole units as the gateway sends them here."""
    body: dict[str, Any] = recorded("Accounts/GET-account-summary.json")
    body.update(
        {
            "accountType": acct.account_type.upper(),
            "status": "",
            "balance": whole(m["cash"]),
            "SMA": whole(m["equity"]),
            "buyingPower": whole(m["buying_power"]),
            "availableFunds": whole(m["available_funds"]),
            "excessLiquidity": whole(m["excess_liquidity"]),
            "netLiquidationValue": whole(m["equity"]),
            "equityWithLoanValue": whole(m["equity"]),
            "regTLoan": 0.0,
            "securitiesGVP": whole(m["gross"]),
            "totalCashValue": whole(m["cash"]),
            "accruedInterest": 0.0,
            "regTMargin": whole(m["init_margin"]),
            "initialMargin": whole(m["init_margin"]),
            "maintenanceMargin": whole(m["maint_margin"]),
            "cashBalances": [
                {"currency": "USD", "balance": whole(m["cash"]), "settledCash": whole(m["cash"])},
                {"currency": "Total (in USD)", "balance": whole(m["cash"]), "settledCash": whole(m["cash"])},
            ],
        }
    )
    return body


def pnl_row(acct: Account, m: dict[str, Decimal], daily: Decimal) -> dict[str, Any]:
    """One `upnl` row of /iserver/account/pnl/partitioned."""
    return {
        "rowType": 1,
        "dpl": f(daily),
        "nl": f(m["equity"]),
        "upl": f(m["unrealized_pnl"]),
        "el": f(m["excess_liquidity"]),
        "mv": f(m["stock_mv"] + m["option_mv"]),
    }


def position(acct: Account, p: Position, price: Decimal, now: datetime, description: str) -> dict[str, Any]:
    """Element of /portfolio/{id}/positions/{page} and /position/{conid}."""
    mult = p.multiplier
    mv = p.quantity * price * mult
    cost = p.quantity * p.avg_price * mult
    opt = p.sec_type == "OPT"
    return {
        "acctId": acct.account_id,
        "conid": p.conid,
        "contractDesc": description,
        "position": f(p.quantity),
        "mktPrice": f(price),
        "mktValue": f(mv.quantize(Decimal("0.01"))),
        "currency": "USD",
        "avgCost": f(p.avg_price * mult),
        "avgPrice": f(p.avg_price),
        "realizedPnl": f(p.realized_pnl),
        "unrealizedPnl": f((mv - cost).quantize(Decimal("0.01"))),
        "exchs": None,
        "expiry": p.expiry if opt else None,
        "putOrCall": p.right if opt else None,
        "multiplier": float(mult) if opt else 0.0,
        "strike": format(p.strike.normalize(), "f") if opt else "0",
        "exerciseStyle": "AMERICAN" if opt else None,
        "conExchMap": [],
        "assetClass": p.sec_type,
        "undConid": p.und_conid,
        "model": "",
        "incrementRules": [{"lowerEdge": 0.0, "increment": 0.01}],
        "displayRule": {
            "magnification": 0,
            "displayRuleStep": [{"decimalDigits": 2, "lowerEdge": 0.0, "wholeDigits": 4}],
        },
        "time": 30,
        "allExchanges": "SMART,AMEX,NYSE,CBOE,ARCA,NASDAQ",
        "listingExchange": p.listing_exchange or "NASDAQ",
        "countryCode": "US",
        "name": p.name or p.symbol,
        "lastTradingDay": p.expiry if opt else None,
        "group": None,
        "sector": None,
        "sectorGroup": None,
        "ticker": p.symbol,
        "type": "EQUITY" if opt else ("ETF" if p.symbol in ("SPY", "QQQ", "IWM") else "COMMON"),
        "hasOptions": not opt,
        "fullName": description if opt else p.symbol,
        "isUS": True,
        "isEventContract": False,
        "baseMktValue": f(mv.quantize(Decimal("0.01"))),
        "baseMktPrice": f(price),
        "baseAvgCost": f(p.avg_price * mult),
        "baseAvgPrice": f(p.avg_price),
        "baseRealizedPnl": f(p.realized_pnl),
        "baseUnrealizedPnl": f((mv - cost).quantize(Decimal("0.01"))),
        "crossCurrency": False,
        "pageSize": 100,
        "timestamp": ms(now),
    }
