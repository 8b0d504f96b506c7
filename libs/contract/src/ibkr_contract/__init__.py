"""The public contract of ibkr-stack: subjects, reply shapes, error codes and every public model.

Depends on pydantic alone, so a program that talks to the stack needs nothing heavier. Modules:
`subjects` (the catalogue), `errors` (replies and `ErrorCode`), `envelope` (events), `orders`,
`sync`, `session`, `compliance`, `contracts`, `audit`, `status`, `events` (typed event payloads),
`requests` (which model each command takes and answers with), `types` (`PlainDecimal`).
"""

from ibkr_contract.envelope import EventEnvelope
from ibkr_contract.errors import ErrorBody, ErrorCode, ErrorReply, OkReply, is_retryable
from ibkr_contract.subjects import EVENT_TYPES, SERVICES, Subjects
from ibkr_contract.types import PlainDecimal, jsonable

__all__ = [
    "EVENT_TYPES", "SERVICES", "ErrorBody", "ErrorCode", "ErrorReply", "EventEnvelope", "OkReply", "PlainDecimal",
    "Subjects", "is_retryable", "jsonable",
]
