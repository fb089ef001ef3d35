"""Tests of retrain.drift.stats: PSI, Jensen-Shannon and chi-square, and every statistic of a check
cross-checked against scipy and direct computations on the same raw data.

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

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from benchmarks.drift_data import CATEGORICAL, NUMERIC
from retrain.drift import NumericProfile, check_drift, chi2_homogeneity, js_distance, psi
from tests.drift.helpers import SETTINGS, benchmark


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
