"""ibkr-audit."""
