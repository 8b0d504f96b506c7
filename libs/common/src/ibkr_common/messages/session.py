"""Session-keeper requests and results: the public contract's (`ibkr_contract.session`), re-exported here."""

from ibkr_contract.session import SessionLogoutResult, SessionRequest, SessionStatusName, SessionStatusResult

__all__ = ["SessionLogoutResult", "SessionRequest", "SessionStatusName", "SessionStatusResult"]
