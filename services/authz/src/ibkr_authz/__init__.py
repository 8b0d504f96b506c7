"""NATS auth callout of ibkr-stack."""
