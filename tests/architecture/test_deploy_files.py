"""docker-compose.yml and deploy/nats.conf, validated offline (no Docker engine runs here)."""

import re
from pathlib import Path

import pytest
import yaml

from ibkr_common.subjects import BRIDGE_OPERATIONS, Subjects
from ibkr_contract.subjects import COMMANDS, EVENT_TYPES

from .natsconf import Permissions, account_users, nats_users, parse

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["gateway-bridge", "session-keeper", "sync-worker", "compliance", "audit"]
CONN = Subjects("paper")
#: The bridge operations that place or change orders (the rest only read).
ORDER_CHANGING = [CONN.bridge(op) for op in ("orders.place", "orders.reply", "orders.cancel", "orders.modify",
                                             "orders.suppress", "orders.suppress_reset")]


def order_publishers(users: dict[str, Permissions]) -> dict[str, set[str]]:
    """For each order-changing bridge subject, the users nats.conf lets publish it."""
    return {subject: {name for name, perms in users.items() if perms.may("publish", subject)}
            for subject in ORDER_CHANGING}


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_declares_every_service_with_a_dockerfile_that_exists():
    compose = _compose()["services"]
    for service in SERVICES:
        assert service in compose
        dockerfile = compose[service]["build"]["dockerfile"]
        assert (ROOT / dockerfile).exists(), dockerfile
        text = (ROOT / dockerfile).read_text()
        assert f"--package=ibkr-{service}" in text
        assert f"ibkr_{service.replace('-', '_')}" in text


def test_each_service_connects_to_nats_as_its_own_user_declared_in_nats_conf():
    compose = _compose()["services"]
    users = nats_users((ROOT / "deploy" / "nats.conf").read_text())
    for service in SERVICES:
        url = compose[service]["environment"]["NATS_URL"]
        user = url.split("//", 1)[1].split(":", 1)[0]
        assert user == service and user in users


def test_only_compliance_may_publish_the_order_changing_bridge_subjects():
    users = nats_users((ROOT / "deploy" / "nats.conf").read_text())
    assert order_publishers(users) == {subject: {"compliance"} for subject in ORDER_CHANGING}


def test_the_bridge_serves_every_bridge_operation_and_the_users_reach_what_they_call():
    users = nats_users((ROOT / "deploy" / "nats.conf").read_text())
    bridge = users["gateway-bridge"]
    for operation in BRIDGE_OPERATIONS:
        assert bridge.may("subscribe", CONN.bridge(operation)), operation
    for subject in ORDER_CHANGING:
        assert users["compliance"].may("publish", subject)
    for operation in ("orders.live", "orders.status", "positions.list", "accounts.summary"):
        assert users["sync-worker"].may("publish", CONN.bridge(operation)), operation
    assert not users["client"].may("publish", CONN.bridge("orders.live"))
    assert users["client"].may("publish", CONN.orders_submit)


def test_every_service_answers_its_status_subject_and_the_client_may_ask_each():
    users = nats_users((ROOT / "deploy" / "nats.conf").read_text())
    for service in SERVICES:
        subject = CONN.service_status(service)
        assert users[service].may("subscribe", subject), service
        assert users["client"].may("publish", subject), service
        assert [name for name, perms in users.items() if perms.may("subscribe", subject)] == [service]


NARROWED = """
authorization { users: [
  { user: compliance, password: x
    permissions: { publish: { allow: ["ibkr.*.bridge.orders.place", "ibkr.*.bridge.orders.reply",
                                      "ibkr.*.bridge.orders.cancel", "ibkr.*.bridge.orders.modify",
                                      "ibkr.*.bridge.orders.suppress", "ibkr.*.bridge.orders.suppress_reset"] } } }
  { user: sync-worker, password: y
    permissions: { publish: { allow: ["ibkr.*.bridge.orders.live", "ibkr.*.bridge.orders.status"] } } }
  { user: client, password: z
    permissions: { publish: { allow: ["ibkr.>"], deny: ["ibkr.*.bridge.>"] } } }
] }
"""


@pytest.mark.parametrize(("change", "wrongly"), [
    (None, None),
    (('"ibkr.*.bridge.orders.live"', '"ibkr.*.bridge.orders.*"'), "sync-worker"),
    (('"ibkr.*.bridge.orders.live"', '"ibkr.*.bridge.>"'), "sync-worker"),
    (('"ibkr.*.bridge.orders.status"', '"ibkr.*.bridge.orders.place"'), "sync-worker"),
    (('deny: ["ibkr.*.bridge.>"]', 'deny: ["ibkr.*.bridge.orders.live"]'), "client"),
])
def test_the_permission_check_sees_narrow_grants_and_catches_wrong_ones(change, wrongly):
    text = NARROWED if change is None else NARROWED.replace(*change)
    publishers = order_publishers(nats_users(text))
    if wrongly is None:
        assert publishers == {subject: {"compliance"} for subject in ORDER_CHANGING}
    else:
        assert any(wrongly in users for users in publishers.values())
        assert publishers != {subject: {"compliance"} for subject in ORDER_CHANGING}


def test_a_user_without_a_publish_grant_publishes_nothing_of_the_orders():
    text = NARROWED.replace('"ibkr.*.bridge.orders.cancel", ', "")
    assert order_publishers(nats_users(text))[CONN.bridge("orders.cancel")] == set()


def test_services_use_postgres_in_compose():
    compose = _compose()
    env = compose["services"]["audit"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://ibkr_app:")


def test_every_static_user_is_exempt_from_the_auth_callout_and_authz_may_only_answer_it():
    """A static user missing from `auth_users` would be sent to authz (and refused); authz itself may answer
    the server's requests and read the registry's directory, nothing else."""
    text = (ROOT / "deploy" / "nats.conf").read_text()
    callout = parse(text)["authorization"]["auth_callout"]
    assert callout["issuer"] == "$AUTHZ_ISSUER"
    static = [*nats_users(text), *(user for users in account_users(text).values() for user in users)]
    assert sorted(callout["auth_users"]) == sorted(static)
    authz = nats_users(text)["authz"]
    assert authz.may("subscribe", "$SYS.REQ.USER.AUTH") and authz.may("subscribe", "_INBOX_authz.x")
    assert authz.may("subscribe", CONN.events_of("connection") + ".added")
    assert authz.may("publish", "ibkr_admin.connections.directory")
    for subject in (CONN.orders_submit, CONN.bridge("orders.place"), CONN.event("trading.halted"),
                    "ibkr_admin.connections.rotate_key", "$SYS.REQ.SERVER.PING"):
        assert not authz.may("publish", subject), subject
    for subject in (CONN.events_all, "_INBOX_compliance.x", CONN.bridge("orders.place")):
        assert not authz.may("subscribe", subject), subject
    service = _compose()["services"]["authz"]
    assert service["environment"]["NATS_URL"].startswith("nats://authz:")
    assert service["environment"]["IBKR_NATS_INBOX_PREFIX"] == "_INBOX_authz"
    assert "--package=ibkr-authz" in (ROOT / service["build"]["dockerfile"]).read_text()


def test_the_system_account_has_one_user_who_may_only_kick_a_client():
    """authz's `authz-kick` is the system account's only user: it may ask a server to close one client
    connection (`$SYS.REQ.SERVER.<id>.KICK`) and read its replies, nothing else of the system account."""
    text = (ROOT / "deploy" / "nats.conf").read_text()
    assert parse(text)["system_account"] == "SYS"
    assert list(account_users(text)) == ["SYS"] and list(account_users(text)["SYS"]) == ["authz-kick"]
    kick = account_users(text)["SYS"]["authz-kick"]
    assert kick.may("publish", "$SYS.REQ.SERVER.NABC.KICK") and kick.may("subscribe", "_INBOX_authz-kick.x")
    for subject in ("$SYS.REQ.SERVER.NABC.LDM", "$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.NABC.CONNZ",
                    "$SYS.REQ.SERVER.NABC.RELOAD", "$SYS.REQ.ACCOUNT.$G.CONNZ", "$SYS.REQ.USER.AUTH",
                    CONN.orders_submit):
        assert not kick.may("publish", subject), subject
    for subject in ("$SYS.ACCOUNT.$G.CONNECT", "$SYS.REQ.USER.AUTH", "$SYS.SERVER.NABC.STATSZ", "_INBOX_authz.x"):
        assert not kick.may("subscribe", subject), subject
    service = _compose()["services"]["authz"]["environment"]
    assert service["IBKR_AUTHZ_KICK_NATS_URL"].startswith("nats://authz-kick:")


#: Public commands no page or action of the console sends (so its NATS user may not either).
CONSOLE_NEVER_CALLS = ("contracts.search", "contracts.option_chain", "positions.exercise")
#: The registry's commands: the wizard's steps and the list of connections, not the rest.
CONSOLE_ADMIN = ("connections.create", "connections.verify", "connections.settings", "connections.acknowledge",
                 "connections.list", "connections.get")
CONSOLE_NO_ADMIN = ("connections.update", "connections.delete", "connections.directory", "connections.rotate_key")


def _console_source() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "services/console/src/ibkr_console").glob("*.py")))


def test_the_console_user_may_send_the_commands_the_console_calls_and_nothing_else():
    console = nats_users((ROOT / "deploy" / "nats.conf").read_text())["console"]
    source = _console_source()
    for command in COMMANDS:
        assert console.may("publish", CONN.command(command)) == (command not in CONSOLE_NEVER_CALLS), command
    for command in (*CONSOLE_NEVER_CALLS, *CONSOLE_NO_ADMIN):  # were one called, this list and nats.conf change
        assert not re.search(rf"\.{re.escape(command)}\(", source), f"the console calls {command}"
        assert not console.may("publish", f"ibkr_admin.{command}"), command
    for command in CONSOLE_ADMIN:
        assert console.may("publish", f"ibkr_admin.{command}"), command
    for operation in BRIDGE_OPERATIONS:
        assert not console.may("publish", CONN.bridge(operation)), operation
    for event_type in EVENT_TYPES:
        assert not console.may("publish", CONN.event(event_type, "DU1234567")), event_type
    stream = "$JS.API.CONSUMER.{}.IBKR_EVENTS.{}"
    for kind in ("CREATE", "INFO", "MSG.NEXT"):  # its live pages' ephemeral consumer
        assert console.may("publish", stream.format(kind, "Xh3k2")), kind
    for kind in ("CREATE", "MSG.NEXT"):  # never audit's
        assert not console.may("publish", stream.format(kind, "audit")), kind
    for subject in ("$JS.API.STREAM.DELETE.IBKR_EVENTS", "$JS.API.STREAM.INFO.IBKR_EVENTS", "$JS.ACK.IBKR_EVENTS.x.>",
                    "$JS.API.CONSUMER.DURABLE.CREATE.IBKR_EVENTS.x", "_INBOX_client.x", "_INBOX_console.x"):
        assert not console.may("publish", subject), subject
    assert console.may("subscribe", "_INBOX_console.abc.1")
    for subject in (CONN.events_all, "_INBOX_client.x", "_INBOX.x", CONN.orders_submit, CONN.bridge("orders.place")):
        assert not console.may("subscribe", subject), subject


def test_the_console_runs_in_compose_as_its_own_nats_user_and_database_role():
    service = _compose()["services"]["console"]
    env = service["environment"]
    assert env["NATS_URL"].startswith("nats://console:") and env["IBKR_NATS_INBOX_PREFIX"] == "_INBOX_console"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://ibkr_console:")
    assert env["IBKR_CONSOLE_SECURE_COOKIES"] == "true" and env["IBKR_MIGRATE_ON_START"] == "false"
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert "--create-console-role" in _compose()["services"]["migrate"]["command"]
    dockerfile = (ROOT / service["build"]["dockerfile"]).read_text()
    assert "--package=ibkr-console" in dockerfile and "ibkr_console" in dockerfile and "USER ibkr" in dockerfile
