"""ibkr_client against `make run`'s stack: every section, typed results and errors, events, the example."""

import asyncio
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from ibkr_client import (
    ComplianceBlocked,
    EnvironmentMismatch,
    IbkrClient,
    IbkrError,
    NoReply,
    NotFound,
    NotSupported,
    StackNotFound,
    StackUnavailable,
    TradingHalted,
    ValidationFailed,
)
from ibkr_contract.envelope import EventEnvelope
from ibkr_contract.orders import OrderRequest
from ibkr_contract.status import ServiceStatus
from ibkr_contract.subjects import SERVICES

from .stack_helpers import ACCOUNT, Stack, clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
USER = "client-tests"
DISCLOSURES = ["options_risk", "day_trading_risk"]
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "place_and_follow.py"


def cid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def ib(stack: Stack):
    async with IbkrClient(stack_file=stack.root / ".var" / "stack.json") as client:
        await client.compliance.acknowledge(USER, DISCLOSURES)
        yield client


async def test_the_stack_is_found_from_stack_json_in_a_parent_folder(stack: Stack, monkeypatch):
    below = stack.root / "some" / "project"
    below.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(below)
    async with IbkrClient() as ib:
        assert ib.nats_url == stack.nats_url and ib.connection == "paper"
        session = await ib.session.status()
    assert session.authenticated and session.status == "authenticated"


async def test_without_a_stack_file_or_a_reachable_nats_the_errors_say_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StackNotFound, match=r"no running stack found: no \.var/stack\.json"):
        await IbkrClient().connect()
    with pytest.raises(StackUnavailable, match=r"cannot reach NATS at nats://127\.0\.0\.1:1 "):
        await IbkrClient("nats://127.0.0.1:1", connect_timeout=1).connect()


async def test_every_service_answers_its_status(ib: IbkrClient):
    answers = await ib.services()
    assert set(answers) == set(SERVICES)
    assert all(isinstance(a, ServiceStatus) for a in answers.values()), answers
    assert answers["compliance"].details["halted"] is False
    assert ACCOUNT in answers["sync-worker"].details["accounts"]
    assert answers["session-keeper"].details["status"] == "authenticated"


async def test_a_connection_nobody_registered_raises_not_found_naming_it(stack: Stack):
    """The services serve every registered connection (`ibkr.*.…`): an unknown one is answered, not ignored."""
    async with IbkrClient(stack.nats_url, "nobody-here") as other:
        with pytest.raises(NotFound, match="connection 'nobody-here' is not registered") as raised:
            await other.account.get(ACCOUNT)
    assert raised.value.details == [{"field": "connection", "message": "not registered"}]


async def test_an_order_is_placed_and_followed_to_its_fill_through_events(ib: IbkrClient):
    client_order_id = cid("fill")
    async with ib.events(types=["orders"], account=ACCOUNT, idle_timeout=30) as events:
        result = await ib.orders.submit(client_order_id=client_order_id, account_id=ACCOUNT, user_id=USER,
                                        symbol="AAPL", side="BUY", quantity=10, order_type="MKT", tif="DAY")
        assert result.status == "submitted" and result.order_id
        assert {r.severity for r in result.reasons} <= {"allow", "warn", "block"}
        seen = []
        async for event in events:
            assert isinstance(event, EventEnvelope) and event.account_id == ACCOUNT
            seen.append(event.type)
            if event.type == "orders.filled" and event.payload["order"]["order_id"] == result.order_id:
                break
    assert "orders.submitted" in seen and seen[-1] == "orders.filled"
    orders = await ib.orders.get(ACCOUNT, status="filled")
    mine = next(o for o in orders.orders if o.order_id == result.order_id)
    assert mine.tif == "DAY" and mine.quantity == Decimal(10) and mine.status_history


async def test_money_and_quantities_are_plain_decimal_strings_on_the_wire(ib: IbkrClient):
    account = await ib.request("account.get", {"account_id": ACCOUNT})
    orders = await ib.request("orders.get", {"account_id": ACCOUNT})
    decision = await ib.request("orders.check", OrderRequest.model_validate({
        "client_order_id": cid(), "user_id": USER, "account_id": ACCOUNT, "environment": "paper",
        "instrument": {"symbol": "AAPL", "sec_type": "STK"}, "side": "BUY", "quantity": "10", "order_type": "MKT"}))
    text = json.dumps([account, orders, decision])
    assert "E+" not in text and "E-" not in text
    for value in (account["net_liquidation"], account["buying_power"], decision["computed"]["option_buying_power"]):
        assert value == format(Decimal(value), "f")


async def test_a_blocked_order_raises_compliance_blocked_naming_only_the_blocking_reasons(ib: IbkrClient):
    with pytest.raises(ComplianceBlocked) as caught:
        await ib.orders.submit(account_id=ACCOUNT, user_id="nobody-acknowledged", symbol="AAPL", side="BUY",
                               quantity=1, order_type="MKT")
    error = caught.value
    assert error.code == "COMPLIANCE_BLOCKED" and error.retryable is False
    decision = error.decision
    assert decision is not None and decision.decision == "block"
    blocking = {r.code for r in decision.reasons if r.severity == "block"}
    others = {r.code for r in decision.reasons if r.severity != "block"}
    assert "DISCLOSURES_NOT_ACKNOWLEDGED" in blocking and others
    assert all(code in error.message for code in blocking)
    assert not any(code in error.message for code in others), error.message


async def test_an_order_for_the_other_environment_raises_environment_mismatch(ib: IbkrClient):
    with pytest.raises(EnvironmentMismatch) as caught:
        await ib.orders.submit(account_id=ACCOUNT, user_id=USER, symbol="AAPL", side="BUY", quantity=1,
                               order_type="MKT", environment="live")
    assert isinstance(caught.value, ComplianceBlocked) and "live order on the paper connection" in caught.value.message


async def test_bad_input_raises_validation_failed_naming_the_field(ib: IbkrClient):
    with pytest.raises(ValidationFailed) as local:
        await ib.orders.submit(account_id=ACCOUNT, user_id=USER, symbol="AAPL", side="BUY", quantity=-1,
                               order_type="MKT")
    assert [d["field"] for d in local.value.details] == ["quantity"]
    with pytest.raises(ValidationFailed) as remote:
        await ib.request("orders.get", {"account_id": "not one token"})
    assert remote.value.details[0]["field"] == "account_id"


async def test_unknown_things_raise_not_found_and_exercise_not_supported(ib: IbkrClient):
    with pytest.raises(NotFound):
        await ib.account.get("DU0000000")
    with pytest.raises(NotSupported, match="exercise"):
        await ib.positions.exercise(ACCOUNT, 265598)


async def test_the_same_client_order_id_places_one_order(ib: IbkrClient):
    client_order_id = cid("dup")
    order = {"client_order_id": client_order_id, "account_id": ACCOUNT, "user_id": USER, "symbol": "AAPL",
             "side": "BUY", "order_type": "LMT", "limit_price": "98"}
    first = await ib.orders.submit(quantity=1, **order)
    again = await ib.orders.submit(quantity=1, **order)
    assert first.status == "submitted" and again.order_id == first.order_id
    cancelled = await ib.orders.cancel(ACCOUNT, client_order_id=client_order_id)
    assert cancelled.order_id == first.order_id and cancelled.status


async def test_halt_refuses_opening_orders_until_resume(ib: IbkrClient):
    assert (await ib.trading.halt("client test", "tests")).halted is True
    try:
        with pytest.raises(TradingHalted):
            await ib.orders.submit(account_id=ACCOUNT, user_id=USER, symbol="AAPL", side="BUY", quantity=1,
                                   order_type="MKT")
        assert (await ib.service_status("compliance")).details["halted"] is True
        halt = (await ib.compliance.status(USER, ACCOUNT)).halt
        assert halt is not None and (halt.reason, halt.changed_by) == ("client test", "tests") and halt.changed_at
    finally:
        assert (await ib.trading.resume("client test over", "tests")).halted is False


async def test_a_question_from_ibkr_is_answered_with_confirm(ib: IbkrClient, stack: Stack):
    stack.sim("POST", "questions", {"message_ids": ["o163"]})
    client_order_id = cid("ask")
    result = await ib.orders.submit(client_order_id=client_order_id, account_id=ACCOUNT, user_id=USER,
                                    symbol="AAPL", side="BUY", quantity=1, order_type="LMT", limit_price="98")
    assert result.status == "confirmation_required" and result.confirmation is not None
    assert result.confirmation.message_ids == ["o163"] and result.confirmation.messages
    waiting = await ib.compliance.status(USER, ACCOUNT)
    [listed] = [q for q in waiting.questions if q.client_order_id == client_order_id]
    assert (listed.reply_id, listed.messages, listed.order.symbol, listed.order.limit_price) == (
        result.confirmation.reply_id, result.confirmation.messages, "AAPL", Decimal("98"))
    answered = await ib.orders.confirm(client_order_id, result.confirmation.reply_id, True, answered_by=USER)
    assert answered.status == "submitted" and answered.order_id
    assert client_order_id not in [q.client_order_id for q in (await ib.compliance.status(USER, ACCOUNT)).questions]
    modified = await ib.orders.modify(ACCOUNT, answered.order_id, limit_price="97.5", user_id=USER)
    assert modified.status in ("submitted", "confirmation_required")
    assert (await ib.orders.cancel(ACCOUNT, answered.order_id)).status


async def test_a_durable_consumer_misses_nothing_across_a_restart(ib: IbkrClient):
    name = f"client-test-{uuid.uuid4().hex[:8]}"
    try:
        async with ib.events(types="trading", durable=name, start="new", idle_timeout=10) as events:
            await ib.trading.halt("durable 1", "tests")
            first = await anext(events)
            assert first.type == "trading.halted" and first.payload["reason"] == "durable 1"
        await ib.trading.resume("durable 2", "tests")  # while nobody reads
        await ib.trading.halt("durable 3", "tests")
        await ib.trading.resume("durable 4", "tests")
        async with ib.events(types="trading", durable=name, idle_timeout=3) as events:
            reasons = [event.payload["reason"] async for event in events]
        assert reasons == ["durable 2", "durable 3", "durable 4"]
    finally:
        await ib.nats.jetstream().delete_consumer("IBKR_EVENTS", name)
        await ib.trading.resume("durable test over", "tests")


async def test_an_ephemeral_consumer_filters_by_type_and_account(ib: IbkrClient):
    async with ib.events(types=["orders.filled", "trading.halted"], idle_timeout=15) as events:
        await ib.trading.halt("filter", "tests")
        await ib.trading.resume("filter over", "tests")  # resumed: not asked for
        placed = await ib.orders.submit(account_id=ACCOUNT, user_id=USER, symbol="AAPL", side="BUY", quantity=1,
                                        order_type="MKT")
        got = []
        async for event in events:
            got.append(event.type)
            if event.type == "orders.filled" and event.payload["order"]["order_id"] == placed.order_id:
                break
    assert got[0] == "trading.halted" and got[-1] == "orders.filled"
    assert set(got) == {"trading.halted", "orders.filled"}
    with pytest.raises(ValidationFailed, match="unknown event type"):
        await ib.events(types="orders.exploded").open()


async def test_no_answer_in_time_raises_no_reply(ib: IbkrClient, stack: Stack):
    stack.sim("POST", "faults", {"path_glob": "/iserver/secdef/search", "delay_ms": 3000, "count": 1})
    try:
        with pytest.raises(NoReply) as caught:
            await ib.contracts.search("AAPL", timeout=0.5)
        assert caught.value.code == "TIMEOUT" and caught.value.retryable and "contracts.search" in str(caught.value)
    finally:
        stack.sim("DELETE", "faults")
    found = await ib.contracts.search("AAPL")
    assert any(c.symbol == "AAPL" for c in found.contracts)


async def test_reads_positions_account_sync_session_and_audit(ib: IbkrClient):
    synced = await ib.sync.trigger(ACCOUNT)
    assert synced.accounts[0].account_id == ACCOUNT
    positions = await ib.positions.get(ACCOUNT)
    assert positions.account_id == ACCOUNT
    account = await ib.account.get(ACCOUNT)
    assert account.net_liquidation and account.net_liquidation > 0
    status = await ib.compliance.status(USER, ACCOUNT)
    assert status.missing_acknowledgments == [] and status.halted in (True, False)
    for _ in range(4):  # four decisions: four compliance events for audit to store
        await ib.orders.check(account_id=ACCOUNT, user_id=USER, symbol="AAPL", side="BUY", quantity=1,
                              order_type="MKT")
    for _ in range(300):  # audit stores asynchronously; a loaded machine takes seconds
        if len((await ib.audit.query(type_prefix="compliance", limit=4)).events) == 4:
            break
        await asyncio.sleep(0.1)
    verified = await ib.audit.verify()
    assert verified.ok and verified.events_checked > 0
    page = await ib.audit.query(type_prefix="compliance", limit=2)
    assert len(page.events) == 2 and page.events[0].seq > page.events[1].seq
    exported = [e async for e in ib.audit.export(type_prefix="compliance", page_size=3)]
    assert len(exported) > 3 and [e.seq for e in exported] == sorted((e.seq for e in exported), reverse=True)


async def test_every_error_is_an_ibkr_error_with_code_message_details_and_retryable(ib: IbkrClient):
    with pytest.raises(IbkrError) as caught:
        await ib.account.get("DU0000000")
    error = caught.value
    assert (error.code, error.retryable) == ("NOT_FOUND", False) and error.message and error.details == []


def test_the_readme_example_places_and_follows_an_order_in_a_fresh_interpreter(stack: Stack):
    assert len(EXAMPLE.read_text().splitlines()) <= 22
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=stack.root, env=clean_env(), capture_output=True,
                          text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("decision ") and "status submitted" in lines[0]
    assert lines[-1] == "orders.filled filled"


def test_nothing_of_the_services_comes_with_the_client():
    code = "import sys, ibkr_client; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert not loaded & {"ibkr_common", "faststream", "sqlalchemy", "alembic", "psycopg", "typer", "rich"}
    assert {"ibkr_contract", "nats", "pydantic"} <= loaded


async def test_orders_and_positions_come_a_page_at_a_time_and_pages_walks_them_all(stack: Stack, ib: IbkrClient):
    stack.sim("POST", f"trades/{ACCOUNT}", [
        {"conid": 265598, "symbol": "AAPL", "side": "BUY", "quantity": 1, "price": 100, "order_id": str(930000 + i)}
        for i in range(7)
    ])
    stack.sim("POST", f"positions/{ACCOUNT}", [  # cpsim's positions are set, not added to: no test relies on them
        {"conid": 9400000 + i, "symbol": f"ZC{i}", "sec_type": "STK", "quantity": 1, "avg_price": 10,
         "market_price": 11} for i in range(3)
    ])
    await ib.sync.trigger(ACCOUNT)
    first = await ib.orders.get(ACCOUNT, page_size=3)
    assert len(first.orders) == 3 and first.next_cursor is not None
    second = await ib.orders.get(ACCOUNT, page_size=3, cursor=first.next_cursor)
    assert not {o.order_id for o in first.orders} & {o.order_id for o in second.orders}
    pages = [page async for page in ib.orders.pages(ACCOUNT, page_size=3)]
    assert all(len(p.orders) <= 3 for p in pages) and pages[-1].next_cursor is None
    walked = [o.order_id for p in pages for o in p.orders]
    assert {str(930000 + i) for i in range(7)} <= set(walked) and len(walked) == len(set(walked))
    assert [o.order_id for o in first.orders + second.orders] == walked[:6]  # newest first, in a stable order
    assert len((await ib.orders.get(ACCOUNT, limit=2)).orders) == 2  # the old name still works
    pages_of_positions = [page async for page in ib.positions.pages(ACCOUNT, page_size=1)]
    assert [p.symbol for page in pages_of_positions for p in page.positions] == ["ZC0", "ZC1", "ZC2"]
    with pytest.raises(ValidationFailed) as refused:
        await ib.orders.get(ACCOUNT, cursor="not a cursor")
    assert refused.value.details[0]["field"] == "cursor"
