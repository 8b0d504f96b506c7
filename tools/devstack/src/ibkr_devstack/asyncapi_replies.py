"""What FastStream's AsyncAPI generator does not say: each request's reply, and each event's typed payload.

- Every request/reply operation gets a `reply` (AsyncAPI 3.0): a channel without an address (the
  request's NATS reply subject) whose message is `{"ok": true, "result": <result>}` or
  `{"ok": false, "error": ErrorBody}`. Results come from the contract's command table
  (`ibkr_contract.requests`) and, for the internal bridge, from `ibkr_common.messages.bridge_results`.
- Every event message's payload becomes the envelope typed for its event type
  (`ibkr_contract.events.envelope_model`): `type` fixed, `payload` the payload model.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ibkr_common.messages.bridge_results import BRIDGE_RESULTS
from ibkr_common.subjects import Subjects
from ibkr_contract.connections import AdminSubjects
from ibkr_contract.errors import ErrorReply, OkReply
from ibkr_contract.events import envelope_model
from ibkr_contract.requests import ADMIN_COMMAND_TABLE, COMMAND_TABLE
from ibkr_contract.status import ServiceStatus

REF = "#/components/schemas/{model}"


def reply_results(connection: str) -> dict[str, tuple[str, type[BaseModel] | None]]:
    """Subject -> (name, result model or None when the command only ever fails) of every request, on one
    connection and over every connection (`ibkr.*.…`, where a service serves them all)."""
    table: dict[str, tuple[str, type[BaseModel] | None]] = {}
    for subjects in (Subjects(connection), Subjects.every_connection()):
        table.update({subjects.command(name): (name, command.result) for name, command in COMMAND_TABLE.items()})
        table.update({subjects.bridge(op): (f"bridge.{op}", result) for op, result in BRIDGE_RESULTS.items()})
    admin = AdminSubjects()
    table.update({admin.command(name): (name, command.result) for name, command in ADMIN_COMMAND_TABLE.items()})
    table[admin.status("registry")] = ("status.registry", ServiceStatus)
    return table


def _schema_name(model: type[BaseModel]) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model.__name__)


def add_schemas(doc: dict[str, Any], models: list[type[BaseModel]],
                mode: Literal["validation", "serialization"] = "serialization") -> dict[type[BaseModel], str]:
    """Put the schemas of `models` (and what they refer to) under components/schemas: replies as the services
    write them (serialization), event envelopes as a consumer reads them (validation: the typed payload).

    A name FastStream already used for a different schema gets a suffix, so nothing it wrote changes.
    """
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    refs, top = models_json_schema([(m, mode) for m in models], ref_template=REF)
    renames: dict[str, str] = {}
    for name, schema in top.get("$defs", {}).items():
        if name in schemas and schemas[name] != schema:
            renames[name] = f"{name}Result" if f"{name}Result" not in schemas else f"{name}Out"
    text = json.dumps(top.get("$defs", {}))
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    for name, schema in json.loads(text).items():
        schemas[renames.get(name, name)] = schema
    names = {}
    for model in models:
        ref = refs[(model, mode)]["$ref"].rsplit("/", 1)[1]
        names[model] = renames.get(ref, ref)
    return names


def add_replies(doc: dict[str, Any], connection: str) -> None:
    """A `reply` on every receive operation whose subject is a known request."""
    table = reply_results(connection)
    operations = doc.get("operations", {})
    wanted: dict[str, tuple[str, str, type[BaseModel] | None]] = {}
    for op_key, operation in operations.items():
        # FastStream percent-encodes a wildcard subject's `*` and `>` in the reference, not in the key
        channel_key = unquote(operation["channel"]["$ref"].rsplit("/", 1)[1])
        address = doc["channels"][channel_key].get("address")
        if operation.get("action") == "receive" and address in table:
            name, result = table[address]
            wanted[op_key] = (channel_key, name, result)
    models: list[type[BaseModel]] = [ErrorReply]
    models += [OkReply[r] for _, _, r in wanted.values() if r is not None]  # type: ignore[valid-type]
    names = add_schemas(doc, models)
    messages = doc["components"].setdefault("messages", {})
    for op_key, (channel_key, name, result) in wanted.items():
        reply_channel = f"{channel_key}:Reply"
        message_name = f"{reply_channel}:Message"
        variants = [{"$ref": REF.format(model=names[ErrorReply])}]
        if result is not None:
            variants.insert(0, {"$ref": REF.format(model=names[OkReply[result]])})  # type: ignore[valid-type]
        messages[message_name] = {
            "title": message_name, "contentType": "application/json",
            "summary": f"The reply to {name}: ok with its result, or an error.",
            "payload": {"oneOf": variants} if len(variants) > 1 else variants[0],
        }
        doc["channels"][reply_channel] = {
            "address": None,
            "description": "The request's NATS reply subject (an inbox of the caller).",
            "messages": {"Reply": {"$ref": f"#/components/messages/{message_name}"}},
        }
        operations[op_key]["reply"] = {
            "channel": {"$ref": f"#/channels/{reply_channel}"},
            "messages": [{"$ref": f"#/channels/{reply_channel}/messages/Reply"}],
        }


def type_events(doc: dict[str, Any]) -> None:
    """Each `<type>:Event` message's payload: the envelope typed for that event type."""
    messages = doc.get("components", {}).get("messages", {})
    events = {key: key.split(":Event", 1)[0] for key in messages if key.endswith(":Event:Message")}
    models = {event_type: envelope_model(event_type) for event_type in sorted(set(events.values()))}
    names = add_schemas(doc, list(models.values()), "validation")
    for key, event_type in events.items():
        messages[key]["payload"] = {"$ref": REF.format(model=names[models[event_type]])}
    schemas = doc.get("components", {}).get("schemas", {})
    if events and not _referenced(doc, "EventEnvelope"):
        schemas.pop("EventEnvelope", None)


def _referenced(doc: dict[str, Any], name: str) -> bool:
    return f'"#/components/schemas/{name}"' in json.dumps(doc)


def complete(doc: dict[str, Any], connection: str) -> dict[str, Any]:
    """The FastStream document with replies and typed event payloads."""
    add_replies(doc, connection)
    type_events(doc)
    return doc
