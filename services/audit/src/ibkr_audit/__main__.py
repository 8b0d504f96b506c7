"""`python -m ibkr_audit`: run the audit service."""

from __future__ import annotations

from ibkr_audit.app import build_app
from ibkr_audit.settings import AuditSettings
from ibkr_common.service import run_service


def main() -> None:
    """Run audit until SIGTERM/SIGINT."""
    run_service("audit", AuditSettings, build_app)


if __name__ == "__main__":
    main()
