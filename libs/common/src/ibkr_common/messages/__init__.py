"""Typed request and reply models, one module per area; each module has one owning service."""
