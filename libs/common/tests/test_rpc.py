import asyncio
import json

import pytest
from faststream.nats import NatsBroker

from ibkr_common.rpc import Rpc, RpcError, RpcUnavailable

pytestmark = pytest.mark.connected


async def test_rpc_unwraps_results_and_typed_errors(nats_client, nats_url, run_names):
    base = f"ibkr.{run_names.conn}r.test"

    async def answer(msg):
        body = json.loads(msg.data)
        if body.get("fail"):
            error = {"code": "NOT_FOUND", "message": "no such thing", "details": [{"field": "x"}], "retryable": False}
            await msg.respond(json.dumps({"ok": False, "error": error}).encode())
        elif body.get("slow"):
            await asyncio.sleep(1.0)
        else:
            await msg.respond(json.dumps({"ok": True, "result": {"echo": body["value"]}}).encode())

    sub = await nats_client.subscribe(f"{base}.echo", cb=answer)
    broker = NatsBroker(nats_url)
    await broker.connect()
    rpc = Rpc(broker)
    assert await rpc.call(f"{base}.echo", {"value": "1.50"}, 2) == {"echo": "1.50"}
    with pytest.raises(RpcError) as failed:
        await rpc.call(f"{base}.echo", {"fail": True}, 2)
    assert failed.value.code == "NOT_FOUND" and failed.value.details == [{"field": "x"}]
    assert failed.value.retryable is False
    with pytest.raises(RpcUnavailable) as slow:
        await rpc.call(f"{base}.echo", {"slow": True}, 0.2)
    assert slow.value.sent is True
    with pytest.raises(RpcUnavailable) as nobody:
        await rpc.call(f"{base}.nobody", {}, 1)
    assert nobody.value.sent is False
    await sub.unsubscribe()
    await broker.stop()
