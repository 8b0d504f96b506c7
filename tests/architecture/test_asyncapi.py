"""The committed AsyncAPI documents match what the code generates (`make asyncapi` refreshes them)."""

import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from ibkr_devstack.asyncapi import document
from ibkr_devstack.stack import SERVICES, service_exists

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"
EXISTING = [s for s in SERVICES if service_exists(s)]


@pytest.mark.parametrize("service", EXISTING)
def test_committed_asyncapi_document_matches_the_code(service):
    path = DOCS / f"{service}.json"
    assert path.exists(), f"{path} missing: run make asyncapi"
    assert json.loads(path.read_text()) == document(service), f"{path} is stale: run make asyncapi"


def test_every_existing_service_has_a_document():
    assert sorted(p.stem for p in DOCS.glob("*.json")) == sorted(EXISTING)


def _committed(service: str) -> dict:
    return json.loads((DOCS / f"{service}.json").read_text())


def _resolve(doc: dict, ref: str) -> dict:
    node = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[unquote(part)]  # a URI fragment: `ibkr.*.…` is %-encoded
    return node


@pytest.mark.parametrize("service", EXISTING)
def test_every_request_operation_describes_its_reply(service):
    from ibkr_devstack.asyncapi_replies import reply_results

    doc = _committed(service)
    requests = reply_results("paper")
    served = 0
    for key, operation in doc["operations"].items():
        address = _resolve(doc, operation["channel"]["$ref"])["address"]
        if operation["action"] != "receive" or address not in requests:
            continue
        served += 1
        reply = operation.get("reply")
        assert reply, f"{key}: no reply"
        message = _resolve(doc, _resolve(doc, reply["messages"][0]["$ref"])["$ref"])
        variants = [v["$ref"] for v in message["payload"].get("oneOf", [message["payload"]])]
        assert variants[-1] == "#/components/schemas/ErrorReply"
        if requests[address][1] is not None:
            ok = _resolve(doc, variants[0])
            assert ok["properties"]["ok"]["const"] is True and "$ref" in ok["properties"]["result"]
    assert served, f"{service} serves no request"


def test_a_reply_schema_carries_the_result_model():
    doc = _committed("compliance")
    ok = doc["components"]["schemas"]["OkReply_OrderResult_"]
    result = _resolve(doc, ok["properties"]["result"]["$ref"])
    reason = _resolve(doc, result["properties"]["reasons"]["items"]["$ref"])
    assert reason["properties"]["severity"]["enum"] == ["allow", "warn", "block"]


@pytest.mark.parametrize("service", EXISTING)
def test_event_payloads_are_typed_per_event_type(service):
    doc = _committed(service)
    for key, message in doc["components"]["messages"].items():
        if not key.endswith(":Event:Message"):
            continue
        event_type = key.split(":Event", 1)[0]
        envelope = _resolve(doc, message["payload"]["$ref"])
        assert envelope["properties"]["type"]["const"] == event_type
        assert "$ref" in envelope["properties"]["payload"], key


def test_every_bridge_operation_has_a_result_model():
    from ibkr_common.messages.bridge_results import BRIDGE_RESULTS
    from ibkr_common.subjects import BRIDGE_OPERATIONS

    assert set(BRIDGE_RESULTS) == set(BRIDGE_OPERATIONS)


@pytest.mark.parametrize("service", EXISTING)
def test_every_command_subject_documents_its_answer_time(service):
    channels = json.loads((DOCS / f"{service}.json").read_text())["channels"]
    # the commands a service serves: not its events, its event subscriptions, nor the reply channels
    commands = {name: c for name, c in channels.items()
                if ":Event" not in name and not name.endswith(":Reply") and ".events." not in c["address"]}
    assert commands, service
    silent = [name for name, c in commands.items()
              if not any(w in (c.get("description") or "") for w in ("answers within", "Answers within",
                                                                      "Answers at once", "No fixed answer time"))]
    assert not silent, f"{service}: no documented answer time on {silent}"
