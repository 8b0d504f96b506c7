"""`make bench`: run every bench/bench_*.py and print one table.

Each benchmark measures its baseline in the same run and prints, as its last line,
`BENCH_ROWS <json list>` with rows {bench, metric, value, unit, baseline, ratio, target, pass}.
Options after `--` go to every benchmark (e.g. `make bench ARGS="--quick"`).
Each benchmark runs as a script, so Python puts bench/ first on its path and `from table import ...`
finds the shared helpers without any path change.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "BENCH_ROWS "


def run_one(path: Path, extra: list[str]) -> tuple[list[dict[str, object]], str]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(path), *extra], capture_output=True, text=True, cwd=HERE.parent)
    rows: list[dict[str, object]] = []
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            rows.extend(json.loads(line[len(MARKER):]))
    note = f"{path.name}: exit {proc.returncode} in {time.monotonic() - started:.0f} s"
    if proc.returncode != 0 or not rows:
        note += "\n" + (proc.stdout[-1500:] + proc.stderr[-1500:]).strip()
    return rows, note


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def main() -> int:
    extra = sys.argv[1:]
    all_rows: list[dict[str, object]] = []
    notes = []
    failed = False
    for path in sorted(HERE.glob("bench_*.py")):
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        rows, note = run_one(path, extra)
        all_rows.extend(rows)
        notes.append(note)
        failed = failed or not rows
    headers = ["bench", "metric", "value", "unit", "baseline", "ratio", "target", "pass"]
    table = [[fmt(r.get(h)) for h in headers] for r in all_rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in table:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    for note in notes:
        print(note)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
