"""ibkr-gateway-bridge."""
