"""ibkr-compliance."""
