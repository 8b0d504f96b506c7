"""Every error code of the contract raises its own exception class, carrying the reply's fields."""

import pytest

from ibkr_client.errors import ERRORS_BY_CODE, IbkrError, error_from_reply
from ibkr_contract.errors import ErrorBody, ErrorCode


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_error_code_has_its_own_exception(code):
    error = error_from_reply(ErrorBody(code=code, message="m", details=[{"field": "x"}], retryable=True))
    assert type(error) is ERRORS_BY_CODE[code] and type(error) is not IbkrError
    assert error.code == code and error.details == [{"field": "x"}] and error.retryable is True


def test_an_unknown_code_is_still_an_ibkr_error():
    error = error_from_reply(ErrorBody(code="SOMETHING_NEW", message="m"))
    assert type(error) is IbkrError and error.code == "SOMETHING_NEW"
