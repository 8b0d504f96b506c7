"""`ibkr-sync-worker` / `python -m ibkr_sync_worker`."""

from __future__ import annotations

from ibkr_common.service import run_service
from ibkr_sync_worker.app import build_app
from ibkr_sync_worker.settings import SyncSettings


def main() -> None:
    """Run the sync-worker until stopped."""
    run_service("sync-worker", SyncSettings, build_app)


if __name__ == "__main__":
    main()
