"""Helpers for benchmarks: percentiles and the `BENCH_ROWS` line that bench/run.py collects."""

from __future__ import annotations

import json
from typing import Any


def percentile(samples: list[float], pct: float) -> float:
    """The `pct` percentile (0-100) of `samples`, nearest-rank."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(bench: str, metric: str, value: float, unit: str, *, baseline: float | None = None,
        target: str | None = None, passed: bool | None = None) -> dict[str, Any]:
    """One result row; the ratio is value / baseline, both measured in the same run."""
    ratio = value / baseline if baseline else None
    return {"bench": bench, "metric": metric, "value": value, "unit": unit, "baseline": baseline,
            "ratio": ratio, "target": target, "pass": passed}


def emit(rows: list[dict[str, Any]]) -> None:
    """Print a readable table and the machine-readable line for bench/run.py."""
    for r in rows:
        print(f"{r['bench']:<12} {r['metric']:<44} {r['value']:>14,.3f} {r['unit']:<8} "
              f"baseline={r['baseline']} ratio={r['ratio']} target={r['target']} pass={r['pass']}")
    print("BENCH_ROWS " + json.dumps(rows))
