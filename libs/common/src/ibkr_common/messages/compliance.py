"""Compliance's public requests and results besides orders: `ibkr_contract.compliance`, re-exported here."""

from ibkr_contract.compliance import (
    AcknowledgedDisclosure,
    AcknowledgeRequest,
    AcknowledgeResult,
    ComplianceStatus,
    DisclosureState,
    HaltRequest,
    HaltResult,
    StatusRequest,
)

__all__ = [
    "AcknowledgeRequest", "AcknowledgeResult", "AcknowledgedDisclosure", "ComplianceStatus", "DisclosureState",
    "HaltRequest", "HaltResult", "StatusRequest",
]
