"""The benchmark's verdicts as a table: severity of every feature at several sizes.

    .venv/bin/python benchmarks/drift_correctness.py [--rows 10000 100000 1000000]

Passes (exit 0) when at every size exactly the 5 real drifts are ``medium`` or ``high`` and no
other feature is above ``low``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.drift_data import CATEGORICAL, EXPECTED, NUMERIC, make_drift_data
from retrain.config import DriftSettings
from retrain.drift import build_profile, check_drift


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    settings = DriftSettings()
    table: dict[str, list[str]] = {name: [] for name in EXPECTED}
    ok = True
    for n in args.rows:
        ref, cur, expected = make_drift_data(n)
        profile = build_profile(ref, numeric=NUMERIC, categorical=CATEGORICAL, settings=settings)
        report = check_drift(profile, cur, settings=settings)
        for f in report.features:
            alarm = f.severity in {"medium", "high"}
            right = alarm if expected[f.name] == "drift" else f.severity in {"none", "low"}
            ok &= right
            stat = max(
                ("psi", "js", "wasserstein"), key=lambda k: f.statistics.get(f"{k}_net") or 0
            )
            value = f.statistics.get(stat)
            shown = f"{f.severity} ({stat} {value:.3f})" if value is not None else f.severity
            table[f.name].append(shown + ("" if right else " WRONG"))
    header = f"| feature | expected | {' | '.join(f'{n:,} rows' for n in args.rows)} |"
    print(header)
    print("|" + "---|" * (len(args.rows) + 2))
    for name, cells in table.items():
        print(f"| {name} | {EXPECTED[name]} | {' | '.join(cells)} |")
    print(f"\nexactly the 5 real drifts alarm at every size: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
