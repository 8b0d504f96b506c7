"""Payloads of compliance's own subjects besides the orders: the public contract's, re-exported.

(`compliance.acknowledge`, `compliance.status`, `trading.halt`, `trading.resume`; the models live in
`ibkr_contract.compliance`.)
"""

from ibkr_common.messages.compliance import (
    AcknowledgeRequest,
    AcknowledgeResult,
    ComplianceStatus,
    HaltRequest,
    HaltResult,
    StatusRequest,
)

__all__ = ["AcknowledgeRequest", "AcknowledgeResult", "ComplianceStatus", "HaltRequest", "HaltResult", "StatusRequest"]
