"""``ibkr-compliance evaluate FILE [--json]``: run the rules engine over a case file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from .rules.cases import CaseError, evaluate_case
from .rules.config import RulesConfig


def _plain(value: Any) -> Any:
    """Decimals become JSON numbers (money is already rounded to the cent)."""
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _wanted(raw_case: dict[str, Any]) -> list[str] | None:
    """The computed keys the case names; every key when the case carries no ``expected``."""
    expected = raw_case.get("expected")
    if not isinstance(expected, dict):
        return None
    computed = expected.get("computed")
    return [str(key) for key in computed] if isinstance(computed, dict) else []


def _load(path: Path) -> tuple[RulesConfig, list[dict[str, Any]]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CaseError("-", "FILE", f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CaseError("-", "FILE", f"not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        raise CaseError("-", "cases", "the file must be a mapping with a list under 'cases'")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise CaseError("-", "defaults", "expected a mapping")
    try:
        config = RulesConfig.from_mapping(defaults)
    except ValueError as exc:
        raise CaseError("-", "defaults", str(exc).splitlines()[0]) from None
    cases = document["cases"]
    for index, case in enumerate(cases):
        if not isinstance(case, dict):
            raise CaseError(f"#{index + 1}", "case", "expected a mapping")
    return config, cases


def run_evaluate(path: Path) -> list[dict[str, Any]]:
    config, cases = _load(path)
    results = []
    for index, raw_case in enumerate(cases):
        case_id, decision = evaluate_case(raw_case, config, index)
        wanted = _wanted(raw_case)
        computed = (
            {key: decision.computed.get(key) for key in wanted} if wanted is not None else dict(decision.computed)
        )
        results.append(
            {
                "id": case_id,
                "decision": decision.decision,
                "reason_codes": decision.reason_codes,
                "computed": _plain(computed),
            }
        )
    return results


def _human(results: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for result in results:
        lines.append(f"{result['id']}: {result['decision']}")
        lines.append(f"  codes: {', '.join(result['reason_codes'])}")
        for key, value in result["computed"].items():
            lines.append(f"  {key}: {json.dumps(value)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ibkr-compliance`` command."""
    parser = argparse.ArgumentParser(prog="ibkr-compliance", description="Pre-trade compliance rules engine")
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("evaluate", help="evaluate every case of a case file")
    evaluate.add_argument("file", type=Path, help="YAML file in the cases-examples.yaml format")
    evaluate.add_argument(
        "--json", action="store_true", help="print a JSON list of {id, decision, reason_codes, computed}"
    )
    args = parser.parse_args(argv)
    try:
        results = run_evaluate(args.file)
    except CaseError as exc:
        print(f"ibkr-compliance: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2) if args.json else _human(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
