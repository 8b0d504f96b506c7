"""The newest rows deleted while audit is down: found at restart through the stream, reported by verify."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ibkr_common.subjects import Subjects

from .audit_helpers import admin_sql, admin_url_of, event, publish, stored, wait_until

pytestmark = pytest.mark.connected



async def verify(nc: Any, conn: str) -> dict[str, Any]:
    reply = await nc.request(Subjects(conn).audit_verify, b"{}", timeout=10)
    body = json.loads(reply.data)
    assert body["ok"] is True, body
    return body["result"]  # type: ignore[no-any-return]


async def test_newest_rows_deleted_while_audit_is_down(
    names: Any, nats_client: Any, start_audit: Any, fresh_pg: str, postgres_admin_url: str
) -> None:
    js = nats_client.jetstream()

    async def acked(n: int) -> bool:
        info = await js.consumer_info(names.stream, names.consumer)
        return info.ack_floor.stream_seq >= n

    async with start_audit(fresh_pg):
        for _ in range(40):
            await publish(js, names.stream, event(names.conn))
        await wait_until(lambda: acked(40), what="40 acknowledged")
        before = await verify(nats_client, names.conn)
    assert before["ok"] is True and before["last_seq"] == 40
    # As the table owner, bypassing audit and its append-only trigger: cut the last 5 rows.
    admin = admin_url_of(postgres_admin_url, fresh_pg)
    admin_sql(admin, "ALTER TABLE ibkr_trading_activity_log DISABLE TRIGGER ibkr_trading_activity_log_append_only",
              "DELETE FROM ibkr_trading_activity_log WHERE seq > 35",
              "ALTER TABLE ibkr_trading_activity_log ENABLE TRIGGER ibkr_trading_activity_log_append_only")
    assert await stored(fresh_pg) == 35

    async with start_audit(fresh_pg):
        after = await verify(nats_client, names.conn)
        assert after["ok"] is False, after
        assert after["first_bad_seq"] == 36 and after["last_seq"] == 35
        assert "newest rows were removed" in after["problem"] and "message 40" in after["problem"]
        # New events fill seq 36.. with a valid chain: the cut is still reported.
        for _ in range(3):
            await publish(js, names.stream, event(names.conn))
        await wait_until(lambda: acked(43), what="43 acknowledged")
        later = await verify(nats_client, names.conn)
    assert await stored(fresh_pg) == 38
    assert later["ok"] is False and later["first_bad_seq"] == 36, later
    assert later["events_checked"] == 38
