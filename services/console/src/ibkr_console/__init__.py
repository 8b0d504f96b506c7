"""ibkr-console: the operator console (a live dashboard and the setup wizard) over ibkr-client."""
