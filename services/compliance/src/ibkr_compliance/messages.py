"""Payloads of compliance's own subjects besides the orders: the public contract's, re-exported.

(`compliance.acknowledge`, `compliance.status`, `trading.halt`, `trading.resume`; the models live in
`ibkr_contract.compliance`.)
"""

from ibkr_common.messages.compliance import (
    MAX_QUESTIONS,
    AcknowledgeRequest,
    AcknowledgeResult,
    ComplianceStatus,
    HaltRequest,
    HaltResult,
    StatusRequest,
)

__all__ = ["MAX_QUESTIONS", "AcknowledgeRequest", "AcknowledgeResult", "ComplianceStatus", "HaltRequest", "HaltResult",
           "StatusRequest"]
