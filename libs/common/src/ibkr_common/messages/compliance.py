"""Compliance's public requests and results besides orders: `ibkr_contract.compliance`, re-exported here."""

from ibkr_contract.compliance import (
    MAX_QUESTIONS,
    AcknowledgedDisclosure,
    AcknowledgeRequest,
    AcknowledgeResult,
    ComplianceStatus,
    DisclosureState,
    HaltRequest,
    HaltResult,
    HaltState,
    OpenQuestion,
    QuestionOrder,
    StatusRequest,
)

__all__ = [
    "MAX_QUESTIONS",
    "AcknowledgeRequest", "AcknowledgeResult", "AcknowledgedDisclosure", "ComplianceStatus", "DisclosureState",
    "HaltRequest", "HaltResult", "HaltState", "OpenQuestion", "QuestionOrder", "StatusRequest",
]
