from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import f1_score, roc_auc_score

from retrain.config import EvaluationSettings
from retrain.evaluate import compute_metrics, gate, score_model
from retrain.train import build_pipeline
from tests.helpers import churn_config
from tools.synthetic import StreamSpec, generate_week

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

    @pytest.mark.parametrize("average", ["auto", "binary", "macro", "weighted"])
    @pytest.mark.parametrize(
        ("y", "pred", "labels"),
        [
            pytest.param([0, 1, 1, 0, 1, 1], [0, 1, 0, 0, 1, 1], [0, 1], id="binary"),
            pytest.param([0, 0, 0, 0], [0, 0, 0, 0], [0, 1], id="positive class never seen"),
            pytest.param(
                ["a", "b", "c", "c", "b", "a", "c"],
                ["a", "c", "c", "c", "b", "b", "a"],
                ["a", "b", "c"],
                id="three text classes",
            ),
            pytest.param([0, 1, 2, 2], [0, 1, 1, 1], [0, 1, 2, 3], id="a label nobody has"),
        ],
    )
    def test_averages_equal_sklearn_computing_them_directly(
        self, y: list[Any], pred: list[Any], labels: list[Any], average: str
    ) -> None:
        from sklearn.metrics import precision_recall_fscore_support

        mode = ("binary" if len(labels) == 2 else "macro") if average == "auto" else average
        if mode == "binary" and len(labels) != 2:
            with pytest.raises(ValueError, match="binary"):
                compute_metrics(np.array(y), np.array(pred), None, labels=labels, average=average)
            return
        scores = compute_metrics(np.array(y), np.array(pred), None, labels=labels, average=average)
        extra = {"pos_label": labels[-1]} if mode == "binary" else {}
        expected = precision_recall_fscore_support(
            y, pred, labels=labels, average=mode, zero_division=0, **extra
        )[:3]
        got = tuple(scores.metrics[k] for k in ("precision", "recall", "f1"))
        assert got == pytest.approx(expected, abs=1e-12)

    def test_multiclass_uses_macro_average(self) -> None:
        y = np.array([0, 1, 2, 2, 1, 0])
        pred = np.array([0, 2, 2, 2, 1, 0])
        scores = compute_metrics(y, pred, None, labels=[0, 1, 2])
        assert scores.metrics["f1"] == pytest.approx(f1_score(y, pred, average="macro"))
        assert "roc_auc" not in scores.metrics


ESTIMATORS = [
    ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 30}),
    ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 15}),
    ("sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 15}),
    ("sklearn.tree.DecisionTreeClassifier", {"max_depth": 6}),
    ("sklearn.linear_model.LogisticRegression", {}),  # asked predict() itself
]


class TestScoreModel:
    """Scoring returns exactly what ``model.predict`` returns, whichever way it gets there."""

    @pytest.mark.parametrize(("path", "params"), ESTIMATORS, ids=lambda v: str(v).split(".")[-1])
    def test_churn_binary(self, path: str, params: dict[str, Any]) -> None:
        config = churn_config(
            Path("/unused"), model={"estimator": {"class": path, "params": params}}
        )
        spec = StreamSpec(rows_per_week=1500, drift_week=None)
        train, test = generate_week(spec, 0), generate_week(spec, 1)
        features, target = config.model.features.all, config.model.target
        model = build_pipeline(config).fit(train[features], train[target])

        scores, predicted = score_model(
            model, test, features=features, target=target, labels=[0, 1]
        )
        np.testing.assert_array_equal(predicted, model.predict(test[features]))
        assert scores.metrics["accuracy"] == np.mean(predicted == test[target].to_numpy())
        assert "roc_auc" in scores.metrics

    @pytest.mark.parametrize(("path", "params"), ESTIMATORS, ids=lambda v: str(v).split(".")[-1])
    def test_multiclass_with_text_labels(self, path: str, params: dict[str, Any]) -> None:
        import importlib

        module, _, name = path.rpartition(".")
        x, y = make_classification(3000, n_features=6, n_informative=4, n_classes=3, random_state=0)
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
        frame["y"] = np.array(["low", "mid", "high"])[y]
        model = getattr(importlib.import_module(module), name)(**params, random_state=0)
        features = list(frame.columns[:6])
        model.fit(frame[features][:2000], frame["y"][:2000])
        test = frame[2000:]

        _, predicted = score_model(
            model, test, features=features, target="y", labels=["high", "low", "mid"]
        )
        np.testing.assert_array_equal(predicted, model.predict(test[features]))


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


class TestLeakageGuard:
    @staticmethod
    def frame(n: int = 2000) -> Any:
        import numpy as np
        import pandas as pd

        rng = np.random.default_rng(0)
        label = rng.integers(0, 2, n)
        return pd.DataFrame(
            {
                "copy": label.astype(float),
                "noise": rng.normal(size=n),
                "id": [f"u{i}" for i in range(n)],
                "segment": rng.choice(["a", "b"], n),
                "label": label,
            }
        )

    def test_a_copy_of_the_label_scores_one_and_nothing_else_does(self) -> None:
        from retrain.evaluate import single_feature_accuracy

        scores = single_feature_accuracy(self.frame(), ["copy", "noise", "id", "segment"], "label")
        assert scores["copy"] == 1.0
        assert max(scores["noise"], scores["id"], scores["segment"]) < 0.6, scores

    @pytest.mark.parametrize(
        ("settings", "expected"),
        [
            pytest.param({}, ["'copy' alone predicts", "beats production"], id="both found"),
            pytest.param(
                {"single_feature_accuracy": None, "max_metric_jump": None}, [], id="both off"
            ),
            pytest.param({"max_metric_jump": 0.5}, ["'copy' alone predicts"], id="a small jump"),
        ],
    )
    def test_suspicions(self, settings: dict[str, Any], expected: list[str]) -> None:
        from retrain.config import LeakageSettings
        from retrain.evaluate import suspicions

        found = suspicions(
            {"accuracy": 0.99},
            {"accuracy": 0.6},
            {"copy": 1.0, "noise": 0.51},
            LeakageSettings(**settings),
            compare=["accuracy"],
            target="label",
        )
        assert len(found) == len(expected)
        for text, fragment in zip(found, expected, strict=True):
            assert fragment in text


class TestGateWithTests:
    """A full rebuild's comprehensive tests are gate checks: any failing one fails the gate."""

    def test_a_failing_test_fails_a_gate_the_metrics_pass_and_names_itself(self) -> None:
        tests = [("robustness", True, "all ok"), ("slices", False, "worse: segment=x")]
        result = gate({"accuracy": 0.9}, {"accuracy": 0.88}, SETTINGS, tests=tests)
        assert not result.passed and result.status == "failed"
        assert "slices FAILED: worse: segment=x" in result.reasons
        assert {"check": "slices", "value": None, "passed": False} in result.checks

    def test_passing_tests_keep_a_passing_gate(self) -> None:
        result = gate({"accuracy": 0.9}, None, SETTINGS, tests=[("calibration", True, "ok")])
        assert result.passed and "calibration passed: ok" in result.reasons

    def test_a_forced_run_goes_through_and_says_so(self) -> None:
        result = gate(
            {"accuracy": 0.9},
            None,
            SETTINGS,
            tests=[("slices", False, "worse")],
            force=True,
            force_reason="incident 42",
        )
        assert result.passed and result.status == "forced"
