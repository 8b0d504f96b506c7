"""Collects the reasons and computed values while the checks run."""

from __future__ import annotations

from typing import Any

from .model import Reason, Severity

_RANK: dict[Severity, int] = {"allow": 0, "warn": 1, "block": 2}


class Outcome:
    def __init__(self) -> None:
        self.reasons: list[Reason] = []
        self.computed: dict[str, Any] = {}

    def add(self, code: str, severity: Severity, message: str) -> None:
        if any(reason.code == code for reason in self.reasons):
            return
        self.reasons.append(Reason(code=code, severity=severity, message=message))

    def has(self, code: str) -> bool:
        return any(reason.code == code for reason in self.reasons)

    @property
    def decision(self) -> Severity:
        worst: Severity = "allow"
        for reason in self.reasons:
            if _RANK[reason.severity] > _RANK[worst]:
                worst = reason.severity
        return worst
