"""`python -m ibkr_session_keeper`: run the session-keeper."""

from __future__ import annotations

from ibkr_common.service import run_service
from ibkr_session_keeper.app import build_app
from ibkr_session_keeper.settings import SessionKeeperSettings


def main() -> None:
    """Run the session-keeper until SIGTERM/SIGINT."""
    run_service("session-keeper", SessionKeeperSettings, build_app)


if __name__ == "__main__":
    main()
