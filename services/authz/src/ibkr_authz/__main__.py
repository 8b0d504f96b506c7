"""`python -m ibkr_authz`: run the auth callout; `python -m ibkr_authz hash`: hash a password for the users file;
`python -m ibkr_authz issuer`: a new account NKey seed and its public key (nats.conf's `issuer`)."""

from __future__ import annotations

import getpass
import os
import sys

import nkeys

from ibkr_authz.app import build_app
from ibkr_authz.settings import AuthzSettings
from ibkr_authz.users import hash_password
from ibkr_common.service import run_service


def new_issuer() -> tuple[str, str]:
    """A fresh account NKey: (seed, public key)."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_ACCOUNT)
    return seed.decode(), nkeys.from_seed(seed).public_key.decode()


def main() -> None:
    """Run authz until SIGTERM/SIGINT, or one of its two helper commands."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "hash":
        print(hash_password(getpass.getpass("password: ")))
    elif command == "issuer":
        seed, public = new_issuer()
        print(f"IBKR_AUTHZ_ISSUER_SEED={seed}\nissuer (nats.conf auth_callout): {public}")
    else:
        run_service("authz", AuthzSettings, build_app)


if __name__ == "__main__":
    main()
