from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibkr_compliance.rules import AccountState, BrokerSession, OrderSpec, RulesConfig

#: The example cases (and the default rules configuration) kept with the service.
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "cases-examples.yaml"


@pytest.fixture(scope="session")
def examples_document() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def config(examples_document: dict[str, Any]) -> RulesConfig:
    return RulesConfig.from_mapping(examples_document["defaults"])


def _alpaca(**overrides: Any) -> AccountState:
    base: dict[str, Any] = {
        "broker": "alpaca",
        "environment": "paper",
        "account_id": "PA-TEST-0001",
        "account_type": "margin",
        "equity": Decimal("18000"),
        "previous_equity": Decimal("18000"),
        "options_level": 2,
        "option_buying_power": Decimal("9000"),
        "day_trades_in_window": (),
        "snapshot_age_s": Decimal("2"),
    }
    base.update(overrides)
    return AccountState.model_validate(base)


def _ibkr(**overrides: Any) -> AccountState:
    base: dict[str, Any] = {
        "broker": "ibkr",
        "environment": "paper",
        "account_id": "DU1234567",
        "account_type": "margin",
        "equity": Decimal("30000"),
        "previous_equity": Decimal("30000"),
        "options_level": 2,
        "option_buying_power": Decimal("10000"),
        "daytrades_remaining": -1,
        "day_trades_in_window": (),
        "session": BrokerSession(),
        "snapshot_age_s": Decimal("2"),
    }
    base.update(overrides)
    return AccountState.model_validate(base)


@pytest.fixture
def alpaca_account() -> Callable[..., AccountState]:
    return _alpaca


@pytest.fixture
def ibkr_account() -> Callable[..., AccountState]:
    return _ibkr


def _order(symbol: str = "AAPL261218C00250000", side: str = "buy", qty: str = "1", **kw: Any) -> OrderSpec:
    data: dict[str, Any] = {"symbol": symbol, "side": side, "qty": Decimal(qty), "order_type": "limit"}
    data.update(kw)
    return OrderSpec.model_validate(data)


@pytest.fixture
def order() -> Callable[..., OrderSpec]:
    return _order


def et(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def at() -> Callable[[str], datetime]:
    return et


@pytest.fixture(scope="module")
def stack_sim_clock() -> datetime | None:
    """The moment compliance_stack's `stack` sets cpsim's clock to (None: real time). A module that needs
    fills overrides it (compliance_stack.regular_hours)."""
    return None
