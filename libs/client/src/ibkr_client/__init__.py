"""ibkr-client: a typed async client of ibkr-stack over NATS.

```python
from ibkr_client import IbkrClient

async with IbkrClient() as ib:  # `make run`'s stack, found from .var/stack.json
    status = await ib.session.status()
```

Every method returns a model of `ibkr_contract` and raises an `IbkrError` subclass (one per error code).
"""

from ibkr_client.client import IbkrClient
from ibkr_client.errors import (
    ComplianceBlocked,
    Conflict,
    EnvironmentMismatch,
    Forbidden,
    GatewayUnavailable,
    IbkrError,
    InternalError,
    NoReply,
    NotAuthenticated,
    NotFound,
    NotSupported,
    RateLimited,
    RequestTimeout,
    ServiceNotRunning,
    StackNotFound,
    StackUnavailable,
    StateUnavailable,
    TooLarge,
    TradingHalted,
    ValidationFailed,
)
from ibkr_client.events import EventStream
from ibkr_client.sections import new_client_order_id
from ibkr_client.stack import StackInfo, find_stack_file, read_stack

__all__ = [
    "ComplianceBlocked", "Conflict", "EnvironmentMismatch", "EventStream", "Forbidden", "GatewayUnavailable",
    "IbkrClient",
    "IbkrError", "InternalError", "NoReply", "NotAuthenticated", "NotFound", "NotSupported", "RateLimited",
    "RequestTimeout", "ServiceNotRunning", "StackInfo", "StackNotFound", "StackUnavailable", "StateUnavailable",
    "TooLarge",
    "TradingHalted", "ValidationFailed", "find_stack_file", "new_client_order_id", "read_stack",
]
