"""The contract stands on pydantic alone, says the same as libs/common, and writes decimals plainly."""

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ibkr_contract import subjects as public
from ibkr_contract.envelope import new_event
from ibkr_contract.orders import Decision, OrderRequest, Reason
from ibkr_contract.subjects import COMMANDS, SERVICES, Subjects
from ibkr_contract.sync import AccountView, OrderView
from ibkr_contract.types import jsonable, plain_decimal

#: What pydantic itself brings along.
PYDANTIC_FAMILY = {"pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection"}
MODULES = ("ibkr_contract", "ibkr_contract.orders", "ibkr_contract.sync", "ibkr_contract.session",
           "ibkr_contract.audit", "ibkr_contract.contracts", "ibkr_contract.compliance", "ibkr_contract.status",
           "ibkr_contract.envelope", "ibkr_contract.errors", "ibkr_contract.subjects", "ibkr_contract.events",
           "ibkr_contract.requests", "ibkr_contract.paging")


def _top_level_modules(code: str) -> set[str]:
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())


def test_the_contract_imports_nothing_but_pydantic_and_the_standard_library():
    code = ("import sys, importlib\n"
            f"for m in {MODULES!r}: importlib.import_module(m)\n"
            "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))")
    loaded = _top_level_modules(code)
    foreign = {m for m in loaded - set(sys.stdlib_module_names) if not m.startswith("_sysconfigdata")}
    foreign -= PYDANTIC_FAMILY | {"ibkr_contract", "__main__"}
    assert foreign == set()


def test_the_check_sees_a_heavier_import():
    code = "import sys, ibkr_common.replies; print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))"
    loaded = _top_level_modules(code)
    assert "faststream" in loaded - set(sys.stdlib_module_names)


def test_libs_common_re_exports_the_same_classes():
    from ibkr_common.envelope import EventEnvelope as CommonEnvelope
    from ibkr_common.messages import orders, sync
    from ibkr_common.replies import ErrorCode as CommonErrorCode
    from ibkr_common.subjects import Subjects as CommonSubjects
    from ibkr_contract.envelope import EventEnvelope
    from ibkr_contract.errors import ErrorCode

    assert orders.OrderRequest is OrderRequest and sync.AccountView is AccountView
    assert CommonEnvelope is EventEnvelope and CommonErrorCode is ErrorCode
    assert issubclass(CommonSubjects, Subjects)
    assert CommonSubjects("paper").bridge("orders.place") == "ibkr.paper.bridge.orders.place"
    assert not hasattr(Subjects("paper"), "bridge")


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("1E+6"), "1000000"), (Decimal("1E+1"), "10"), (Decimal("187.25"), "187.25"),
    (Decimal("1000.00"), "1000.00"), (Decimal("-0.5"), "-0.5"), (Decimal("0E-8"), "0.00000000"),
])
def test_decimals_are_plain_strings(value, text):
    assert plain_decimal(value) == text
    assert jsonable({"a": [value]}) == {"a": [text]}


def test_models_write_plain_decimals_in_fields_and_free_form_parts():
    view = AccountView(account_id="DU1", net_liquidation=Decimal("1E+6"), synced_at=datetime.now(UTC))
    assert json.loads(view.model_dump_json())["net_liquidation"] == "1000000"
    assert view.model_dump(mode="json")["net_liquidation"] == "1000000"
    order = OrderView(account_id="DU1", order_id="1", status="filled", quantity=Decimal("1E+1"),
                      fills=[{"price": Decimal("1.5E+2")}])
    dumped = order.model_dump(mode="json")
    assert dumped["quantity"] == "10" and dumped["fills"] == [{"price": "150"}]
    decision = Decision(client_order_id="c", decision="allow", computed={"bp": Decimal("4E+6")})
    assert decision.model_dump(mode="json")["computed"] == {"bp": "4000000"}
    event = new_event("orders.filled", conn="paper", environment="paper", source="t", occurred_at=datetime.now(UTC),
                      payload={"quantity": Decimal("1E+1")}, account_id="DU1")
    assert json.loads(event.to_bytes())["payload"] == {"quantity": "10"}


def test_a_decision_names_its_blocking_reasons():
    decision = Decision(client_order_id="c", decision="block", reasons=[
        Reason(code="A", message="a", severity="block"), Reason(code="B", message="b", severity="warn"),
        Reason(code="C", message="c")])
    assert [r.code for r in decision.blocking()] == ["A"]
    assert decision.reasons[2].severity == "allow"


def test_every_service_has_a_status_subject_and_every_command_a_subject():
    subjects = Subjects("paper")
    assert subjects.service_status(SERVICES[0]) == "ibkr.paper.status.gateway-bridge"
    assert subjects.command("orders.submit") == subjects.orders_submit
    assert all(subjects.command(c).startswith("ibkr.paper.") for c in COMMANDS)
    with pytest.raises(ValueError, match="unknown service"):
        subjects.service_status("nope")


@pytest.mark.parametrize(("selector", "account", "subject"), [
    (None, None, "ibkr.paper.events.>"),
    ("orders", None, "ibkr.paper.events.orders.>"),
    ("orders", "DU1", "ibkr.paper.events.orders.DU1.>"),
    ("orders.filled", None, "ibkr.paper.events.orders.*.filled"),
    ("orders.filled", "DU1", "ibkr.paper.events.orders.DU1.filled"),
    ("session.expired", "DU1", "ibkr.paper.events.session.expired"),
    ("trading", None, "ibkr.paper.events.trading.>"),
])
def test_event_filters(selector, account, subject):
    assert Subjects("paper").event_filter(selector, account) == subject


def test_event_filters_refuse_unknown_types_and_bad_accounts():
    with pytest.raises(ValueError, match="unknown event type"):
        Subjects("paper").event_filter("orders.exploded")
    with pytest.raises(ValueError, match="single subject token"):
        Subjects("paper").event_filter("orders", "DU 1")
    assert public.event_type_of("ibkr.paper.events.orders.DU1.filled") == ("paper", "orders.filled", "DU1")


def test_the_subjects_of_every_connection_are_wildcards_that_carry_each_connection() -> None:
    every = Subjects.every_connection()
    assert every.every and not Subjects("paper").every
    assert every.orders_submit == "ibkr.*.orders.submit"
    assert every.service_status("compliance") == "ibkr.*.status.compliance"
    assert every.events_of("orders") == "ibkr.*.events.orders.>"
    with pytest.raises(ValueError):
        Subjects("*")  # a wildcard is never a connection id


def test_a_paged_request_takes_page_size_or_its_old_name_limit_and_serves_at_most_a_bounded_page():
    from ibkr_contract.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
    from ibkr_contract.sync import OrdersGetRequest

    assert OrdersGetRequest.model_validate({"account_id": "DU1"}).size() == DEFAULT_PAGE_SIZE
    assert OrdersGetRequest.model_validate({"account_id": "DU1", "limit": 7}).page_size == 7
    assert OrdersGetRequest.model_validate({"account_id": "DU1", "limit": 10_000}).size() == MAX_PAGE_SIZE
    with pytest.raises(ValueError, match=r"page_size"):
        OrdersGetRequest.model_validate({"account_id": "DU1", "page_size": 0})
    assert OrdersGetRequest.model_json_schema()["properties"]["limit"]["deprecated"] is True


def test_a_cursor_is_opaque_round_trips_and_a_foreign_or_broken_one_is_refused_naming_cursor():
    from pydantic import ValidationError

    from ibkr_contract.paging import encode_cursor
    from ibkr_contract.sync import OrdersGetRequest, PositionsGetRequest

    cursor = encode_cursor("orders", (42,))
    assert "42" not in cursor and OrdersGetRequest(account_id="DU1", cursor=cursor).after() == (42,)
    assert PositionsGetRequest(account_id="DU1", cursor=encode_cursor("positions", ("AAPL", 7))).after() == ("AAPL", 7)
    for bad in ("%%%", "e30", encode_cursor("positions", ("AAPL", 7)), encode_cursor("orders", ("42",)),
                encode_cursor("orders", (True,))):
        with pytest.raises(ValidationError) as refused:
            OrdersGetRequest(account_id="DU1", cursor=bad)
        assert [e["loc"] for e in refused.value.errors()] == [("cursor",)], bad


def test_a_page_is_cut_by_count_and_by_bytes_and_says_where_the_next_starts():
    from ibkr_contract.paging import MAX_PAGE_BYTES, decode_cursor, fill_page

    small = [((i,), AccountView(account_id=f"A{i}", synced_at=datetime(2026, 1, 1, tzinfo=UTC))) for i in range(5)]
    page, cursor = fill_page(small, 3, "orders")  # the store read size + 1 rows
    assert [v.account_id for v in page] == ["A0", "A1", "A2"] and decode_cursor("orders", (int,), cursor) == (2,)
    assert fill_page(small[:3], 3, "orders") == ([v for _, v in small[:3]], None)  # the last page
    big = [((i,), OrderView(account_id="A", order_id=str(i), status="filled", fills=[{"note": "x" * 100_000}]))
           for i in range(10)]
    page, cursor = fill_page(big, 10, "orders")
    assert 1 <= len(page) < 10 and sum(len(v.model_dump_json()) for v in page) <= MAX_PAGE_BYTES
    assert decode_cursor("orders", (int,), cursor) == (len(page) - 1,)
