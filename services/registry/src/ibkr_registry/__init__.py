"""The connection registry: the one owner of `ibkr_credentials` and the per-account settings."""
