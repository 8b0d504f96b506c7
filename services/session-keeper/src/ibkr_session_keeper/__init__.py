"""ibkr-session-keeper."""
