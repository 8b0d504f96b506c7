"""Disclosures, status (with the halt's reason and the account's open IBKR questions) and the halt switch:
`compliance.acknowledge`, `compliance.status`, `trading.halt`, `trading.resume`."""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo

from ibkr_common.clock import Clock
from ibkr_common.connections import Connection
from ibkr_common.events import EventPublisher
from ibkr_common.messages.sync import AccountView
from ibkr_common.replies import ErrorCode, ServiceError
from ibkr_compliance.controls import Controls
from ibkr_compliance.disclosures import DisclosureCatalogue
from ibkr_compliance.ledger import Ledger
from ibkr_compliance.messages import MAX_QUESTIONS, AcknowledgeRequest, HaltRequest, StatusRequest
from ibkr_compliance.questions import open_question
from ibkr_compliance.rules import AccountState, RulesConfig, resolve_regime
from ibkr_compliance.state import StateGatherer, day_trades_used

NEW_YORK = ZoneInfo("America/New_York")


class ComplianceAdmin:
    """The user- and operator-facing switches around the order path."""

    def __init__(
        self, *, controls: Controls, ledger: Ledger, disclosures: DisclosureCatalogue, gatherer: StateGatherer,
        publisher: EventPublisher, clock: Clock, config: RulesConfig, regime: str, connection: Connection,
    ) -> None:
        self.controls = controls
        self.ledger = ledger
        self.disclosures = disclosures
        self.gatherer = gatherer
        self.publisher = publisher
        self.clock = clock
        self.config = config
        self.regime = regime
        #: The connection as the directory has it now (`Lanes` replaces it on every change).
        self.connection = connection
        self.environment: Literal["paper", "live"] = connection.environment  # type: ignore[assignment]

    async def acknowledge(self, request: AcknowledgeRequest) -> dict[str, Any]:
        """Store the user's acknowledgments (current versions) for this connection's environment."""
        environment = request.environment or self.environment
        if environment != self.environment:
            raise ServiceError(ErrorCode.ENVIRONMENT_MISMATCH, f"{environment} on the {self.environment} connection",
                               [{"field": "environment", "message": "environment mismatch"}])
        unknown = [d for d in request.disclosures if self.disclosures.get(d) is None]
        if unknown:
            raise ServiceError(
                ErrorCode.VALIDATION_ERROR, f"disclosures: unknown ids {unknown}",
                [{"field": f"disclosures.{request.disclosures.index(d)}", "message": f"unknown disclosure {d!r}"}
                 for d in unknown],
            )
        items = [d for d in (self.disclosures.get(i) for i in dict.fromkeys(request.disclosures)) if d is not None]
        stored = await self.controls.acknowledge(request.user_id, environment, items, self.clock.now())
        missing = self.disclosures.missing(environment, await self.controls.acknowledged(request.user_id, environment))
        return {"acknowledged": stored, "missing_acknowledgments": missing}

    async def status(self, request: StatusRequest) -> dict[str, Any]:
        """Regime, day trades, options level, missing acknowledgments, the halt switch (with its reason) and
        the account's orders waiting for an answer to IBKR's question, whoever placed them.

        An account the sync-worker has not read yet answers with nulls (and `account_synced: false`)
        rather than an error, so a new user can see what to acknowledge before the first sync.
        """
        try:
            account = await self.gatherer.account_view(request.account_id)
        except ServiceError:
            account = None
        acknowledged = await self.controls.acknowledged(request.user_id, self.environment)
        missing = self.disclosures.missing(self.environment, acknowledged)
        halt = await self.controls.halt_state()
        asking = await self.ledger.questions(request.account_id, MAX_QUESTIONS + 1)
        regime: str | None = None if self.regime == "auto" else self.regime
        remaining = account.day_trades_remaining if account else None
        if account is not None and regime is None:
            state = AccountState(broker="ibkr", environment=self.environment, account_id=request.account_id,
                                 daytrades_remaining=remaining)
            regime = resolve_regime(state, self.clock.now().astimezone(NEW_YORK).date(), self.config)
        return {
            "account_id": request.account_id,
            "environment": self.environment,
            "regime": regime,
            "day_trades_used": day_trades_used(remaining, self.config.pdt_max_day_trades_under_min_equity),
            "day_trades_remaining": remaining,
            "options_level": options_level(self.connection, request.account_id, account),
            "missing_acknowledgments": missing,
            "disclosures": [
                {"id": d.id, "title": d.title, "version": d.version, "acknowledged": d.id not in missing}
                for d in self.disclosures.required(self.environment)
            ],
            "halted": halt is not None,
            "account_synced": account is not None,
            "synced_at": account.synced_at if account else None,
            "halt": halt,
            "questions": [open_question(entry) for entry in asking[:MAX_QUESTIONS]],
            "questions_truncated": len(asking) > MAX_QUESTIONS,
        }

    async def set_halted(self, halted: bool, request: HaltRequest) -> dict[str, Any]:
        """Halt or resume new opening orders on this connection (closing orders stay allowed)."""
        event = self.publisher.build("trading.halted" if halted else "trading.resumed",
                                     {"reason": request.reason, "changed_by": request.changed_by})
        await self.controls.set_halted(halted, request.reason, request.changed_by, self.clock.now(), event)
        return {"halted": halted, "reason": request.reason}


def options_level(connection: Connection, account_id: str, synced: AccountView | None) -> int | None:
    """The account's options level as orders are decided on it: the registry's per-account setting when the
    connection has one for the account, else the synced one (IBKR_OPTIONS_LEVELS of the sync-worker)."""
    settings = connection.account(account_id)
    if settings is not None:
        return settings.options_level
    return synced.options_level if synced is not None else None
