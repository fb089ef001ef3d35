"""Tests of retrain.drift.check: the benchmark verdicts, degenerate current data, prediction and
label drift."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain.drift import DriftReport, build_profile, check_drift
from retrain.errors import DataError
from tests.drift.helpers import ALARM, SETTINGS, benchmark, check, frame_profile, normal


def assert_benchmark_verdicts(n: int) -> DriftReport:
    _, cur, expected, profile = benchmark(n)
    report = check_drift(profile, cur, settings=SETTINGS)
    got = {f.name: f.severity for f in report.features}
    alarms = sorted(name for name, severity in got.items() if severity in ALARM)
    drifts = sorted(name for name, kind in expected.items() if kind == "drift")
    assert alarms == drifts, got
    quiet = {name: got[name] for name, kind in expected.items() if kind != "drift"}
    assert set(quiet.values()) <= {"none", "low"}, quiet
    assert len(report.features) == 25
    assert report.drift_share == pytest.approx(5 / 25)
    return report


class TestBenchmarkVerdicts:
    """20 numeric + 5 categorical features: 5 real drifts, 5 tiny shifts, 15 identical."""

    @pytest.mark.parametrize(
        "n",
        [
            pytest.param(10_000, id="at 10k rows per side exactly the 5 real drifts alarm"),
            pytest.param(100_000, id="at 100k rows per side exactly the 5 real drifts alarm"),
        ],
    )
    def test_exactly_the_real_drifts_are_medium_or_high(self, n: int) -> None:
        report = assert_benchmark_verdicts(n)
        assert report.drift_count == 5

    @pytest.mark.slow
    def test_exactly_the_real_drifts_are_medium_or_high_at_one_million_rows(self) -> None:
        assert_benchmark_verdicts(1_000_000)

    def test_tiny_shifts_are_statistically_significant_but_not_alarms(self) -> None:
        _, cur, _, profile = benchmark(100_000)
        report = check_drift(profile, cur, settings=SETTINGS)
        tiny_scale = report.feature("num_tiny_scale_1pct")
        assert tiny_scale.statistics["p_value"] < 1e-3  # a p-value test would flag it
        assert tiny_scale.severity == "none"
        unseen = report.feature("cat_tiny_unseen_0_1pct")
        assert unseen.unseen_share == pytest.approx(0.001, abs=5e-4)
        assert unseen.severity in {"none", "low"}
        assert "region_new_a" in unseen.message


class TestBadInput:
    """Degenerate input gives a per-feature status or a DataError naming the column."""

    def test_a_column_missing_from_current_data_is_unknown_not_quiet(self) -> None:
        ref = pd.DataFrame({"a": np.arange(500.0), "b": np.arange(500.0)})
        report = check(ref, ref.drop(columns="b"))
        feature = report.feature("b")
        assert (feature.severity, feature.status) == ("unknown", "missing_column")
        assert [f.name for f in report.unchecked] == ["b"]
        assert report.drift_share == 0.0  # share of the checked features only
        assert report.by_severity["unknown"] == ["b"]

    def test_unknown_columns_to_check_raise(self) -> None:
        profile = frame_profile(normal(100))
        with pytest.raises(DataError, match="y: not in the reference profile"):
            check_drift(profile, normal(100), settings=SETTINGS, columns=["y"])

    def test_a_dtype_mismatch_is_unknown_with_both_dtypes_named(self) -> None:
        ref = pd.DataFrame({"x": np.arange(500.0), "c": ["a", "b"] * 250})
        cur = pd.DataFrame({"x": ["1.5", "2"] * 250, "c": np.arange(500)})
        report = check(ref, cur)
        x, c = report.feature("x"), report.feature("c")
        assert (x.severity, x.status) == ("unknown", "dtype_mismatch")
        assert "expected numeric values (reference float64), got str" in x.message
        assert (c.severity, c.status) == ("unknown", "dtype_mismatch")
        assert "expected string categories" in c.message

    def test_an_all_missing_current_column_is_high_drift(self) -> None:
        ref = pd.DataFrame({"x": np.arange(1000.0), "c": ["a", "b"] * 500})
        cur = pd.DataFrame({"x": [np.nan] * 1000, "c": [None] * 1000})
        report = check(ref, cur)
        for name in ("x", "c"):
            feature = report.feature(name)
            assert (feature.severity, feature.status) == ("high", "all_missing")
            assert feature.missing_rate_cur == 1.0

    def test_an_all_missing_reference_column_is_flagged(self) -> None:
        ref = pd.DataFrame({"x": [np.nan] * 1000})
        report = check(ref, pd.DataFrame({"x": np.arange(1000.0)}))
        feature = report.features[0]
        assert feature.status == "all_missing_reference"
        assert feature.severity == "high"  # the missing rate fell from 100% to 0%

    def test_empty_current_data_raises(self) -> None:
        profile = frame_profile(normal(100))
        with pytest.raises(DataError, match="current data has no rows"):
            check_drift(profile, normal(0), settings=SETTINGS)

    def test_infinite_values_are_counted_and_flagged(self) -> None:
        ref = normal(10_000, seed=1)
        cur = normal(10_000, seed=2)
        cur.loc[:499, "x"] = np.inf
        cur.loc[500:999, "x"] = -np.inf
        feature = check(ref, cur).features[0]
        assert feature.status == "infinite_values"
        assert feature.statistics["n_inf_cur"] == 1000
        assert math.isfinite(feature.statistics["wasserstein"] or math.nan)
        assert feature.severity in ALARM  # 10% of the rows moved to the extremes

    @pytest.mark.parametrize(
        ("current", "expected"),
        [
            pytest.param([5.0] * 1000, "none", id="the same constant is no drift"),
            pytest.param([3.0] * 1000, "high", id="a lower constant is high drift"),
            pytest.param([7.0] * 1000, "high", id="a higher constant is high drift"),
        ],
    )
    def test_a_constant_reference_column(self, current: list[float], expected: str) -> None:
        report = check(pd.DataFrame({"x": [5.0] * 1000}), pd.DataFrame({"x": current}))
        feature = report.features[0]
        assert feature.status == "constant_reference"
        assert feature.severity == expected
        assert feature.statistics["wasserstein"] is None

    @staticmethod
    def many_levels(seed: int, weights: np.ndarray | None = None) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        levels = np.array([f"id_{i}" for i in range(10_000)], dtype=object)
        codes = np.concatenate(
            [np.arange(10_000), rng.choice(10_000, 40_000, p=weights)]
        )  # every level at least once
        return pd.DataFrame({"c": levels[rng.permutation(codes)]})

    def test_a_ten_thousand_level_categorical_is_flagged_not_crashed(self) -> None:
        report = check(self.many_levels(8), self.many_levels(9))
        feature = report.features[0]
        assert feature.status == "high_cardinality"
        assert "10000 levels" in feature.message
        assert feature.unseen_share is None
        # the reference's most frequent 1000 levels are frequent partly by chance; comparing them
        # with current data would report a spurious shift ("winner's curse"); hash buckets do not
        assert feature.severity == "none", feature.reasons
        assert feature.statistics["n_levels_ref"] == 10_000
        assert len(feature.distribution["labels"]) == 1001  # the kept levels and (other)

    def test_a_shift_among_ten_thousand_levels_is_still_detected(self) -> None:
        weights = np.where(np.arange(10_000) < 2_000, 4.0, 1.0)
        report = check(self.many_levels(8), self.many_levels(9, weights / weights.sum()))
        assert report.features[0].severity in ALARM

    def test_a_new_category_with_many_rows_is_high_drift(self) -> None:
        ref = pd.DataFrame({"c": ["a", "b"] * 5000})
        cur = pd.DataFrame({"c": ["a", "b"] * 4500 + ["new"] * 1000})
        feature = check(ref, cur).features[0]
        assert feature.unseen_share == pytest.approx(0.1)
        assert feature.severity == "high"
        assert "'new' (1000)" in feature.message


class TestPredictionAndLabelDrift:
    """The same engine on a model's predictions and on the label column."""

    @staticmethod
    def model_and_data() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(9)
        x = rng.normal(size=(20_000, 3))
        y = (x @ [1.0, -0.5, 0.3] + rng.normal(0, 0.5, 20_000) > 0).astype(int)
        model = LogisticRegression().fit(x[:10_000], y[:10_000])
        ref = pd.DataFrame(x[10_000:15_000], columns=["a", "b", "c"]).assign(label=y[10_000:15_000])
        cur = pd.DataFrame(x[15_000:], columns=["a", "b", "c"]).assign(label=y[15_000:])
        return model, ref, cur

    @staticmethod
    def predictions(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
        x = frame[["a", "b", "c"]].to_numpy()
        return pd.DataFrame({"prediction": model.predict(x), "score": model.predict_proba(x)[:, 1]})

    def test_prediction_drift_is_detected_when_inputs_shift(self) -> None:
        model, ref, cur = self.model_and_data()
        profile = build_profile(
            self.predictions(model, ref),
            numeric=["score"],
            categorical=["prediction"],
            settings=SETTINGS,
        )
        same = check_drift(profile, self.predictions(model, cur), settings=SETTINGS)
        assert {f.severity for f in same.features} <= {"none", "low"}
        shifted = check_drift(
            profile, self.predictions(model, cur.assign(a=cur["a"] + 0.8)), settings=SETTINGS
        )
        assert {f.name: f.severity for f in shifted.features} == {
            "score": "high",
            "prediction": "high",
        }

    def test_label_drift_is_detected_as_a_categorical_profile(self) -> None:
        rng = np.random.default_rng(10)
        ref = pd.DataFrame({"label": (rng.random(20_000) < 0.30).astype(int)})
        same = pd.DataFrame({"label": (rng.random(20_000) < 0.30).astype(int)})
        more = pd.DataFrame({"label": (rng.random(20_000) < 0.45).astype(int)})
        profile = build_profile(ref, numeric=[], categorical=["label"], settings=SETTINGS)
        assert check_drift(profile, same, settings=SETTINGS).features[0].severity == "none"
        feature = check_drift(profile, more, settings=SETTINGS).features[0]
        assert feature.severity in ALARM
        assert feature.distribution["labels"][:2] == ["0", "1"]

    def test_a_series_is_profiled_under_its_name(self) -> None:
        model, ref, cur = self.model_and_data()

        def scores(frame: pd.DataFrame) -> pd.Series:
            return pd.Series(model.predict_proba(frame[["a", "b", "c"]].to_numpy())[:, 1], name="p")

        profile = build_profile(scores(ref), numeric=["p"], categorical=[], settings=SETTINGS)
        assert profile.numeric == ["p"]
        report = check_drift(profile, scores(cur), settings=SETTINGS)
        assert (report.features[0].name, report.features[0].severity) == ("p", "none")
