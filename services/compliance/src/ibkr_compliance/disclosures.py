"""Risk disclosures a user must acknowledge, per environment, before the first order (issue point 5).

Acknowledgments are stored per user, environment, disclosure and version; a new version of a
disclosure is asked again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ibkr_compliance.settings import pairs


@dataclass(frozen=True)
class Disclosure:
    """One disclosure text the user acknowledges."""

    id: str
    title: str
    version: str
    environments: tuple[str, ...]


DEFAULT_DISCLOSURES: tuple[Disclosure, ...] = (
    Disclosure(
        "options_risk",
        "Characteristics and Risks of Standardized Options (OCC options disclosure document)",
        "2026-11",
        ("paper", "live"),
    ),
    Disclosure(
        "day_trading_risk",
        "Day-trading risk and the intraday margin standard (FINRA 4210, RULES.md 1.9)",
        "2026-11",
        ("paper", "live"),
    ),
    Disclosure(
        "live_trading_risk",
        "Live trading: orders are sent to the broker with real money",
        "2026-11",
        ("live",),
    ),
)


class DisclosureCatalogue:
    """The disclosures in force, with the configured versions."""

    def __init__(self, overrides: str = "") -> None:
        versions = pairs(overrides)
        unknown = set(versions) - {d.id for d in DEFAULT_DISCLOSURES}
        if unknown:
            raise ValueError(f"unknown disclosures in IBKR_COMPLIANCE_DISCLOSURE_VERSIONS: {sorted(unknown)}")
        self.items = {
            d.id: Disclosure(d.id, d.title, versions.get(d.id, d.version), d.environments)
            for d in DEFAULT_DISCLOSURES
        }

    def required(self, environment: str) -> list[Disclosure]:
        """The disclosures an order in `environment` needs."""
        return [d for d in self.items.values() if environment in d.environments]

    def missing(self, environment: str, acknowledged: set[tuple[str, str]]) -> list[str]:
        """Ids of required disclosures without an acknowledgment of their current version."""
        return [d.id for d in self.required(environment) if (d.id, d.version) not in acknowledged]

    def get(self, disclosure_id: str) -> Disclosure | None:
        """A disclosure by id."""
        return self.items.get(disclosure_id)
