"""Pure pre-trade compliance rules (RULES.md section 7)."""

from .config import RulesConfig
from .engine import evaluate
from .hours import MarketCalendar, xnys
from .model import (
    AccountState,
    BrokerSession,
    DayTradeRecord,
    Decision,
    Execution,
    MarketData,
    OptionContract,
    OrderLeg,
    OrderSpec,
    Position,
    Quote,
    Reason,
    Restriction,
    ServiceFlags,
    WorkingOrder,
    parse_occ,
)
from .regime import resolve_regime

__all__ = [
    "AccountState",
    "BrokerSession",
    "DayTradeRecord",
    "Decision",
    "Execution",
    "MarketCalendar",
    "MarketData",
    "OptionContract",
    "OrderLeg",
    "OrderSpec",
    "Position",
    "Quote",
    "Reason",
    "Restriction",
    "RulesConfig",
    "ServiceFlags",
    "WorkingOrder",
    "evaluate",
    "parse_occ",
    "resolve_regime",
    "xnys",
]
