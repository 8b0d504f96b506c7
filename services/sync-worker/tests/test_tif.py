"""The gateway's spellings of a time in force read back as ours: a DAY order is listed as CLOSE."""

import pytest

from ibkr_sync_worker.normalize import tif_of


@pytest.mark.parametrize(("gateway", "ours"), [("CLOSE", "DAY"), ("close", "DAY"), ("DAY", "DAY"), ("GTC", "GTC"),
                                               ("IOC", "IOC"), ("OPG", "OPG"), (None, None), ("", None)])
def test_tif_of(gateway, ours):
    assert tif_of(gateway) == ours
