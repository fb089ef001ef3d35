"""Tests of retrain.drift.severity: levels that do not grow with the sample size, significance,
min_samples, configurable cut points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.config import FeatureDriftOverride, SeverityCuts
from tests.drift.helpers import ALARM, SETTINGS, check, normal


class TestSeverity:
    @pytest.mark.parametrize(
        ("shift", "expected"),
        [
            pytest.param(0.25, "high", id="a 0.25-sd shift is high at every sample size"),
            pytest.param(0.15, "medium", id="a 0.15-sd shift is medium at every sample size"),
            pytest.param(0.01, "none", id="a 0.01-sd shift is none at every sample size"),
        ],
    )
    def test_does_not_grow_with_sample_size(self, shift: float, expected: str) -> None:
        severities = []
        for n in (5_000, 50_000, 500_000):
            report = check(normal(n, seed=1), normal(n, shift=shift, seed=2))
            severities.append(report.features[0].severity)
        assert severities == [expected] * 3

    def test_a_large_sample_makes_a_tiny_shift_significant_not_severe(self) -> None:
        report = check(normal(1_000_000, seed=1), normal(1_000_000, shift=0.01, seed=2))
        feature = report.features[0]
        assert feature.statistics["ks_pvalue"] < 1e-3
        assert feature.severity == "none"

    def test_few_rows_cap_the_severity_at_low(self) -> None:
        report = check(normal(10_000, seed=1), normal(50, shift=3.0, seed=2))
        feature = report.features[0]
        assert feature.statistics["p_value"] < 1e-6
        assert feature.severity == "low"
        assert feature.status == "insufficient_data"
        assert any("capped at low" in r for r in feature.reasons)

    def test_identical_small_samples_rarely_alarm(self) -> None:
        # effect sizes of 300-row samples are noisy; the significance check keeps the false
        # alarm rate near alpha (1%)
        alarms = 0
        for seed in range(40):
            report = check(normal(300, seed=2 * seed), normal(300, seed=2 * seed + 1))
            alarms += report.features[0].severity in ALARM
        assert alarms <= 2

    def test_an_insignificant_effect_is_reported_but_ignored(self) -> None:
        report = check(normal(150, seed=5), normal(150, shift=0.15, seed=6))
        feature = report.features[0]
        assert feature.statistics["p_value"] >= SETTINGS.alpha
        assert feature.severity == "none"
        assert feature.reasons and feature.reasons[0].startswith("not significant")

    def test_thresholds_are_configurable_per_statistic(self) -> None:
        ref, cur = normal(50_000, seed=1), normal(50_000, shift=0.25, seed=2)
        assert check(ref, cur).features[0].severity == "high"  # driven by Wasserstein 0.25
        lenient = {"wasserstein": SeverityCuts(low=0.3, medium=0.5, high=1.0)}
        feature = check(ref, cur, thresholds=lenient).features[0]
        assert feature.severity == "medium"  # now driven by JS ~0.10
        assert any(r.startswith("js ") and "(medium)" in r for r in feature.reasons)

    def test_thresholds_are_configurable_per_feature(self) -> None:
        rng = np.random.default_rng(3)
        ref = pd.DataFrame({"a": rng.normal(0, 1, 20_000), "b": rng.normal(0, 1, 20_000)})
        cur = pd.DataFrame({"a": rng.normal(0.25, 1, 20_000), "b": rng.normal(0.25, 1, 20_000)})
        loose = SeverityCuts(low=5, medium=6, high=7)
        override = FeatureDriftOverride(
            thresholds={"wasserstein": loose, "js": loose, "psi": loose}
        )
        report = check(ref, cur, features={"a": override})
        assert report.feature("a").severity == "none"
        assert report.feature("b").severity == "high"

    def test_a_disabled_feature_is_skipped(self) -> None:
        rng = np.random.default_rng(4)
        ref = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.normal(size=1000)})
        report = check(ref, ref.assign(a=ref["a"] + 10), features={"a": {"enabled": False}})
        assert [f.name for f in report.features] == ["b"]
        assert report.skipped == ["a"]

    def test_a_missing_rate_change_alone_is_drift(self) -> None:
        ref = normal(20_000, seed=1)
        cur = normal(20_000, seed=2)
        cur.loc[cur.sample(frac=0.2, random_state=0).index, "x"] = np.nan
        feature = check(ref, cur).features[0]
        assert feature.statistics["missing_rate_change"] == pytest.approx(0.2, abs=1e-9)
        assert feature.severity == "high"
        assert any(r.startswith("missing_rate") for r in feature.reasons)
