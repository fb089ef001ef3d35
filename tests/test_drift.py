"""Tests of retrain.drift: the benchmark verdicts, cross-checks against scipy, severity rules,
profiles, input kinds, degenerate input, prediction/label drift and the report.

Cross-check tolerances (documented in the module and the final report):

* PSI, JS (base 2) and chi-square (``chi2_contingency`` without continuity correction) on the
  profile's bins agree with a direct computation from the raw data to 1e-9 (same bins, exact).
* KS is evaluated at the fine edges only, so it never exceeds scipy's exact ``ks_2samp``
  statistic and falls short by at most the largest fine-bin share (about 0.01); measured
  differences are below 0.001.
* The normalised Wasserstein distance is approximated from the fine grid; it agrees with
  ``scipy.stats.wasserstein_distance / std_ref`` within 0.002 + 1% (measured: below 0.0005).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from benchmarks.drift_data import CATEGORICAL, NUMERIC, make_drift_data
from retrain.config import DriftSettings, FeatureDriftOverride, SeverityCuts
from retrain.drift import (
    FORMAT_VERSION,
    CategoricalProfile,
    DriftReport,
    NumericProfile,
    ReferenceProfile,
    build_profile,
    check_drift,
    chi2_homogeneity,
    infer_feature_kinds,
    js_distance,
    load_reference,
    psi,
)
from retrain.errors import DataError
from retrain.triggers import Signals

SETTINGS = DriftSettings()
ALARM = {"medium", "high"}


@cache
def benchmark(n: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], ReferenceProfile]:
    ref, cur, expected = make_drift_data(n)
    profile = build_profile(ref, numeric=NUMERIC, categorical=CATEGORICAL, settings=SETTINGS)
    return ref, cur, expected, profile


def frame_profile(frame: pd.DataFrame, **settings: Any) -> ReferenceProfile:
    numeric, categorical = infer_feature_kinds(frame)
    return build_profile(
        frame, numeric=numeric, categorical=categorical, settings=DriftSettings(**settings)
    )


def check(reference: pd.DataFrame, current: Any, **settings: Any) -> DriftReport:
    profile = frame_profile(reference, **settings)
    return check_drift(profile, current, settings=DriftSettings(**settings))


def normal(n: int, shift: float = 0.0, scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, scale, n)})


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


class TestCrossChecks:
    """Our statistics against scipy and direct computations on the same raw data."""

    @staticmethod
    def raw(frame: pd.DataFrame, name: str) -> np.ndarray:
        values = frame[name].to_numpy(dtype=np.float64)
        return values[~np.isnan(values)]

    @staticmethod
    def bins(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
        """Counts in right-closed bins (-inf, e0], (e0, e1], ..., (e_last, +inf)."""
        index = np.searchsorted(np.asarray(edges), values, side="left")
        return np.bincount(index, minlength=len(edges) + 1)

    @staticmethod
    def direct_psi(ref: np.ndarray, cur: np.ndarray) -> float:
        r = np.maximum(ref / ref.sum(), max(1e-4, 0.5 / ref.sum()))
        c = np.maximum(cur / cur.sum(), max(1e-4, 0.5 / cur.sum()))
        return float(np.sum((c - r) * np.log(c / r)))

    @pytest.mark.parametrize("name", NUMERIC, ids=lambda n: f"numeric feature {n} matches scipy")
    def test_numeric_statistics_match_direct_computation(self, name: str) -> None:
        ref_frame, cur_frame, _, profile = benchmark(100_000)
        feature = check_drift(profile, cur_frame, settings=SETTINGS, columns=[name]).features[0]
        p = profile.features[name]
        assert isinstance(p, NumericProfile)
        ref, cur = self.raw(ref_frame, name), self.raw(cur_frame, name)
        ref_bins, cur_bins = self.bins(ref, p.coarse_edges), self.bins(cur, p.coarse_edges)
        st = feature.statistics

        assert st["psi"] == pytest.approx(self.direct_psi(ref_bins, cur_bins), abs=1e-9)
        expected_js = jensenshannon(ref_bins / ref_bins.sum(), cur_bins / cur_bins.sum(), base=2)
        assert st["js"] == pytest.approx(expected_js, abs=1e-9)
        table = np.vstack([ref_bins, cur_bins])
        table = table[:, table.sum(axis=0) > 0]
        chi = stats.chi2_contingency(table, correction=False)
        assert st["chi2"] == pytest.approx(chi.statistic, rel=1e-9)
        assert st["chi2_dof"] == chi.dof
        assert st["chi2_pvalue"] == pytest.approx(chi.pvalue, rel=1e-6, abs=1e-300)

        exact_ks = stats.ks_2samp(ref, cur).statistic
        fine_ref = self.bins(ref, p.edges) / ref.size
        fine_cur = self.bins(cur, p.edges) / cur.size
        assert st["ks"] <= exact_ks + 1e-12
        assert exact_ks - st["ks"] <= max(fine_ref.max(), fine_cur.max())
        assert exact_ks - st["ks"] < 0.001

        exact_w = stats.wasserstein_distance(ref, cur) / ref.std()
        assert st["wasserstein"] == pytest.approx(exact_w, rel=0.01, abs=0.002)

    @pytest.mark.parametrize(
        "name", CATEGORICAL, ids=lambda n: f"categorical feature {n} matches scipy"
    )
    def test_categorical_statistics_match_direct_computation(self, name: str) -> None:
        ref_frame, cur_frame, _, profile = benchmark(100_000)
        feature = check_drift(profile, cur_frame, settings=SETTINGS, columns=[name]).features[0]
        ref_counts = ref_frame[name].value_counts()
        cur_counts = cur_frame[name].value_counts()
        categories = list(ref_counts.index)
        unseen = int(cur_counts.drop(categories, errors="ignore").sum())
        ref_bins = np.array([*ref_counts.reindex(categories).to_numpy(), 0])
        cur_bins = np.array([*cur_counts.reindex(categories, fill_value=0).to_numpy(), unseen])
        st = feature.statistics

        assert st["psi"] == pytest.approx(self.direct_psi(ref_bins, cur_bins), abs=1e-9)
        expected_js = jensenshannon(ref_bins / ref_bins.sum(), cur_bins / cur_bins.sum(), base=2)
        assert st["js"] == pytest.approx(expected_js, abs=1e-9)
        table = np.vstack([ref_bins, cur_bins])
        table = table[:, table.sum(axis=0) > 0]
        chi = stats.chi2_contingency(table, correction=False)
        assert st["chi2"] == pytest.approx(chi.statistic, rel=1e-9)
        assert st["chi2_pvalue"] == pytest.approx(chi.pvalue, rel=1e-6, abs=1e-300)
        assert feature.unseen_share == pytest.approx(unseen / cur_counts.sum())


class TestPsi:
    def test_matches_the_textbook_value(self) -> None:
        expected = 0.1 * math.log(0.6 / 0.5) + (-0.1) * math.log(0.4 / 0.5)
        assert psi([5000, 5000], [6000, 4000]) == pytest.approx(expected, rel=1e-12)

    def test_is_zero_for_identical_shares_and_symmetric(self) -> None:
        assert psi([10, 20, 30], [100, 200, 300]) == pytest.approx(0.0, abs=1e-15)
        assert psi([10, 20, 30], [30, 20, 10]) == pytest.approx(psi([30, 20, 10], [10, 20, 30]))

    @pytest.mark.parametrize(
        ("ref", "cur"),
        [
            pytest.param([100, 0, 50], [0, 80, 70], id="empty bins on both sides stay finite"),
            pytest.param([0, 0, 10], [0, 0, 10], id="bins empty on both sides add nothing"),
            pytest.param([0, 0], [1, 1], id="an all-empty reference does not divide by zero"),
        ],
    )
    def test_zero_counts_are_smoothed(self, ref: list[int], cur: list[int]) -> None:
        value = psi(ref, cur)
        assert math.isfinite(value)
        assert value >= 0

    def test_floor_makes_large_samples_independent_of_n(self) -> None:
        # 0.5% of rows in a bin the reference never saw: the same PSI at 10k and 10M rows
        small = psi([10_000, 0], [9_950, 50])
        large = psi([10_000_000, 0], [9_950_000, 50_000])
        assert small == pytest.approx(large, rel=1e-9)


class TestJsDistance:
    def test_is_between_zero_and_one_in_base_two(self) -> None:
        assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
        assert js_distance([3, 4], [30, 40]) == pytest.approx(0.0, abs=1e-12)

    def test_matches_scipy(self) -> None:
        ref, cur = np.array([5, 9, 0, 3]), np.array([1, 0, 7, 7])
        expected = jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
        assert js_distance(ref, cur) == pytest.approx(expected, abs=1e-12)


class TestChi2Homogeneity:
    def test_matches_chi2_contingency_without_correction(self) -> None:
        ref, cur = np.array([120, 80, 40, 0]), np.array([60, 70, 20, 0])
        stat, dof, p = chi2_homogeneity(ref, cur)
        expected = stats.chi2_contingency(np.vstack([ref, cur])[:, :3], correction=False)
        assert (stat, dof) == (pytest.approx(expected.statistic), expected.dof)
        assert p == pytest.approx(expected.pvalue)

    def test_is_not_the_biased_goodness_of_fit_test(self) -> None:
        # goodness-of-fit against reference shares ignores the reference's own sampling error
        ref, cur = np.array([60, 40]), np.array([5000, 5000])
        stat, _, _ = chi2_homogeneity(ref, cur)
        gof = stats.chisquare(cur, f_exp=ref / ref.sum() * cur.sum()).statistic
        assert stat < gof / 10

    def test_a_single_nonempty_bin_has_no_evidence(self) -> None:
        assert chi2_homogeneity([10, 0], [20, 0]) == (0.0, 0, 1.0)


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


class TestReferenceProfile:
    def test_round_trips_through_json(self, tmp_path: Path) -> None:
        _, _, _, profile = benchmark(10_000)
        text = json.dumps(profile.to_dict(), allow_nan=False)
        again = ReferenceProfile.from_dict(json.loads(text))
        assert again == profile
        path = profile.save(tmp_path / "deep" / "profile.json")
        assert ReferenceProfile.load(path) == profile

    def test_is_small(self) -> None:
        _, _, _, profile = benchmark(100_000)
        assert len(profile.to_json()) < 150_000
        assert profile.to_dict()["format_version"] == FORMAT_VERSION

    def test_checking_a_loaded_profile_gives_the_same_report(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        loaded = ReferenceProfile.load(profile.save(tmp_path / "p.json"))
        a = check_drift(profile, cur, settings=SETTINGS).to_dict()
        b = check_drift(loaded, cur, settings=SETTINGS).to_dict()
        assert a["features"] == b["features"]

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            pytest.param(lambda d: d.update(format_version=99), "format_version 99",
                         id="an unknown format version is refused"),
            pytest.param(lambda d: d["features"]["num_same_normal"].update(counts=[1, 2]),
                         "features.num_same_normal", id="malformed counts name the feature"),
            pytest.param(lambda d: d["features"]["cat_same_three"].update(kind="text"),
                         "unknown kind 'text'", id="an unknown feature kind is refused"),
            pytest.param(lambda d: d.pop("n_rows"), "n_rows", id="a missing key is named"),
        ],
    )  # fmt: skip
    def test_malformed_profiles_raise_data_error(self, mutate: Any, message: str) -> None:
        _, _, _, profile = benchmark(10_000)
        data = json.loads(profile.to_json())
        mutate(data)
        with pytest.raises(DataError, match=message):
            ReferenceProfile.from_dict(data)

    def test_loading_a_file_that_is_not_a_profile_raises_data_error(self, tmp_path: Path) -> None:
        path = tmp_path / "p.json"
        path.write_text("not json")
        with pytest.raises(DataError, match="not a profile JSON"):
            ReferenceProfile.load(path)
        with pytest.raises(DataError, match="file not found"):
            ReferenceProfile.load(tmp_path / "missing.json")

    def test_numeric_profile_holds_quantile_edges_and_counts(self) -> None:
        values = np.arange(1, 1001, dtype=np.float64)
        profile = frame_profile(pd.DataFrame({"x": values}))
        p = profile.features["x"]
        assert isinstance(p, NumericProfile)
        assert sum(p.counts) == 1000
        assert (p.min, p.max, p.mean) == (1.0, 1000.0, pytest.approx(500.5))
        assert p.integer_valued
        # decile edges at 100, 200, ..., 900 plus the range bounds
        assert [e for e in p.coarse_edges if 1 < e < 1000] == [100.0 * k for k in range(1, 10)]
        assert set(p.coarse_edges) <= set(p.edges)

    def test_categorical_profile_counts_every_category(self) -> None:
        frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None]})
        p = frame_profile(frame).features["c"]
        assert isinstance(p, CategoricalProfile)
        assert (p.categories, p.counts) == (("a", "b", "c", "d"), (5, 3, 2, 1))
        assert (p.other_count, p.n_levels, p.n_missing, p.n) == (0, 4, 1, 12)
        assert not p.truncated

    def test_too_many_categories_are_chosen_and_counted_on_different_rows(self) -> None:
        # rows 0..11: a a a a a b b b c c d None; even rows choose (a: 3, then b by name among
        # b, c, d with 1 each), odd rows count (a: 2, b: 2, other: c)
        frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [None]})
        p = frame_profile(frame, max_categories=2).features["c"]
        assert isinstance(p, CategoricalProfile)
        assert (p.categories, p.counts, p.other_count) == (("a", "b"), (2, 2), 1)
        assert (p.n_levels, p.n_missing, p.n) == (4, 1, 12)
        assert p.truncated

    def test_build_takes_a_pyarrow_table(self) -> None:
        ref, _, _, profile = benchmark(10_000)
        table = pa.Table.from_pandas(ref, preserve_index=False)
        again = build_profile(table, numeric=NUMERIC, categorical=CATEGORICAL, settings=SETTINGS)

        def without_dtype(p: ReferenceProfile) -> dict[str, Any]:
            return {k: {**v, "dtype": None} for k, v in p.to_dict()["features"].items()}

        assert without_dtype(again) == without_dtype(profile)


class TestInputs:
    """Current data as DataFrame, pyarrow Table, parquet file, parquet directory or CSV."""

    @staticmethod
    def statistics(report: DriftReport) -> dict[str, dict[str, Any]]:
        """Counts-based statistics exactly; float sums (mean, std) to 1e-12."""
        return {
            f.name: {
                k: pytest.approx(v, rel=1e-12) if k.startswith(("mean", "std")) else v
                for k, v in f.to_dict()["statistics"].items()
            }
            for f in report.features
        }

    def test_every_input_kind_gives_the_same_report(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        expected = self.statistics(check_drift(profile, cur, settings=SETTINGS))
        table = pa.Table.from_pandas(cur, preserve_index=False)
        cur.to_parquet(tmp_path / "cur.parquet")
        parts = tmp_path / "parts"
        parts.mkdir()
        cur.iloc[:4000].to_parquet(parts / "a.parquet")
        cur.iloc[4000:].to_parquet(parts / "b.parquet")
        for current in (table, tmp_path / "cur.parquet", str(parts)):
            got = check_drift(profile, current, settings=SETTINGS, batch_rows=999)
            assert expected == {f.name: f.to_dict()["statistics"] for f in got.features}

    def test_csv_input_matches_up_to_text_rounding(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        cur.to_csv(tmp_path / "cur.csv", index=False)
        expected = check_drift(profile, cur, settings=SETTINGS)
        got = check_drift(profile, tmp_path / "cur.csv", settings=SETTINGS)
        for a, b in zip(expected.features, got.features, strict=True):
            assert a.severity == b.severity
            assert a.statistics["psi"] == pytest.approx(b.statistics["psi"], rel=1e-6, abs=1e-9)

    def test_streaming_batches_count_every_row_once(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        pq.write_table(pa.Table.from_pandas(cur), tmp_path / "c.parquet", row_group_size=3000)
        report = check_drift(profile, tmp_path / "c.parquet", settings=SETTINGS, batch_rows=1234)
        assert report.n_cur == 10_000
        assert all(f.n_cur == 10_000 for f in report.features)
        assert report.feature("num_same_normal_5pct_nan").missing_rate_cur == pytest.approx(
            cur["num_same_normal_5pct_nan"].isna().mean()
        )

    @pytest.mark.parametrize(
        "dtype",
        [
            pytest.param("Int64", id="nullable integers"),
            pytest.param("Float64", id="nullable floats"),
            pytest.param("float32", id="float32"),
            pytest.param("double[pyarrow]", id="pyarrow-backed doubles"),
        ],
    )
    def test_numeric_dtypes_with_missing_values(self, dtype: str) -> None:
        rng = np.random.default_rng(7)
        values = pd.array(rng.integers(0, 50, 5000), dtype="Int64")
        values[::10] = pd.NA
        frame = pd.DataFrame({"x": values.astype(dtype)})
        report = check(frame, frame)
        feature = report.features[0]
        assert feature.kind == "numeric"
        assert feature.severity == "none"
        assert feature.missing_rate_cur == pytest.approx(0.1)
        assert feature.statistics["psi"] == pytest.approx(0.0, abs=1e-12)

    @pytest.mark.parametrize(
        "dtype",
        [
            pytest.param("str", id="pandas strings"),
            pytest.param("object", id="python objects"),
            pytest.param("category", id="pandas categoricals"),
            pytest.param("string[pyarrow]", id="pyarrow strings"),
        ],
    )
    def test_categorical_dtypes_with_missing_values(self, dtype: str) -> None:
        values = pd.Series(["a", "b", None, "c", "a"] * 400, dtype=dtype)
        frame = pd.DataFrame({"c": values})
        report = check(frame, frame)
        feature = report.features[0]
        assert feature.kind == "categorical"
        assert (feature.severity, feature.unseen_share) == ("none", 0.0)
        assert feature.missing_rate_cur == pytest.approx(0.2)

    def test_dictionary_encoded_and_plain_strings_compare_equal(self) -> None:
        frame = pd.DataFrame({"c": pd.Series(list("aabbbc") * 500, dtype="str")})
        profile = frame_profile(frame)
        table = pa.table({"c": pa.array(list("aabbbc") * 500).dictionary_encode()})
        feature = check_drift(profile, table, settings=SETTINGS).features[0]
        assert feature.statistics["psi"] == pytest.approx(0.0, abs=1e-12)
        assert feature.unseen_share == 0.0

    def test_integer_and_float_category_codes_are_the_same_categories(self) -> None:
        ref = pd.DataFrame({"label": np.tile([0, 1, 2], 1000)})
        cur = pd.DataFrame({"label": np.tile([0.0, 1.0, 2.0, np.nan], 750)})
        profile = build_profile(ref, numeric=[], categorical=["label"], settings=SETTINGS)
        feature = check_drift(profile, cur, settings=SETTINGS).features[0]
        assert feature.status == "ok"
        assert feature.unseen_share == 0.0
        assert feature.missing_rate_cur == pytest.approx(0.25)

    def test_infers_kinds_from_dtypes(self) -> None:
        frame = pd.DataFrame(
            {
                "i": [1, 2],
                "f": [0.5, 1.5],
                "s": ["a", "b"],
                "b": [True, False],
                "c": pd.Categorical(["x", "y"]),
                "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            }
        )
        assert infer_feature_kinds(frame) == (["i", "f"], ["s", "b", "c"])

    def test_load_reference_accepts_data_or_a_saved_profile(self, tmp_path: Path) -> None:
        ref, _, _, profile = benchmark(10_000)
        path = profile.save(tmp_path / "p.json")
        assert load_reference(path, settings=SETTINGS) == profile
        with pytest.raises(DataError, match="nope: not in the reference profile"):
            load_reference(path, numeric=["nope"], settings=SETTINGS)
        with pytest.raises(DataError, match="profiled as numeric, configured as categorical"):
            load_reference(path, categorical=["num_same_normal"], settings=SETTINGS)
        built = load_reference(ref, numeric=["num_same_normal"], categorical=[], settings=SETTINGS)
        assert list(built.features) == ["num_same_normal"]


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

    def test_a_column_missing_from_reference_data_names_the_column(self) -> None:
        with pytest.raises(DataError, match="nope: column not found in the reference data"):
            build_profile(normal(100), numeric=["x", "nope"], categorical=[], settings=SETTINGS)

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

    def test_wrongly_typed_reference_columns_raise(self) -> None:
        frame = pd.DataFrame({"s": ["a", "b"], "t": pd.to_datetime(["2024-01-01"] * 2)})
        with pytest.raises(DataError, match="s: numeric feature has dtype str"):
            build_profile(frame, numeric=["s"], categorical=[], settings=SETTINGS)
        with pytest.raises(DataError, match="t: categorical feature has unsupported dtype"):
            build_profile(frame, numeric=[], categorical=["t"], settings=SETTINGS)

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

    def test_empty_reference_data_raises(self) -> None:
        with pytest.raises(DataError, match="reference data has no rows"):
            frame_profile(normal(0))

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

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(42, id="a number"),
            pytest.param([1, 2], id="a list"),
        ],
    )
    def test_unsupported_data_objects_raise(self, data: Any) -> None:
        with pytest.raises(DataError, match="expected a pandas DataFrame"):
            build_profile(data, numeric=["x"], categorical=[], settings=SETTINGS)

    def test_missing_paths_raise(self, tmp_path: Path) -> None:
        profile = frame_profile(normal(100))
        with pytest.raises(DataError, match="file or directory not found"):
            check_drift(profile, tmp_path / "nope.parquet", settings=SETTINGS)

    def test_a_feature_listed_twice_raises(self) -> None:
        with pytest.raises(DataError, match="x: listed as both numeric and categorical"):
            build_profile(normal(10), numeric=["x"], categorical=["x"], settings=SETTINGS)


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

    def test_to_html_writes_a_self_contained_page_with_plots(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        report = check_drift(profile, cur, settings=SETTINGS)
        text = report.to_html(tmp_path / "out" / "drift.html")
        assert (tmp_path / "out" / "drift.html").read_text() == text
        assert text.count('src="data:image/png;base64,') == len(report.drifted) == 5
        assert "http://" not in text and "https://" not in text
        assert "<td>num_mean_shift_0_25sd</td>" in text
        few = check_drift(
            profile, cur, settings=SETTINGS, columns=["num_same_normal", "cat_same_three"]
        )
        assert few.to_html().count("<img") == 0  # nothing drifted
        assert few.to_html(plot_all=True).count("<img") == 2

    def test_to_html_handles_degenerate_features(self) -> None:
        ref = pd.DataFrame({"k": [5.0] * 500, "m": np.arange(500.0), "c": ["a"] * 500})
        cur = pd.DataFrame({"k": [7.0] * 500, "c": [None] * 500})
        report = check(ref, cur)
        text = report.to_html(plot_all=True)
        assert "missing_column" in text and "constant_reference" in text
        assert text.count("<img") == 1  # the constant feature; nothing to plot for the others
