"""Least privilege on the production topology, proven by the NATS server's refusals (deploy/nats.conf).

Each refusal has its allowed counterpart beside it, so that a test fails when the grant it checks is
missing as well as when it is too wide.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ibkr_client import IbkrClient
from ibkr_console.live import LIVE_TYPES
from ibkr_contract.envelope import new_event
from ibkr_devstack.prod import ProdStack

from .prodkit import ACCOUNT, CONN, SERVICES, TEST_CONNECTION, connected, password, wait_until

pytestmark = [pytest.mark.connected, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]
STREAM = "IBKR_EVENTS"
AUDIT = "audit"
USERS = [*SERVICES, "client", "provision", "operator", "authz", "console", "authz-kick"]
ORDER_CHANGING = ["orders.place", "orders.reply", "orders.cancel", "orders.modify"]


async def _stream_and_audit_consumer_exist(prod: ProdStack) -> None:
    async with connected(prod, "provision") as provision:
        js = provision.nc.jetstream(timeout=5)
        assert (await js.stream_info(STREAM)).config.name == STREAM
        assert (await js.consumer_info(STREAM, AUDIT)).name == AUDIT


@pytest.mark.parametrize("operation", ORDER_CHANGING)
async def test_only_compliance_may_publish_order_changing_bridge_subjects(prod: ProdStack, operation: str) -> None:
    subject = f"ibkr.{CONN}.bridge.{operation}"
    for user in ("sync-worker", "session-keeper", "audit", "gateway-bridge", "client", "console"):
        async with connected(prod, user) as conn:
            await conn.publish_refused(subject)
    async with connected(prod, "compliance") as compliance:  # allowed: the bridge answers (a validation error)
        reply = await compliance.nc.request(subject, b"{}", timeout=10)
        assert json.loads(reply.data)["ok"] is False
        assert compliance.errors == []


async def test_the_sync_worker_keeps_its_reads_of_the_bridge(prod: ProdStack) -> None:
    async with connected(prod, "sync-worker") as sync:
        for operation in ("orders.live", "orders.status", "accounts.list", "positions.page"):
            reply = await sync.nc.request(f"ibkr.{CONN}.bridge.{operation}", b"{}", timeout=10)
            assert "ok" in json.loads(reply.data), operation
        assert sync.errors == []
        await sync.publish_refused(f"ibkr.{CONN}.bridge.orders.place")


async def test_the_bridge_may_not_submit_orders(prod: ProdStack) -> None:
    async with connected(prod, "gateway-bridge") as bridge:
        await bridge.publish_refused(f"ibkr.{CONN}.orders.submit")
    async with connected(prod, "sync-worker") as sync:  # positions.close goes through orders.submit
        reply = await sync.nc.request(f"ibkr.{CONN}.orders.submit", b"{}", timeout=10)
        assert json.loads(reply.data)["error"]["code"] == "VALIDATION_ERROR"
        assert sync.errors == []


@pytest.mark.parametrize("user", USERS)
async def test_nobody_deletes_or_purges_the_stream_or_deletes_the_audit_consumer(prod: ProdStack, user: str) -> None:
    async with connected(prod, user) as conn:
        await conn.publish_refused(f"$JS.API.STREAM.DELETE.{STREAM}")
        await conn.publish_refused(f"$JS.API.STREAM.PURGE.{STREAM}")
        await conn.publish_refused(f"$JS.API.CONSUMER.DELETE.{STREAM}.{AUDIT}")
        js = conn.nc.jetstream(timeout=0.5)
        with pytest.raises(Exception):  # noqa: B017 - refused: the API never answers
            await js.delete_stream(STREAM)
    await _stream_and_audit_consumer_exist(prod)


@pytest.mark.parametrize("user", SERVICES)
async def test_services_may_not_create_or_change_the_stream(prod: ProdStack, user: str) -> None:
    async with connected(prod, user) as conn:
        await conn.publish_refused(f"$JS.API.STREAM.CREATE.{STREAM}")
        await conn.publish_refused(f"$JS.API.STREAM.UPDATE.{STREAM}")
        info = await conn.nc.jetstream(timeout=5).stream_info(STREAM)  # allowed: the check at start
        assert info.config.name == STREAM


@pytest.mark.parametrize("owner", ["compliance", "sync-worker", "gateway-bridge", "audit", "console"])
async def test_no_user_reads_another_users_replies(prod: ProdStack, owner: str) -> None:
    for user in ("client", "console", *(s for s in SERVICES if s != owner)):
        if user == owner:
            continue
        async with connected(prod, user) as conn:
            await conn.subscribe_refused(f"_INBOX_{owner}.>")
            await conn.subscribe_refused("_INBOX.>")


async def test_authz_answers_the_callout_and_reads_the_directory_and_nothing_else(prod: ProdStack) -> None:
    async with connected(prod, "authz") as authz:
        directory = await authz.nc.request("ibkr_admin.connections.directory", b"{}", timeout=10)
        listed = json.loads(directory.data)
        assert listed["ok"] and CONN in [c["connection"] for c in listed["result"]["connections"]], listed
        await authz.nc.subscribe(f"ibkr.{CONN}.events.connection.>")  # the directory's events
        await authz.nc.flush()
        assert authz.errors == []
        for subject in (f"ibkr.{CONN}.orders.submit", f"ibkr.{CONN}.session.status", f"ibkr.{CONN}.bridge.orders.place",
                        f"ibkr.{CONN}.events.trading.halted", "ibkr_admin.connections.list",
                        "ibkr_admin.connections.rotate_key", f"$JS.API.STREAM.INFO.{STREAM}", "$SYS.REQ.SERVER.PING"):
            await authz.publish_refused(subject)
        for subject in (f"ibkr.{CONN}.events.>", f"ibkr.{CONN}.bridge.>", "_INBOX_client.>", "ibkr_admin.>"):
            await authz.subscribe_refused(subject)


async def test_authz_kick_may_close_a_client_connection_and_nothing_else(prod: ProdStack) -> None:
    """The system account's one user: the kick (a client of the stack, closed), and no other system request,
    no system event, no subject of the stack."""
    async with httpx.AsyncClient() as http:
        server_id = (await http.get(f"http://127.0.0.1:{prod.variables['NATS_HTTP_PORT']}/varz")).json()["server_id"]
    async with connected(prod, "client") as victim, connected(prod, "authz-kick") as kick:
        reply = await kick.nc.request(f"$SYS.REQ.SERVER.{server_id}.KICK",
                                      json.dumps({"cid": victim.nc.client_id}).encode(), timeout=10)
        assert "error" not in json.loads(reply.data), reply.data
        await wait_until(lambda: victim.nc.is_closed, "the client closed by the server")
        for subject in (f"$SYS.REQ.SERVER.{server_id}.LDM", f"$SYS.REQ.SERVER.{server_id}.CONNZ",
                        f"$SYS.REQ.SERVER.{server_id}.RELOAD", "$SYS.REQ.SERVER.PING", "$SYS.REQ.ACCOUNT.$G.CONNZ",
                        "$SYS.REQ.USER.AUTH", f"ibkr.{CONN}.session.status", "ibkr_admin.connections.list"):
            await kick.publish_refused(subject)
        for subject in ("$SYS.>", "$SYS.ACCOUNT.>", "$SYS.REQ.USER.AUTH", "_INBOX_authz.>", f"ibkr.{CONN}.events.>"):
            await kick.subscribe_refused(subject)


async def test_the_console_reaches_what_its_pages_use_and_nothing_else(prod: ProdStack) -> None:
    """The console's user, through ibkr_client as the console uses it: a public command, the wizard's registry
    commands and one live consumer of the connection's events are answered; a bridge subject, an event,
    another inbox, what no page calls, the registry's directory and key rotation, audit's consumer and the
    stream itself are refused."""
    owner = prod.variables["IBKR_USER_ID"]
    async with IbkrClient(prod.nats_url("console", password(prod, "console")), connection=CONN,
                          inbox_prefix="_INBOX_console", name=f"{TEST_CONNECTION}console-client") as ib:
        assert (await ib.session.status(timeout=10)).status
        assert CONN in [view.connection for view in await ib.connections.list(user_id=owner, timeout=10)]
        async with ib.events(types=LIVE_TYPES, start="new", idle_timeout=0.5) as events:  # create, info, next
            assert [event async for event in events if event.conn != CONN] == []
    async with connected(prod, "console") as console:
        for subject in (f"ibkr.{CONN}.bridge.session.logout", f"ibkr.{CONN}.bridge.orders.place",
                        f"ibkr.{CONN}.bridge.accounts.list", f"ibkr.{CONN}.events.trading.halted",
                        f"ibkr.{CONN}.events.orders.{ACCOUNT}.filled", "_INBOX_compliance.forged.1",
                        "_INBOX_client.forged.1", f"ibkr.{CONN}.contracts.search", f"ibkr.{CONN}.positions.exercise",
                        "ibkr_admin.connections.directory", "ibkr_admin.connections.rotate_key",
                        "ibkr_admin.connections.delete", f"$JS.API.STREAM.INFO.{STREAM}",
                        f"$JS.API.CONSUMER.CREATE.{STREAM}.{AUDIT}", f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{AUDIT}",
                        f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.console-durable",
                        f"$JS.ACK.{STREAM}.{AUDIT}.1.1.1.1.1"):
            await console.publish_refused(subject)
        for subject in (f"ibkr.{CONN}.events.>", f"ibkr.{CONN}.orders.submit", "_INBOX_client.>", "_INBOX.>"):
            await console.subscribe_refused(subject)


async def test_nobody_forges_a_reply_into_an_inbox(prod: ProdStack) -> None:
    async with connected(prod, "sync-worker") as sync:
        await sync.publish_refused("_INBOX_compliance.forged.1")


async def test_a_user_connecting_with_the_shared_inbox_gets_no_reply(prod: ProdStack) -> None:
    async with connected(prod, "client", inbox="_INBOX") as client:
        with pytest.raises(Exception):  # noqa: B017 - its reply inbox is refused, so no reply arrives
            await client.nc.request(f"ibkr.{CONN}.session.status", b"{}", timeout=1)
        await client.refused('subscription to "_inbox.')


async def test_the_client_may_not_publish_events(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:
        await client.publish_refused(f"ibkr.{CONN}.events.orders.DU1234567.filled")
        await client.publish_refused(f"ibkr.{CONN}.events.trading.halted")
        await client.publish_refused(f"ibkr.{CONN}.bridge.session.logout")


async def test_the_client_may_not_touch_the_audit_consumer(prod: ProdStack) -> None:
    async with connected(prod, "client") as client:
        await client.publish_refused(f"$JS.API.CONSUMER.CREATE.{STREAM}.{AUDIT}")
        await client.publish_refused(f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{AUDIT}")
        await client.publish_refused(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{AUDIT}")
        await client.publish_refused(f"$JS.ACK.{STREAM}.{AUDIT}.1.1.1.1.1")


async def test_the_client_follows_events_with_its_own_durable_consumer_across_a_disconnect(prod: ProdStack) -> None:
    durable = "client-dashboard"
    config = ConsumerConfig(durable_name=durable, name=durable, deliver_policy=DeliverPolicy.NEW,
                            ack_policy=AckPolicy.EXPLICIT, filter_subject=f"ibkr.{CONN}.events.gateway.>")
    async with connected(prod, "client") as client:
        info = await client.nc.jetstream(timeout=5).add_consumer(STREAM, config)
        assert info.name == durable and client.errors == []
    async with connected(prod, "client") as client:  # while the client is away, something happens
        found = await client.call("contracts.search", {"symbol": "AAPL"})
        assert found["ok"], found
    async with connected(prod, "client") as client:
        subscription = await client.nc.jetstream(timeout=5).pull_subscribe_bind(durable=durable, stream=STREAM)
        messages = await subscription.fetch(50, timeout=5)
        payloads = [json.loads(m.data) for m in messages]
        assert any(p["type"] == "gateway.call" and "secdef/search" in json.dumps(p["payload"]) for p in payloads)
        for message in messages:
            await message.ack()
        assert client.errors == []


async def test_the_provision_user_creates_but_never_deletes(prod: ProdStack) -> None:
    async with connected(prod, "provision") as provision:
        await provision.publish_refused(f"$JS.API.CONSUMER.CREATE.{STREAM}.someone-else")
        await provision.publish_refused(f"ibkr.{CONN}.orders.submit")
    with pytest.raises(NotFoundError):
        async with connected(prod, "client") as client:
            await client.nc.jetstream(timeout=5).consumer_info(STREAM, "someone-else")


async def test_a_push_consumer_aimed_at_a_bridge_subject_changes_nothing(prod: ProdStack) -> None:
    """NATS does not check a push consumer's deliver subject against its creator's permissions, so the client
    can aim stored events at a subject it may not publish to: here `session.authenticated` events at
    `bridge.session.logout`, in the bridge's queue group. The bridge subscribes `ibkr.*.bridge.<op>` (one bridge
    serves every connection), and nats-server counts no wildcard queue subscription as a deliver group's
    interest: nothing is delivered. Were it delivered, the bridge would refuse the envelope (every bridge request
    forbids unknown fields): a user who may publish that subject sends one, and is answered VALIDATION_ERROR.
    Either way the session stays up."""
    durable = "client-push-logout"
    subject = f"ibkr.{CONN}.bridge.session.logout"
    config = ConsumerConfig(durable_name=durable, name=durable, deliver_subject=subject,
                            deliver_group="gateway-bridge", deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                            filter_subject=f"ibkr.{CONN}.events.session.authenticated")
    async with connected(prod, "client") as client:
        js = client.nc.jetstream(timeout=5)
        await js.add_consumer(STREAM, config)
        await asyncio.sleep(2.0)  # what the consumer delivers, if anything, arrives within this
    async with connected(prod, "session-keeper") as keeper:  # may publish bridge.session.*: the envelope itself
        envelope = new_event("session.authenticated", conn=CONN, environment="paper", source="session-keeper",
                             occurred_at=datetime.now(UTC), payload={"authenticated": True})
        refused = await keeper.call("bridge.session.logout", envelope.model_dump(mode="json"), timeout=10)
        assert refused["ok"] is False and refused["error"]["code"] == "VALIDATION_ERROR", refused
        assert keeper.errors == []
    gateway = httpx.post(f"{prod.info()['gateway_url']}/v1/api/iserver/auth/status", json={}, verify=False, timeout=5)
    assert gateway.json()["authenticated"] is True, gateway.text
