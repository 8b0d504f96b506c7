"""ibkr-sync-worker."""
