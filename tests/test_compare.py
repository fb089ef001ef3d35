from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from retrain.compare import (
    bootstrap_difference_ci,
    compare_offline,
    compare_online,
    mcnemar,
    required_sample_size,
)
from retrain.config import ABTestSettings

SETTINGS = ABTestSettings()


def paired(n: int, cand_acc: float, cur_acc: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    cand = np.where(rng.random(n) < cand_acc, y, 1 - y)
    cur = np.where(rng.random(n) < cur_acc, y, 1 - y)
    return y, cand, cur


class TestMcNemar:
    @pytest.mark.parametrize(
        ("b", "c"),
        [
            pytest.param(3, 9, id="few discordant pairs use the exact test"),
            pytest.param(0, 5, id="one-sided discordance"),
            pytest.param(40, 70, id="many discordant pairs use chi-square"),
            pytest.param(500, 520, id="large balanced counts"),
        ],
    )
    def test_p_value_matches_statsmodels(self, b: int, c: int) -> None:
        p, test = mcnemar(b, c)
        exact = b + c < 25
        expected = sm_mcnemar([[100, b], [c, 100]], exact=exact, correction=True).pvalue
        assert p == pytest.approx(expected, rel=1e-9)
        assert test == ("mcnemar-exact" if exact else "mcnemar-chi2-cc")

    def test_no_discordant_pairs(self) -> None:
        assert mcnemar(0, 0) == (1.0, "mcnemar-exact")


class TestBootstrap:
    def test_ci_matches_plain_row_resampling(self) -> None:
        y, cand, cur = paired(2000, 0.9, 0.85)
        a, b = cand == y, cur == y
        lo, hi = bootstrap_difference_ci(a, b, n_resamples=4000, confidence=0.95, seed=1)
        rng = np.random.default_rng(2)
        idx = rng.integers(0, a.size, size=(4000, a.size))
        direct = a[idx].mean(axis=1) - b[idx].mean(axis=1)
        dlo, dhi = np.quantile(direct, [0.025, 0.975])
        assert lo == pytest.approx(dlo, abs=0.004)
        assert hi == pytest.approx(dhi, abs=0.004)
        assert lo < (a.mean() - b.mean()) < hi


class TestCompareOffline:
    def test_clearly_better_candidate_wins(self) -> None:
        y, cand, cur = paired(5000, 0.92, 0.80)
        result = compare_offline(y, cand, cur, SETTINGS)
        assert result.winner == "candidate" and result.significant and result.passed
        assert result.ci_low is not None and result.ci_low > 0
        assert result.test == "mcnemar-chi2-cc"
        assert result.n == 5000

    def test_clearly_worse_candidate_fails(self) -> None:
        y, cand, cur = paired(5000, 0.80, 0.92)
        result = compare_offline(y, cand, cur, SETTINGS)
        assert result.winner == "current" and not result.passed

    def test_equal_models_tie_and_pass_when_not_worse_is_enough(self) -> None:
        y, cand, _ = paired(3000, 0.9, 0.9)
        result = compare_offline(y, cand, cand.copy(), SETTINGS)
        assert result.winner == "tie" and not result.significant and result.passed
        assert result.p_value == 1.0

    def test_tie_fails_when_better_is_required(self) -> None:
        y, cand, _ = paired(3000, 0.9, 0.9)
        result = compare_offline(y, cand, cand.copy(), ABTestSettings(pass_if="better"))
        assert not result.passed

    def test_first_model_has_nothing_to_compare(self) -> None:
        y, cand, _ = paired(100, 0.9, 0.9)
        result = compare_offline(y, cand, None, SETTINGS)
        assert result.passed and result.current_accuracy is None
        assert "first model" in result.reasons[0]


class TestCompareOnline:
    def test_p_value_matches_statsmodels(self) -> None:
        result = compare_online(
            current_correct=4300,
            current_n=5000,
            candidate_correct=4420,
            candidate_n=5000,
            settings=SETTINGS,
        )
        _, expected = proportions_ztest([4420, 4300], [5000, 5000])
        assert result.p_value == pytest.approx(expected, rel=1e-9)
        assert result.winner == "candidate" and result.significant

    def test_sample_size_matches_statsmodels_power(self) -> None:
        n = required_sample_size(0.85, -0.02, alpha=0.05, power=0.8)
        h = proportion_effectsize(0.83, 0.85)
        expected = NormalIndPower().solve_power(effect_size=abs(h), alpha=0.05, power=0.8)
        assert n == int(np.ceil(expected))

    def test_refuses_a_winner_below_required_sample(self) -> None:
        result = compare_online(
            current_correct=80,
            current_n=100,
            candidate_correct=95,
            candidate_n=100,
            settings=SETTINGS,
        )
        assert result.winner == "inconclusive"
        assert not result.significant and not result.passed
        assert "NOT enough" in result.reasons[2]

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            pytest.param(
                {"current_correct": 5, "current_n": 4},
                "current: correct=5",
                id="more correct than outcomes",
            ),
            pytest.param({"current_correct": 0, "current_n": 0}, "at least one", id="empty arm"),
        ],
    )
    def test_bad_counts(self, kwargs: dict[str, int], fragment: str) -> None:
        args = {"candidate_correct": 1, "candidate_n": 2, **kwargs}
        with pytest.raises(ValueError, match=fragment):
            compare_online(settings=SETTINGS, **args)
