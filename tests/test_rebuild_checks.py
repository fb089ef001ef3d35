"""Tests of retrain.rebuild_checks: the full rebuild's comprehensive tests on generated data."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from retrain.errors import DataError
from retrain.rebuild_checks import (
    calibration,
    cross_validated,
    latency_and_size,
    robustness,
    slice_report,
)
from retrain.serialization import dumps_trusted, skops_io

FEATURES = ["x1", "x2", "segment"]


def segment_frame(n: int, seed: int, *, share_c: float = 0.08, noise: float = 0.05) -> pd.DataFrame:
    """``y = x1 + x2/2 > 0`` with ``noise`` of the labels flipped, except in the rare segment
    ``c`` where the relationship is reversed."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    segment = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.5 - share_c, share_c])
    positive = (x1 + 0.5 * x2 > 0) ^ (segment == "c") ^ (rng.random(n) < noise)
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "segment": segment, "y": np.where(positive, "yes", "no")}
    )


def segment_pipeline(numeric: list[str], estimator: Any, *, unknown: str = "ignore") -> Pipeline:
    """Imputation for every column, one-hot ``segment`` (``handle_unknown=unknown``)."""
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="__missing__"),
        OneHotEncoder(handle_unknown=unknown),
    )
    preprocess = ColumnTransformer(
        [("num", SimpleImputer(), numeric), ("cat", categorical, ["segment"])]
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def slice_regression() -> tuple[Pipeline, Pipeline, pd.DataFrame]:
    """(candidate, production, evaluation frame): production sees only ``x1`` but learnt the
    reversed segment ``c``; the candidate uses both numbers (better overall) but never saw ``c``
    (it was trained without it), so it gets ``c`` almost always wrong."""
    train = segment_frame(3000, 1)
    production = segment_pipeline(["x1"], DecisionTreeClassifier(max_depth=4, random_state=0))
    production.fit(train[FEATURES], train["y"])
    without_c = train[train["segment"] != "c"]
    candidate = segment_pipeline(["x1", "x2"], LogisticRegression())
    candidate.fit(without_c[FEATURES], without_c["y"])
    return candidate, production, segment_frame(3000, 2)


def logistic_frame(n: int, seed: int) -> pd.DataFrame:
    """``P(y = yes) = sigmoid(2 x1 + x2)``: a logistic regression is well calibrated on it."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    positive = rng.random(n) < 1 / (1 + np.exp(-(2 * x1 + x2)))
    return pd.DataFrame({"x1": x1, "x2": x2, "y": np.where(positive, "yes", "no")})


def noisy_threshold(n: int, seed: int) -> pd.DataFrame:
    """``y = x1 > 0`` with 10% of the labels flipped: the best accuracy is exactly 0.9."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": ((x1 > 0) ^ (rng.random(n) < 0.1)).astype(int)})


@pytest.fixture(scope="module")
def threshold_models() -> tuple[DecisionTreeClassifier, Pipeline]:
    """(a stump fitted on much data: accuracy ~0.9, a model of the noise feature: ~0.5)."""
    big = noisy_threshold(20_000, 999)
    good = DecisionTreeClassifier(max_depth=1).fit(big[["x1", "x2"]], big["y"])
    noise_only = ColumnTransformer([("x2", "passthrough", ["x2"])])
    weak = Pipeline([("pick", noise_only), ("model", LogisticRegression())])
    return good, weak.fit(big[["x1", "x2"]], big["y"])


class TestCrossValidated:
    def test_intervals_contain_the_true_accuracy(
        self, threshold_models: tuple[DecisionTreeClassifier, Pipeline]
    ) -> None:
        good, _ = threshold_models
        covered = np.zeros(2)
        seeds = range(20)
        for seed in seeds:
            result = cross_validated(
                DecisionTreeClassifier(max_depth=1), good, noisy_threshold(600, seed), "y",
                metrics=("accuracy",), folds=5, seed=seed,
            )  # fmt: skip
            accuracy = result.metric("accuracy")
            covered += [accuracy.candidate.contains(0.9), accuracy.production.contains(0.9)]
            assert accuracy.difference.contains(0.0)  # the same rule: no difference
            assert result.passed
        assert (covered / len(seeds) >= 0.8).all()  # nominal 95%; 0.98 and 0.94 over 100 seeds

    def test_a_clearly_better_candidate_has_a_difference_above_zero(
        self, threshold_models: tuple[DecisionTreeClassifier, Pipeline]
    ) -> None:
        _, weak = threshold_models
        result = cross_validated(
            lambda: DecisionTreeClassifier(max_depth=1), weak, noisy_threshold(600, 0), "y",
            folds=3, seed=0,
        )  # fmt: skip
        assert [m.metric for m in result.metrics] == ["accuracy", "f1_macro"]
        for metric in result.metrics:
            assert metric.difference.low > 0
            assert len(metric.candidate_folds) == len(metric.production_folds) == 3
        assert result.passed
        name, passed, detail = result.checklist_item()
        assert (name, passed) == ("cross_validated", True)
        assert "3-fold CV on 600 rows" in detail

    def test_a_clearly_worse_candidate_fails(
        self, threshold_models: tuple[DecisionTreeClassifier, Pipeline]
    ) -> None:
        good, _ = threshold_models
        noise_only = ColumnTransformer([("x2", "passthrough", ["x2"])])
        worse = Pipeline([("pick", noise_only), ("model", LogisticRegression())])
        result = cross_validated(worse, good, noisy_threshold(600, 0), "y", folds=3)
        assert result.metric("accuracy").difference.high < 0
        assert not result.passed
        assert result.checklist_item()[1] is False

    def test_production_is_scored_on_the_same_folds_without_refitting(
        self, threshold_models: tuple[DecisionTreeClassifier, Pipeline]
    ) -> None:
        good, _ = threshold_models
        frame = noisy_threshold(600, 3)  # 5 folds of exactly 120 rows
        before = good.tree_.threshold.copy()
        result = cross_validated(DecisionTreeClassifier(max_depth=1), good, frame, "y")
        overall = (good.predict(frame[["x1", "x2"]]) == frame["y"]).mean()
        assert result.metric("accuracy").production.mean == pytest.approx(overall)
        assert np.array_equal(good.tree_.threshold, before)
        assert json.loads(json.dumps(result.to_dict()))["folds"] == 5

    def test_fewer_than_two_folds_is_refused(self) -> None:
        with pytest.raises(DataError, match="folds must be at least 2"):
            cross_validated(DummyClassifier(), DummyClassifier(), noisy_threshold(50, 0), "y",
                            folds=1)  # fmt: skip


@pytest.fixture(scope="module")
def models() -> tuple[Pipeline, Pipeline, pd.DataFrame]:
    return slice_regression()


class TestSliceReport:
    def test_a_slice_regression_the_overall_metric_hides_is_named(
        self, models: tuple[Pipeline, Pipeline, pd.DataFrame]
    ) -> None:
        candidate, production, frame = models
        result = slice_report(
            candidate, production, frame, "y", categorical=["segment"], numeric=["x2"], bins=4
        )
        assert result.candidate_accuracy > result.production_accuracy + 0.03
        assert not result.passed
        assert [s.name for s in result.regressions if s.feature == "segment"] == ["segment=c"]
        c = next(s for s in result.slices if s.name == "segment=c")
        assert c.judged and c.rows >= 200
        assert c.production_accuracy - c.candidate_accuracy > 0.5
        name, passed, detail = result.checklist_item()
        assert (name, passed) == ("slices", False)
        assert "segment=c (" in detail
        assert json.loads(json.dumps(result.to_dict()))["regressions"][0] == "segment=c"

    def test_slices_below_min_rows_are_shown_but_not_judged(
        self, models: tuple[Pipeline, Pipeline, pd.DataFrame]
    ) -> None:
        candidate, production, frame = models
        result = slice_report(
            candidate, production, frame, "y", categorical=["segment"], min_slice_rows=1000
        )
        assert [(s.name, s.judged) for s in result.slices] == [
            ("segment=a", True), ("segment=b", True), ("segment=c", False),
        ]  # fmt: skip
        assert result.passed
        assert result.checklist_item()[1] is True

    def test_numeric_slices_are_quantile_bins_and_missing_values(self) -> None:
        x = np.concatenate([np.arange(1001.0), np.full(10, np.nan)])
        frame = pd.DataFrame({"x": x, "y": ["no"] * len(x)})
        model = DummyClassifier(strategy="constant", constant="no")
        model.fit(frame[["x"]], frame["y"])
        result = slice_report(model, model, frame, "y", numeric=["x"], bins=4)
        assert [(s.name, s.rows) for s in result.slices] == [
            ("x in [0, 250)", 250), ("x in [250, 500)", 250), ("x in [500, 750)", 250),
            ("x in [750, 1000]", 251), ("x is missing", 10),
        ]  # fmt: skip
        assert all(s.difference == 0 for s in result.slices)
        assert result.passed


class TestCalibration:
    def test_an_overconfident_model_has_the_higher_ece(self) -> None:
        train, test = logistic_frame(2000, 3), logistic_frame(2000, 4)
        numbers = ["x1", "x2"]
        calibrated = make_pipeline(
            ColumnTransformer([("num", "passthrough", numbers)]), LogisticRegression()
        ).fit(train[numbers], train["y"])
        # naive Bayes on ten copies of each feature counts every piece of evidence ten times
        tenfold = FunctionTransformer(np.tile, kw_args={"reps": (1, 10)})
        overconfident = make_pipeline(tenfold, GaussianNB()).fit(train[numbers], train["y"])
        result = calibration(overconfident, calibrated, test, "y", features=numbers)
        assert result.candidate.ece > result.production.ece + 0.05
        assert result.candidate.brier > result.production.brier
        assert not result.passed
        assert result.event == "P(y=yes)"
        positive = calibrated.predict_proba(test[numbers])[:, 1]
        expected = brier_score_loss(test["y"] == "yes", positive)
        assert result.production.brier == pytest.approx(expected)
        for model in (result.candidate, result.production):
            assert sum(model.counts) == len(test)
            assert len(model.counts) == len(model.mean_predicted) == len(model.observed)
        name, passed, detail = result.checklist_item()
        assert (name, passed) == ("calibration", False)
        assert f"ECE candidate {result.candidate.ece:.4f}" in detail

    def test_several_classes_use_the_top_label_confidence(self) -> None:
        rng = np.random.default_rng(5)
        x = rng.normal(size=(600, 2))
        frame = pd.DataFrame(x, columns=["a", "b"]).assign(y=np.argmax(np.c_[x, -x.sum(1)], 1))
        model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
        result = calibration(model, model, frame, "y", bins=5)
        assert result.event == "top-label confidence"
        assert result.candidate == result.production
        assert result.passed


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return segment_frame(500, 6)


class TestRobustness:
    def fitted(self, train: pd.DataFrame, **options: Any) -> Pipeline:
        model = segment_pipeline(["x1", "x2"], LogisticRegression(), **options)
        return model.fit(train[FEATURES], train["y"])

    def test_a_model_that_crashes_on_an_unseen_category_fails_naming_it(
        self, train: pd.DataFrame
    ) -> None:
        result = robustness(self.fitted(train, unknown="error"), train, FEATURES, ["no", "yes"])
        assert not result.passed
        failed = {(p.perturbation, p.column): p for p in result.failures}
        unseen = failed[("unseen_category", "segment")]
        assert unseen.error is not None
        assert unseen.error.startswith("ValueError: Found unknown categories")
        name, passed, detail = result.checklist_item()
        assert (name, passed) == ("robustness", False)
        assert "unseen_category in segment ('__unseen_category__'): ValueError" in detail

    def test_a_model_that_ignores_unknown_categories_passes_every_perturbation(
        self, train: pd.DataFrame
    ) -> None:
        result = robustness(self.fitted(train), train, FEATURES, ["no", "yes"], rows=20)
        assert result.passed, result.checklist_item()
        assert result.rows == 20
        assert [p.name for p in result.perturbations] == [
            "baseline", "missing in x1", "missing in x2", "missing in segment",
            "unseen_category in segment ('__unseen_category__')", "reordered_columns",
            "extreme_value in x1 (1e+12)", "extreme_value in x1 (-1e+12)",
            "extreme_value in x2 (1e+12)", "extreme_value in x2 (-1e+12)",
        ]  # fmt: skip
        assert json.loads(json.dumps(result.to_dict()))["passed"] is True

    def test_missing_values_without_imputation_fail(self, train: pd.DataFrame) -> None:
        numbers = ["x1", "x2"]
        model = LogisticRegression().fit(train[numbers], train["y"])
        result = robustness(model, train, numbers, ["no", "yes"])
        assert {(p.perturbation, p.column) for p in result.failures} == {
            ("missing", "x1"), ("missing", "x2"), ("reordered_columns", None),
        }  # fmt: skip
        assert all(p.error and p.error.startswith("ValueError") for p in result.failures)

    def test_a_model_that_reads_columns_by_position_fails_on_reordering(
        self, train: pd.DataFrame
    ) -> None:
        numbers = ["x1", "x2"]
        by_position = make_pipeline(SimpleImputer(), LogisticRegression())
        by_position.fit(train[numbers].to_numpy(), train["y"])
        result = robustness(by_position, train, numbers, ["no", "yes"])
        assert [(p.name, p.error) for p in result.failures] == [
            ("reordered_columns", "predictions changed with the column order")
        ]

    def test_predictions_outside_the_declared_classes_fail(self, train: pd.DataFrame) -> None:
        result = robustness(self.fitted(train), train, FEATURES, ["no"])
        assert not result.passed
        assert all("outside the declared classes: yes" in (p.error or "") for p in result.failures)


class TestLatencyAndSize:
    def test_figures_are_positive_and_the_size_is_the_skops_size(
        self, models: tuple[Pipeline, Pipeline, pd.DataFrame]
    ) -> None:
        candidate, production, frame = models
        result = latency_and_size(candidate, production, frame, features=FEATURES, rows=200,
                                  repeats=3)  # fmt: skip
        for model, cost in ((candidate, result.candidate), (production, result.production)):
            assert cost.seconds_per_row > 0
            assert cost.single_row_seconds > 0
            assert cost.size_bytes == len(dumps_trusted(model)[0])
            assert cost.size_bytes == len(skops_io().dumps(model))
        assert result.rows == 200
        assert result.latency_ratio > 0 and result.size_ratio > 0
        name, _, detail = result.checklist_item()
        assert name == "latency_and_size"
        assert f"size {result.candidate.size_bytes} vs {result.production.size_bytes}" in detail

    def test_a_much_larger_model_fails_the_size_ratio(self) -> None:
        frame = noisy_threshold(300, 0)
        x = frame[["x1", "x2"]]
        forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, frame["y"])
        stump = DecisionTreeClassifier(max_depth=1).fit(x, frame["y"])
        result = latency_and_size(forest, stump, x, rows=50, repeats=1, max_latency_ratio=1e9)
        assert result.size_ratio > 2
        assert not result.passed

    def test_no_rows_is_refused(self) -> None:
        frame = noisy_threshold(10, 0)[["x1"]].head(0)
        with pytest.raises(DataError, match="at least one row"):
            latency_and_size(DummyClassifier(), DummyClassifier(), frame)


def test_the_checks_import_no_presentation_and_no_services() -> None:
    path = Path(__file__).resolve().parents[1] / "retrain" / "rebuild_checks.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    forbidden = ("matplotlib", "retrain.reports", "mlflow", "airflow", "pickle")
    assert not [name for name in imported if name.startswith(forbidden)]
