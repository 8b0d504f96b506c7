"""Sync-worker requests and results: the public contract's (`ibkr_contract.sync`, `ibkr_contract.paging`),
re-exported here."""

from ibkr_contract.paging import MAX_PAGE_SIZE, fill_page

from ibkr_contract.sync import (
    ACCOUNT_PATTERN,
    CLIENT_ORDER_ID_PATTERN,
    OPEN_STATUSES,
    AccountGetRequest,
    AccountScoped,
    AccountSyncSummary,
    AccountView,
    ClosePositionResult,
    OrdersGetRequest,
    OrdersResult,
    OrderStatusFilter,
    OrderView,
    PositionsCloseRequest,
    PositionsExerciseRequest,
    PositionsGetRequest,
    PositionsResult,
    PositionView,
    SyncProblem,
    SyncRequest,
    SyncTriggerRequest,
    SyncTriggerResult,
)

__all__ = [
    "MAX_PAGE_SIZE", "fill_page", "ACCOUNT_PATTERN", "CLIENT_ORDER_ID_PATTERN", "OPEN_STATUSES", "AccountGetRequest", "AccountScoped",
    "AccountSyncSummary", "AccountView", "ClosePositionResult", "OrderStatusFilter", "OrderView", "OrdersGetRequest",
    "OrdersResult", "PositionView", "PositionsCloseRequest", "PositionsExerciseRequest", "PositionsGetRequest",
    "PositionsResult", "SyncProblem", "SyncRequest", "SyncTriggerRequest", "SyncTriggerResult",
]
