"""Client Portal JSON -> typed models (session, accounts, positions). Pure functions; unknown keys are
ignored, odd types tolerated. Orders: parsing_orders; contracts and market data: parsing_contracts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ibkr_common.messages import bridge as m
from ibkr_gateway_bridge import mapping as mp
from ibkr_gateway_bridge.mapping import to_decimal as dec
from ibkr_gateway_bridge.mapping import to_int

#: Positions per page of /portfolio/{accountId}/positions/{pageId}.
POSITIONS_PAGE_SIZE = 100


def as_dict(obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else {}


def as_list(obj: Any) -> list[Any]:
    return obj if isinstance(obj, list) else []


def as_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# ---- session ---------------------------------------------------------------------------------


def session_status(body: Any) -> m.SessionStatus:
    b = as_dict(body)
    info = as_dict(b.get("serverInfo"))
    return m.SessionStatus(
        authenticated=bool(b.get("authenticated")), connected=bool(b.get("connected")),
        competing=bool(b.get("competing")), message=as_text(b.get("message")), fail=as_text(b.get("fail")),
        server_name=as_text(info.get("serverName")), server_version=as_text(info.get("serverVersion")),
    )


def tickle(body: Any, now: datetime) -> m.TickleResult:
    b = as_dict(body)
    if b.get("error") is not None:
        return m.TickleResult(authenticated=False, connected=False, competing=False, no_session=True)
    auth = as_dict(as_dict(b.get("iserver")).get("authStatus"))
    expires = to_int(b.get("ssoExpires"))
    return m.TickleResult(
        authenticated=bool(auth.get("authenticated")), connected=bool(auth.get("connected")),
        competing=bool(auth.get("competing")) or bool(b.get("collission")), sso_expires_ms=expires,
        expires_at=now + timedelta(milliseconds=expires) if expires is not None else None,
    )


def validate(body: Any, now: datetime) -> m.ValidateResult:
    b = as_dict(body)
    expires = to_int(b.get("EXPIRES", b.get("expire")))
    login = to_int(b.get("LOGIN_TYPE", b.get("loginType")))
    return m.ValidateResult(
        valid=bool(b.get("RESULT")), expires_ms=expires,
        expires_at=now + timedelta(milliseconds=expires) if expires is not None else None,
        environment="live" if login == 1 else "paper" if login == 2 else None,
        login_at=mp.ms_time(b.get("AUTH_TIME")),
    )


# ---- accounts --------------------------------------------------------------------------------


def accounts_list(body: Any) -> m.AccountsList:
    b = as_dict(body)
    aliases = {str(k): str(v) for k, v in as_dict(b.get("aliases")).items() if v is not None}
    paper = b.get("isPaper")
    return m.AccountsList(
        accounts=[str(a) for a in as_list(b.get("accounts"))], selected_account=as_text(b.get("selectedAccount")),
        aliases=aliases, is_paper=paper if isinstance(paper, bool) else None,
    )


def portfolio_accounts(body: Any) -> m.PortfolioAccounts:
    out = []
    for a in as_list(body):
        a = as_dict(a)
        ident = a.get("accountId") or a.get("id")
        if not ident:
            continue
        access = a.get("brokerageAccess")
        out.append(m.PortfolioAccount(
            account_id=str(ident), title=as_text(a.get("accountTitle") or a.get("displayName")),
            currency=as_text(a.get("currency")), type=as_text(a.get("type")),
            trading_type=as_text(a.get("tradingType")),
            customer_type=as_text(a.get("acctCustType")), clearing_status=as_text(a.get("clearingStatus")),
            brokerage_access=access if isinstance(access, bool) else None,
        ))
    return m.PortfolioAccounts(accounts=out)


SUMMARY_KEYS = {
    "net_liquidation": "netliquidation", "equity_with_loan": "equitywithloanvalue",
    "buying_power": "buyingpower", "available_funds": "availablefunds", "excess_liquidity": "excessliquidity",
    "total_cash": "totalcashvalue", "settled_cash": "settledcash", "gross_position_value": "grosspositionvalue",
    "init_margin": "initmarginreq", "maint_margin": "maintmarginreq", "cushion": "cushion",
}


def account_summary(account_id: str, body: Any) -> m.AccountSummary:
    """`/portfolio/{id}/summary`: each key maps to `{amount, currency, isNull, value, ...}`."""
    values: dict[str, Decimal] = {}
    texts: dict[str, str] = {}
    currency = account_type = None
    for key, item in as_dict(body).items():
        item = as_dict(item)
        if not item or item.get("isNull"):
            continue
        if key == "accounttype":
            account_type = as_text(item.get("value"))
            continue
        text = item.get("value")
        amount = dec(item.get("amount")) if text in (None, "") else dec(text)
        if amount is not None:
            values[key] = amount
        elif isinstance(text, str) and text:
            texts[key] = text
        if key == "netliquidation" and item.get("currency"):
            currency = str(item["currency"])
    typed: dict[str, Any] = {field: values.get(key) for field, key in SUMMARY_KEYS.items()}
    dtr = values.get("daytradesremaining")
    return m.AccountSummary(
        account_id=account_id, currency=currency, account_type=account_type,
        day_trades_remaining=int(dtr) if dtr is not None else None, values=values, texts=texts, **typed,
    )


def ledger(account_id: str, body: Any) -> m.Ledger:
    entries = []
    for key, item in as_dict(body).items():
        item = as_dict(item)
        if not item:
            continue
        entries.append(m.LedgerEntry(
            currency=str(item.get("currency") or key), cash_balance=dec(item.get("cashbalance")),
            settled_cash=dec(item.get("settledcash")), net_liquidation=dec(item.get("netliquidationvalue")),
            stock_market_value=dec(item.get("stockmarketvalue")),
            option_market_value=dec(item.get("stockoptionmarketvalue")),
            unrealized_pnl=dec(item.get("unrealizedpnl")), realized_pnl=dec(item.get("realizedpnl")),
            exchange_rate=dec(item.get("exchangerate")),
        ))
    return m.Ledger(account_id=account_id, entries=entries)


def pnl(body: Any) -> m.Pnl:
    rows = []
    upnl = as_dict(as_dict(body).get("upnl"))
    for key, item in upnl.items():
        item = as_dict(item)
        rows.append(m.PnlRow(
            key=str(key), account_id=str(key).split(".", 1)[0], daily_pnl=dec(item.get("dpl")),
            net_liquidation=dec(item.get("nl")), unrealized_pnl=dec(item.get("upl")),
            excess_liquidity=dec(item.get("el")), market_value=dec(item.get("mv")),
        ))
    return m.Pnl(rows=rows, complete=bool(upnl))


def reauthenticate(body: Any) -> m.ReauthenticateResult:
    message = as_dict(body).get("message")
    return m.ReauthenticateResult(message=None if message is None else str(message))


def logout(body: Any) -> m.LogoutResult:
    b = as_dict(body)
    return m.LogoutResult(logged_out=b.get("status") is True or b.get("confirmed") is True)


# ---- positions -------------------------------------------------------------------------------


def position(account_id: str, p: dict[str, Any]) -> m.Position | None:
    conid = to_int(p.get("conid"))
    qty = dec(p.get("position"))
    if conid is None or qty is None:
        return None
    strike = dec(p.get("strike"))
    mult = dec(p.get("multiplier"))
    und = to_int(p.get("undConid"))
    return m.Position(
        account_id=str(p.get("acctId") or account_id), conid=conid,
        symbol=as_text(p.get("ticker") or p.get("contractDesc")),
        description=as_text(p.get("contractDesc") or p.get("name")),
        sec_type=mp.asset_class(p.get("assetClass") or p.get("secType")), quantity=qty,
        avg_cost=dec(p.get("avgCost")), avg_price=dec(p.get("avgPrice")),
        market_price=dec(p.get("mktPrice", p.get("marketPrice"))),
        market_value=dec(p.get("mktValue", p.get("marketValue"))), currency=as_text(p.get("currency")),
        unrealized_pnl=dec(p.get("unrealizedPnl")), realized_pnl=dec(p.get("realizedPnl")),
        expiry=as_text(p.get("expiry")), right=mp.right(p.get("putOrCall")),  # type: ignore[arg-type]
        strike=strike if strike else None, multiplier=mult if mult else None, underlying_conid=und or None,
        underlying_symbol=as_text(p.get("undSym")),
    )


def positions(account_id: str, body: Any) -> list[m.Position]:
    return positions_read(account_id, body)[0]


def positions_page(account_id: str, page: int, body: Any) -> m.Positions:
    """One page of /portfolio/{accountId}/positions/{pageId}; a full page means there may be more."""
    read, received, unreadable = positions_read(account_id, body)
    return m.Positions(account_id=account_id, positions=read, page=page,
                       has_more=isinstance(body, list) and len(body) >= POSITIONS_PAGE_SIZE,
                       received=received, unreadable=unreadable)


def position_of(account_id: str, body: Any) -> m.Positions:
    """/portfolio/{accountId}/position/{conid}: a list, or `{account: [...]}`."""
    read, received, unreadable = positions_read(account_id, body)
    return m.Positions(account_id=account_id, positions=read, received=received, unreadable=unreadable)


def positions_read(account_id: str, body: Any) -> tuple[list[m.Position], int, int]:
    """The readable positions, how many entries IBKR sent, and how many could not be read."""
    items = as_list(body)
    if isinstance(body, dict):  # /portfolio/positions/{conid}: {acct: [...]}
        items = [p for v in body.values() for p in as_list(v)]
    read = [p for p in (position(account_id, as_dict(x)) for x in items) if p is not None]
    return read, len(items), len(items) - len(read)
