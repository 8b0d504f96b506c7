"""The event envelope of CONTRACT.md: `ibkr_contract.envelope`, re-exported here."""

from ibkr_contract.envelope import SCHEMA_VERSION, EventEnvelope, new_event
from ibkr_contract.types import jsonable

__all__ = ["SCHEMA_VERSION", "EventEnvelope", "jsonable", "new_event"]
