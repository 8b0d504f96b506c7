"""The local development stack (`make run`)."""
