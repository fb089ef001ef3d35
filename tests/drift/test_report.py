"""Tests of retrain.drift.report: the summary signals and the JSON form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retrain.drift import check_drift
from retrain.triggers import Signals
from tests.drift.helpers import SETTINGS, benchmark, check


class TestDriftReport:
    def test_summary_counts_high_and_shares_medium_or_high(self) -> None:
        rng = np.random.default_rng(11)
        n = 20_000
        ref = pd.DataFrame({k: rng.normal(size=n) for k in "abcd"})
        cur = pd.DataFrame(
            {
                "a": rng.normal(0.5, 1, n),  # high
                "b": rng.normal(0.15, 1, n),  # medium
                "c": rng.normal(size=n),
                "d": rng.normal(size=n),
            }
        )
        report = check(ref, cur)
        assert report.by_severity["high"] == ["a"]
        assert report.by_severity["medium"] == ["b"]
        assert report.drift_count == 1
        assert report.drift_share == pytest.approx(0.5)
        signals = Signals.from_mapping(report.signals())
        assert (signals.drift_count, signals.drift_share) == (1.0, 0.5)

    def test_to_dict_is_strict_json_with_the_cli_fields(self) -> None:
        _, cur, _, profile = benchmark(10_000)
        data = json.loads(json.dumps(check_drift(profile, cur, settings=SETTINGS).to_dict(),
                                     allow_nan=False))  # fmt: skip
        assert {"features", "drift_count", "drift_share", "by_severity"} <= set(data)
        first = data["features"][0]
        assert {"name", "kind", "severity", "statistics"} <= set(first)
        assert {"psi", "js", "wasserstein", "ks", "chi2", "p_value"} <= set(first["statistics"])
        assert data["drift_count"] == 5
