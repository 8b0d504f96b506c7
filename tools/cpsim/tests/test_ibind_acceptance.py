"""Acceptance: ibind (an open-source Client Portal client), used as its documentation shows, against cpsim.

No simulator-specific code in the client calls: cpsim runs as a subprocess over HTTPS with its
self-signed certificate and ibind gets the URL with certificate verification off.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ibind import IbkrClient, OrderRequest, QuestionType, StockQuery

from cpsim.testing import ACCOUNT, CpsimHandle, start_cpsim

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture(scope="module")
def gateway() -> Iterator[CpsimHandle]:
    with start_cpsim(seed=3) as handle:
        yield handle


@pytest.fixture
def client(gateway: CpsimHandle) -> IbkrClient:
    httpx.post(gateway.sim_url + "/reset", verify=False)
    return IbkrClient(url=f"{gateway.api_url}/", account_id=ACCOUNT, cacert=False, timeout=10)


def test_ibind_checks_health(client: IbkrClient) -> None:
    assert client.check_health() is True


def test_ibind_health_is_false_when_the_gateway_session_is_gone(client: IbkrClient, gateway: CpsimHandle) -> None:
    httpx.post(gateway.sim_url + "/logout", verify=False)
    assert client.check_health() is False


def test_ibind_lists_accounts_and_positions(client: IbkrClient) -> None:
    accounts = client.portfolio_accounts().data
    assert [a["accountId"] for a in accounts] == [ACCOUNT]
    client.receive_brokerage_accounts()
    conid = client.stock_conid_by_symbol("SPY").data["SPY"]
    client.place_order(
        OrderRequest(conid=conid, side="BUY", quantity=5, order_type="MKT", acct_id=ACCOUNT, tif="DAY"), answers={}
    )
    client.invalidate_backend_portfolio_cache(ACCOUNT)
    positions = client.positions(account_id=ACCOUNT).data
    assert [(p["ticker"], p["position"]) for p in positions] == [("SPY", 5.0)]


def test_ibind_searches_a_contract(client: IbkrClient) -> None:
    found = client.search_contract_by_symbol("AAPL").data
    assert found[0]["conid"] == "265598" and found[0]["symbol"] == "AAPL"
    assert client.stock_conid_by_symbol(StockQuery("AAPL")).data == {"AAPL": 265598}


def test_ibind_places_an_order_through_questions_and_cancels_it(client: IbkrClient) -> None:
    client.receive_brokerage_accounts()
    order = OrderRequest(
        conid=265598,
        side="BUY",
        quantity=1,
        order_type="LMT",
        price=1.0,
        acct_id=ACCOUNT,
        coid="ibind-accept-1",
        tif="DAY",
    )
    answers = {QuestionType.PRICE_PERCENTAGE_CONSTRAINT: True, QuestionType.MISSING_MARKET_DATA: True}
    placed = client.place_order(order, answers).data
    order_id = placed["order_id"]
    assert placed["order_status"] == "Submitted" and order_id.isdigit()
    cancelled = client.cancel_order(order_id, ACCOUNT).data
    assert cancelled["msg"] == "Request was submitted" and cancelled["order_id"] == int(order_id)
    assert client.order_status(order_id).data["order_status"] == "Cancelled"


def test_ibind_refuses_an_unanswered_question(client: IbkrClient) -> None:
    client.receive_brokerage_accounts()
    order = OrderRequest(conid=265598, side="BUY", quantity=1, order_type="LMT", price=1.0, acct_id=ACCOUNT)
    with pytest.raises(RuntimeError, match="Percentage constraint"):
        client.place_order(order, answers={QuestionType.PRICE_PERCENTAGE_CONSTRAINT: False})
