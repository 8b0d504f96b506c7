"""Every example case of services/compliance/examples/cases-examples.yaml comes out as expected."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import yaml

from ibkr_compliance.rules import RulesConfig
from ibkr_compliance.rules.cases import evaluate_case

from .conftest import EXAMPLES

_DOC = yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))
_CASES = _DOC["cases"]


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return actual == expected
    if isinstance(expected, (int, float)):
        if actual is None or isinstance(actual, (bool, str)):
            return False
        return abs(Decimal(str(actual)) - Decimal(str(expected))) < Decimal("0.005")
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            _same(a, e) for a, e in zip(actual, expected, strict=True)
        )
    return actual == expected


def test_example_file_has_cases() -> None:
    assert len(_CASES) >= 20


@pytest.mark.parametrize("case", _CASES, ids=[c["id"] for c in _CASES])
def test_example_case_decision_codes_and_computed_values(case: dict[str, Any]) -> None:
    config = RulesConfig.from_mapping(_DOC["defaults"])

    case_id, decision = evaluate_case(case, config)

    expected = case["expected"]
    assert case_id == case["id"]
    assert decision.decision == expected["decision"], decision.reasons
    assert set(expected["reason_codes"]) <= set(decision.reason_codes)
    for key, value in (expected.get("computed") or {}).items():
        assert _same(decision.computed.get(key), value), (key, decision.computed.get(key), value)
