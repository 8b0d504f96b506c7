"""Shared library of ibkr-stack."""
