"""Test fixtures for ibkr-stack."""
