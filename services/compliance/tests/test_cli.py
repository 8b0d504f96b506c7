"""The real ``ibkr-compliance`` command on the example file."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import yaml

from .conftest import EXAMPLES

#: The installed console script, beside the interpreter that runs the tests (whatever venv that is).
COMMAND = Path(sys.executable).parent / "ibkr-compliance"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COMMAND), *args], capture_output=True, text=True, timeout=120, check=False)


def test_evaluate_json_reproduces_every_expected_decision_code_and_value() -> None:
    cases = yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))["cases"]

    result = _run("evaluate", str(EXAMPLES), "--json")

    assert result.returncode == 0, result.stderr
    replies = {item["id"]: item for item in json.loads(result.stdout)}
    assert set(replies) == {case["id"] for case in cases}
    for case in cases:
        reply, expected = replies[case["id"]], case["expected"]
        assert reply["decision"] == expected["decision"], case["id"]
        assert set(expected["reason_codes"]) <= set(reply["reason_codes"]), case["id"]
        assert set(reply["computed"]) == set(expected.get("computed") or {}), case["id"]
        for key, value in (expected.get("computed") or {}).items():
            if isinstance(value, float):
                assert abs(Decimal(str(reply["computed"][key])) - Decimal(str(value))) < Decimal("0.005")
            else:
                assert reply["computed"][key] == value, (case["id"], key)


def test_evaluate_prints_one_block_per_case_without_json() -> None:
    result = _run("evaluate", str(EXAMPLES))

    assert result.returncode == 0, result.stderr
    assert "C01: warn" in result.stdout
    assert "codes: PDT_LAST_DAY_TRADE" in result.stdout


def test_malformed_case_fails_naming_the_case_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "defaults: {}\ncases:\n- id: X1\n  now: '2026-12-02T11:00:00-05:00'\n"
        "  account: {broker: alpaca, environment: paper}\n"
        "  order: {symbol: AAPL261218C00250000, side: buy, qty: lots}\n",
        encoding="utf-8",
    )

    result = _run("evaluate", str(bad), "--json")

    assert result.returncode != 0
    assert "X1" in result.stderr
    assert "order.qty" in result.stderr
