from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from retrain.config import EvaluationSettings
from retrain.evaluate import compute_metrics, gate

SETTINGS = EvaluationSettings()


class TestComputeMetrics:
    def test_binary_metrics_match_sklearn(self) -> None:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 500)
        score = np.clip(y * 0.6 + rng.random(500) * 0.5, 0, 1)
        pred = (score > 0.5).astype(int)
        scores = compute_metrics(y, pred, np.column_stack([1 - score, score]), labels=[0, 1])
        assert scores.metrics["f1"] == pytest.approx(f1_score(y, pred))
        assert scores.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, score))
        assert sum(map(sum, scores.confusion_matrix)) == 500
        assert set(scores.per_class) == {"0", "1"}

    def test_multiclass_uses_macro_average(self) -> None:
        y = np.array([0, 1, 2, 2, 1, 0])
        pred = np.array([0, 2, 2, 2, 1, 0])
        scores = compute_metrics(y, pred, None, labels=[0, 1, 2])
        assert scores.metrics["f1"] == pytest.approx(f1_score(y, pred, average="macro"))
        assert "roc_auc" not in scores.metrics


class TestGate:
    @pytest.mark.parametrize(
        ("candidate", "baseline", "passed"),
        [
            pytest.param({"accuracy": 0.90}, None, True, id="first model above threshold"),
            pytest.param({"accuracy": 0.84}, None, False, id="first model below threshold"),
            pytest.param(
                {"accuracy": 0.90},
                {"accuracy": 0.905},
                True,
                id="slightly worse than production within margin",
            ),
            pytest.param(
                {"accuracy": 0.90},
                {"accuracy": 0.93},
                False,
                id="worse than production beyond margin",
            ),
            pytest.param(
                {"accuracy": 0.84},
                {"accuracy": 0.70},
                False,
                id="better than production but below threshold",
            ),
            pytest.param({}, None, False, id="metric missing"),
        ],
    )
    def test_threshold_and_non_inferiority(
        self, candidate: dict[str, float], baseline: dict[str, float] | None, passed: bool
    ) -> None:
        result = gate(candidate, baseline, SETTINGS)
        assert result.passed is passed
        assert result.status == ("passed" if passed else "failed")
        assert result.reasons

    def test_reasons_are_readable(self) -> None:
        result = gate({"accuracy": 0.9}, {"accuracy": 0.93}, SETTINGS)
        assert "accuracy 0.9000 >= threshold 0.85" in result.reasons
        assert any("worse than non-inferiority margin 0.01" in r for r in result.reasons)

    def test_forced_promotion_is_recorded(self) -> None:
        result = gate({"accuracy": 0.5}, None, SETTINGS, force=True, force_reason="hotfix")
        assert result.passed and result.forced and result.status == "forced"
        assert result.reasons[-1] == "FORCED despite failing checks: hotfix"

    def test_force_needs_reason(self) -> None:
        with pytest.raises(ValueError, match="needs a reason"):
            gate({"accuracy": 0.5}, None, SETTINGS, force=True)
