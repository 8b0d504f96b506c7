import pytest

from ibkr_common.subjects import Subjects, event_type_of


def test_command_subjects_follow_the_contract():
    s = Subjects("paper")
    assert s.orders_submit == "ibkr.paper.orders.submit"
    assert s.session_status == "ibkr.paper.session.status"
    assert s.bridge("orders.place") == "ibkr.paper.bridge.orders.place"


def test_account_scoped_events_carry_the_account_token():
    s = Subjects("live")
    assert s.event("positions.opened", "DU1234567") == "ibkr.live.events.positions.DU1234567.opened"
    assert s.event("session.tickled") == "ibkr.live.events.session.tickled"
    assert s.event("gateway.call") == "ibkr.live.events.gateway.call"


def test_event_subjects_split_back_into_type_and_account():
    assert event_type_of("ibkr.paper.events.orders.U7654321.filled") == ("paper", "orders.filled", "U7654321")
    assert event_type_of("ibkr.paper.events.session.expiring") == ("paper", "session.expiring", None)


@pytest.mark.parametrize("bad", ["", "Paper", "a.b", "x" * 33])
def test_invalid_connection_ids_are_refused(bad):
    with pytest.raises(ValueError):
        Subjects(bad)


def test_unknown_event_types_and_missing_accounts_are_refused():
    s = Subjects("paper")
    with pytest.raises(ValueError):
        s.event("orders.exploded", "DU1")
    with pytest.raises(ValueError):
        s.event("orders.filled")
    with pytest.raises(ValueError):
        s.event("orders.filled", "DU1.>")


def test_an_area_subscription_covers_its_events_and_no_other_area():
    s = Subjects("paper")
    orders = s.events_of("orders")
    assert orders == "ibkr.paper.events.orders.>"
    assert s.event("orders.filled", "DU1").startswith(orders[:-1])
    assert not s.event("gateway.call").startswith(orders[:-1])
    assert s.event("session.tickled").startswith(s.events_of("session")[:-1])
    with pytest.raises(ValueError):
        s.events_of("gateways")
