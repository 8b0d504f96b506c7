"""`python -m ibkr_devstack`: what `make run` runs."""

from __future__ import annotations

import sys
from pathlib import Path

from ibkr_devstack.stack import LocalStack


def main() -> None:
    """Run the stack in the foreground from the current directory (the repository root)."""
    sys.exit(LocalStack(Path.cwd()).run())


if __name__ == "__main__":
    main()
