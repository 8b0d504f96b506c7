"""Order requests and results: the public contract's (`ibkr_contract.orders`), re-exported here."""

from ibkr_contract.orders import (
    CancelRequest,
    CancelResult,
    ClientOrderId,
    Confirmation,
    ConfirmRequest,
    Decision,
    Instrument,
    Leg,
    ModifyRequest,
    OrderRequest,
    OrderResult,
    OrderType,
    Reason,
    Severity,
    Side,
    TimeInForce,
)

__all__ = [
    "CancelRequest", "CancelResult", "ClientOrderId", "ConfirmRequest", "Confirmation", "Decision", "Instrument", "Leg",
    "ModifyRequest", "OrderRequest", "OrderResult", "OrderType", "Reason", "Severity", "Side", "TimeInForce",
]
