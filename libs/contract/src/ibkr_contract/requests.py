"""Which model each public command takes and answers with, and which service serves it.

The client sends through this table, and the AsyncAPI documents describe each command's reply from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel

from ibkr_contract import audit, compliance, connections, contracts, orders, session, status, sync
from ibkr_contract.subjects import SERVICES


@dataclass(frozen=True)
class Command:
    """One public command: its name under `ibkr.<conn>.`, who serves it, what it takes and answers."""

    name: str
    service: str
    request: type[BaseModel]
    result: type[BaseModel] | None
    summary: str


def _commands() -> dict[str, Command]:
    table = [
        Command("orders.submit", "compliance", orders.OrderRequest, orders.OrderResult,
                "Decide and, when allowed, place the order once (idempotent by client_order_id)."),
        Command("orders.check", "compliance", orders.OrderRequest, orders.Decision,
                "Decide only: the Decision, whatever it is; nothing is sent."),
        Command("orders.confirm", "compliance", orders.ConfirmRequest, orders.OrderResult,
                "Answer IBKR's question about an order waiting for confirmation."),
        Command("orders.cancel", "compliance", orders.CancelRequest, orders.CancelResult, "Cancel an order."),
        Command("orders.modify", "compliance", orders.ModifyRequest, orders.OrderResult,
                "Change an order's quantity, prices or time in force (checked again)."),
        Command("compliance.acknowledge", "compliance", compliance.AcknowledgeRequest, compliance.AcknowledgeResult,
                "Acknowledge disclosures."),
        Command("compliance.status", "compliance", compliance.StatusRequest, compliance.ComplianceStatus,
                "Regime, day trades, options level, disclosures and the halt switch of a user's account."),
        Command("trading.halt", "compliance", compliance.HaltRequest, compliance.HaltResult,
                "Halt new opening orders on this connection."),
        Command("trading.resume", "compliance", compliance.HaltRequest, compliance.HaltResult, "Resume trading."),
        Command("orders.get", "sync-worker", sync.OrdersGetRequest, sync.OrdersResult,
                "Orders of an account from the database, with status history and fills."),
        Command("positions.get", "sync-worker", sync.PositionsGetRequest, sync.PositionsResult,
                "Positions of an account from the database."),
        Command("account.get", "sync-worker", sync.AccountGetRequest, sync.AccountView,
                "The account summary of the last sync."),
        Command("sync.trigger", "sync-worker", sync.SyncTriggerRequest, sync.SyncTriggerResult,
                "Sync now; answers once the sync is done."),
        Command("positions.close", "sync-worker", sync.PositionsCloseRequest, sync.ClosePositionResult,
                "Close (part of) a position through orders.submit."),
        Command("positions.exercise", "sync-worker", sync.PositionsExerciseRequest, None,
                "Always NOT_SUPPORTED (the Client Portal API has no exercise call)."),
        Command("contracts.search", "gateway-bridge", contracts.ContractSearchRequest, contracts.ContractSearchResult,
                "Search contracts by symbol or name."),
        Command("contracts.option_chain", "gateway-bridge", contracts.OptionChainRequest, contracts.OptionChain,
                "Strikes of an underlying's option month."),
        Command("session.status", "session-keeper", session.SessionRequest, session.SessionStatusResult,
                "The brokerage session as the keeper sees it."),
        Command("session.logout", "session-keeper", session.SessionRequest, session.SessionLogoutResult,
                "Log the gateway session out."),
        Command("session.reauthenticate", "session-keeper", session.SessionRequest, session.SessionStatusResult,
                "Ask the gateway to reauthenticate."),
        Command("audit.query", "audit", audit.AuditQueryRequest, audit.AuditQueryResult,
                "Stored events, newest first, paged by before_seq."),
        Command("audit.verify", "audit", audit.AuditVerifyRequest, audit.AuditVerifyResult,
                "Walk the hash chain of the stored events."),
    ]
    table += [Command(f"status.{s}", s, status.ServiceStatusRequest, status.ServiceStatus,
                      f"{s} answers that it runs, with a few facts of its own.") for s in SERVICES]
    return {c.name: c for c in table}


#: Every public command by name.
COMMAND_TABLE: Final = _commands()


def _admin_commands() -> dict[str, Command]:
    c = connections
    table = [
        Command("connections.create", "registry", c.CreateConnectionRequest, c.ConnectionView,
                "Steps 1-2 of the setup: register a connection (environment, gateway, username); it starts disabled."),
        Command("connections.verify", "registry", c.ConnectionRef, c.VerifyResult,
                "Step 3: gateway reachable, authenticated, accounts and summaries read back."),
        Command("connections.settings", "registry", c.SettingsRequest, c.ConnectionView,
                "Per-account settings (options level, live enablement) of verified accounts."),
        Command("connections.acknowledge", "registry", c.AcknowledgeConnectionRequest, c.ConnectionView,
                "Step 4: acknowledge the disclosures the environment needs; enables a verified connection."),
        Command("connections.list", "registry", c.ListConnectionsRequest, c.ConnectionList,
                "The connections a user owns."),
        Command("connections.get", "registry", c.ConnectionRef, c.ConnectionView, "One connection of its owner."),
        Command("connections.update", "registry", c.UpdateConnectionRequest, c.ConnectionView,
                "Change the gateway or username (the connection needs verifying again)."),
        Command("connections.delete", "registry", c.ConnectionRef, c.DeleteResult,
                "Remove a connection; the services drop it."),
        Command("connections.rotate_key", "registry", c.RotateKeyRequest, c.RotateKeyResult,
                "Re-encrypt every stored credential under the current key (operators only)."),
        Command("connections.directory", "registry", c.DirectoryRequest, c.ConnectionList,
                "Internal: every connection, for the services that serve them."),
    ]
    return {command.name: command for command in table}


#: The registry's commands by name under `ibkr_admin.` (`ibkr_contract.connections.ADMIN_COMMANDS`).
ADMIN_COMMAND_TABLE: Final = _admin_commands()
