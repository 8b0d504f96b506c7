"""`python -m ibkr_compliance`: run the compliance service (the `ibkr-compliance` script is the rules CLI)."""

from __future__ import annotations

from ibkr_common.service import run_service
from ibkr_compliance.app import build_app
from ibkr_compliance.settings import ComplianceSettings


def main() -> None:
    """Run compliance until SIGTERM/SIGINT."""
    run_service("compliance", ComplianceSettings, build_app)


if __name__ == "__main__":
    main()
