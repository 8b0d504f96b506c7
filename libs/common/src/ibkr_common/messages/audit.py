"""Audit requests and results: the public contract's (`ibkr_contract.audit`), re-exported here."""

from ibkr_contract.audit import (
    QUERY_DEFAULT_LIMIT,
    QUERY_MAX_LIMIT,
    AuditEvent,
    AuditQueryRequest,
    AuditQueryResult,
    AuditVerifyRequest,
    AuditVerifyResult,
)

__all__ = [
    "QUERY_DEFAULT_LIMIT", "QUERY_MAX_LIMIT", "AuditEvent", "AuditQueryRequest", "AuditQueryResult",
    "AuditVerifyRequest", "AuditVerifyResult",
]
