from decimal import Decimal

import pytest
from pydantic import ValidationError

from ibkr_common.messages.orders import OrderRequest

BASE = {"client_order_id": "o-1", "user_id": "u", "account_id": "DU1234567", "environment": "paper",
        "instrument": {"conid": 265598}, "side": "BUY", "quantity": "1", "order_type": "LMT", "limit_price": "1.00"}


def test_a_valid_limit_order_parses_with_decimals():
    order = OrderRequest.model_validate(BASE)
    assert order.quantity == Decimal("1") and order.limit_price == Decimal("1.00") and order.tif == "DAY"


@pytest.mark.parametrize(("change", "field"), [
    ({"quantity": "-5"}, "quantity"),
    ({"client_order_id": "has space"}, "client_order_id"),
    ({"environment": "demo"}, "environment"),
    ({"order_type": "LMT", "limit_price": None}, "limit_price"),
    ({"instrument": {"symbol": "AAPL", "sec_type": "OPT"}}, "instrument"),
])
def test_bad_orders_name_the_field(change, field):
    with pytest.raises(ValidationError) as info:
        OrderRequest.model_validate({**BASE, **change})
    assert field in str(info.value)
