"""The full rebuild's hyperparameter search (``model.search``, :mod:`retrain.search`).

Real scikit-learn searches over the unfitted pipeline of :func:`retrain.train.build_pipeline`.
The data: a small generated set a logistic regression separates well once it is not starved of
capacity. Configured with ``C=1e-4`` it predicts the majority class (accuracy 0.75); any ``C``
from about 0.1 up scores above 0.9.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.utils.validation import check_is_fitted

from retrain.config import RetrainConfig, load_config
from retrain.config.schema import ParamRange, SearchSettings
from retrain.errors import ConfigError, DataError
from retrain.search import prefixed, scorer_name, search, search_space
from retrain.train import build_pipeline, load_trained, time_split, train
from tests.helpers import LOGREG, churn_config, write_config

FEATURES = {"numeric": ["x1", "x2", "x3"], "categorical": ["segment"]}
LOG_C = {"distribution": "loguniform", "low": 1e-3, "high": 100}
SEED = 42  # model.random_state's default: the search's folds and sampling
TREE = "sklearn.tree.DecisionTreeClassifier"

Space = dict[str, list[Any] | ParamRange]


def make_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """``n`` hourly events, a quarter of them labelled 1 by a noisy linear rule."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=(3, n))
    segment = rng.choice(["a", "b", "c"], size=n)
    logit = 3 * x1 - 2 * x2 + 0.5 * x3 + np.where(segment == "a", 1.5, 0.0) - 3.0
    label = (logit + 0.5 * rng.logistic(size=n) > 0).astype(int)
    times = pd.date_range("2026-01-05", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {"event_time": times, "x1": x1, "x2": x2, "x3": x3, "segment": segment, "label": label}
    )


FRAME = make_frame()


def config(
    *,
    params: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
    estimator: str = LOGREG,
    features: dict[str, list[str]] | None = None,
) -> RetrainConfig:
    """A config for :data:`FRAME`: ``estimator`` with ``params`` (default ``C=1e-4``)."""
    model: dict[str, Any] = {
        "target": "label",
        "features": FEATURES if features is None else features,
        "estimator": {"class": estimator, "params": {"C": 1e-4} if params is None else params},
    }
    if search is not None:
        model["search"] = search
    return churn_config(Path("/unused"), model=model)


def xy(cfg: RetrainConfig, frame: pd.DataFrame = FRAME) -> tuple[pd.DataFrame, pd.Series]:
    return frame[cfg.model.features.all], frame[cfg.model.target]


def fold_score(cfg: RetrainConfig, params: dict[str, Any], x: pd.DataFrame, y: pd.Series) -> float:
    """Mean CV accuracy of the config's pipeline with ``params`` on the search's folds."""
    folds = StratifiedKFold(3, shuffle=True, random_state=SEED)
    pipeline = build_pipeline(cfg).set_params(**prefixed(params))
    return float(np.mean(cross_val_score(pipeline, x, y, cv=folds, scoring="accuracy")))


IMPROVING = [
    pytest.param({"method": "random", "space": {"C": LOG_C}, "budget": 4}, id="random"),
    pytest.param(
        {"method": "halving_random", "space": {"C": LOG_C}, "budget": 4}, id="halving_random"
    ),
    pytest.param({"method": "grid", "space": {"C": [1e-3, 0.1, 10.0]}, "budget": 3}, id="grid"),
]


class TestSearchImproves:
    @pytest.mark.parametrize("settings", IMPROVING)
    def test_the_rebuild_fits_the_better_parameters_it_found(
        self, settings: dict[str, Any], tmp_path: Path
    ) -> None:
        cfg = config(search=settings)
        result = train(cfg, FRAME, out_dir=tmp_path / "tuned", tune=True)

        found = result.search
        assert found is not None, "tune=True with model.search: the search ran"
        assert found.method == settings["method"]
        assert found.chosen == "search", found.summary()
        assert found.best_score > found.configured_score
        assert found.configured_params == {"C": 1e-4}
        assert found.configured_score == pytest.approx(0.75, abs=0.02), "the majority class"
        assert found.best_score > 0.9
        assert found.improvement == pytest.approx(found.best_score - found.configured_score)
        best_c = found.best_params["C"]
        assert isinstance(best_c, float) and 1e-3 <= best_c <= 100
        assert found.chosen_params == {"C": best_c}
        # what was fitted and written is the search's choice, not the config's
        assert result.params["C"] == best_c
        assert load_trained(result).named_steps["model"].get_params()["C"] == best_c
        assert "chosen" in found.summary() and "kept" not in found.summary()
        assert found.candidates == settings["budget"]
        if settings["method"] != "halving_random":  # each candidate and the config, 3 folds each
            assert found.fits == (found.candidates + 1) * 3
        assert json.loads(json.dumps(result.to_dict()))["search"]["best_params"] == {"C": best_c}

        # and it predicts the newest rows, which neither saw, better than the configured one
        untuned = train(cfg, FRAME, out_dir=tmp_path / "untuned", tune=False)
        holdout = pd.read_parquet(result.holdout_path)
        x, y = xy(cfg, holdout)
        tuned_accuracy = (load_trained(result).predict(x) == y).mean()
        untuned_accuracy = (load_trained(untuned).predict(x) == y).mean()
        assert tuned_accuracy > untuned_accuracy + 0.1, (tuned_accuracy, untuned_accuracy)

        if settings["method"] == "grid":
            return
        # the two scores are paired: each cross-validated on the same stratified folds of the
        # rows before the holdout (halving re-scores its winner there), so scoring them again
        # that way gives the same numbers
        older, _ = time_split(FRAME, "event_time", cfg.data.holdout_fraction)
        x, y = xy(cfg, older)
        assert found.configured_score == pytest.approx(fold_score(cfg, {"C": 1e-4}, x, y), abs=1e-6)
        assert found.best_score == pytest.approx(fold_score(cfg, found.best_params, x, y), abs=1e-6)


class TestConfiguredKept:
    def test_a_space_of_worse_values_keeps_the_configured_parameters(self, tmp_path: Path) -> None:
        cfg = config(
            params={"C": 1.0},
            search={"method": "grid", "space": {"C": [1e-6, 1e-5]}, "budget": 2},
        )
        result = train(cfg, FRAME, out_dir=tmp_path, tune=True)

        found = result.search
        assert found is not None
        assert found.chosen == "configured", found.summary()
        assert found.best_params["C"] in (1e-6, 1e-5), "the best of the space is still reported"
        assert found.best_score < found.configured_score and found.improvement < 0
        assert found.chosen_params == {}
        assert result.params["C"] == 1.0
        assert load_trained(result).named_steps["model"].C == 1.0
        assert "the configured parameters kept" in found.summary()

    def test_a_tie_keeps_the_configured_parameters(self) -> None:
        """Only a strictly higher score replaces the config's parameters: every C this small
        predicts the majority class, so every candidate ties with the configured one."""
        cfg = config(params={"C": 1e-6})
        settings = SearchSettings(method="grid", space={"C": [1e-7, 1e-8]}, budget=2)
        found = search(build_pipeline(cfg), *xy(cfg), settings, seed=SEED)
        assert found.best_score == found.configured_score
        assert found.chosen == "configured"
        assert found.chosen_params == {}

    def test_the_pipeline_searched_is_neither_fitted_nor_changed(self) -> None:
        cfg = config()
        pipeline = build_pipeline(cfg)
        settings = SearchSettings(method="grid", space={"C": [10.0]}, budget=1)
        found = search(pipeline, *xy(cfg), settings, seed=SEED)
        assert found.chosen == "search" and found.candidates == 1
        assert pipeline.named_steps["model"].C == 1e-4
        with pytest.raises(NotFittedError):
            check_is_fitted(pipeline.named_steps["model"])


class TestWeekly:
    def test_tune_false_runs_no_search_even_with_model_search_set(self, tmp_path: Path) -> None:
        cfg = config(search={"method": "grid", "space": {"C": [10.0]}, "budget": 1})
        weekly = train(cfg, FRAME, out_dir=tmp_path / "weekly", tune=False)
        assert weekly.search is None
        assert weekly.params["C"] == 1e-4
        assert load_trained(weekly).named_steps["model"].C == 1e-4
        default = train(cfg, FRAME, out_dir=tmp_path / "default")
        assert default.search is None, "tune defaults to False: only the full rebuild tunes"

    def test_tune_without_model_search_fits_the_configured_parameters(self, tmp_path: Path) -> None:
        result = train(config(), FRAME, out_dir=tmp_path, tune=True)
        assert result.search is None
        assert result.params["C"] == 1e-4


class TestSearchSpace:
    def test_lists_and_ranges_become_model_step_parameters(self) -> None:
        space: Space = {
            "C": ParamRange(distribution="loguniform", low=0.01, high=10),
            "tol": [1e-4, 1e-3],
        }
        got = search_space(space, LogisticRegression())
        assert set(got) == {"model__C", "model__tol"}
        assert got["model__tol"] == [1e-4, 1e-3]
        draws = got["model__C"].rvs(size=2000, random_state=0)
        assert draws.min() >= 0.01 and draws.max() <= 10
        # log-uniform: as many draws below the geometric middle (~0.316) as above it
        assert 0.45 < np.mean(draws < np.sqrt(0.01 * 10)) < 0.55

    def test_a_uniform_range_spans_low_to_high(self) -> None:
        space = {"tol": ParamRange(distribution="uniform", low=0.2, high=0.5)}
        draws = search_space(space, LogisticRegression())["model__tol"].rvs(
            size=2000, random_state=0
        )
        assert draws.min() >= 0.2 and draws.max() <= 0.5
        assert draws.min() < 0.21 and draws.max() > 0.49

    def test_a_randint_range_includes_high(self) -> None:
        space = {"max_depth": ParamRange(distribution="randint", low=3, high=5)}
        dist = search_space(space, HistGradientBoostingClassifier())["model__max_depth"]
        draws = dist.rvs(size=500, random_state=0)
        assert set(draws.tolist()) == {3, 4, 5}
        assert dist.support() == (3, 5)

    def test_an_unknown_parameter_is_named(self) -> None:
        space: Space = {"C": [1.0], "alpha": [0.1], "bogus": [1]}
        with pytest.raises(ConfigError) as caught:
            search_space(space, LogisticRegression())
        problems = caught.value.problems
        assert [p.partition(":")[0] for p in problems] == [
            "model.search.space.alpha",
            "model.search.space.bogus",
        ]
        assert "not a parameter of LogisticRegression (it takes: C, " in problems[0]

    @pytest.mark.parametrize(
        ("estimator", "space", "fragment"),
        [
            pytest.param(
                HistGradientBoostingClassifier(),
                {"max_depth": [3, -1]},
                r"model\.search\.space\.max_depth: -1 is refused: "
                r"HistGradientBoostingClassifier must be an int in the range \[1, inf\) or None",
                id="a listed value",
            ),
            pytest.param(
                LogisticRegression(),
                {"C": ParamRange(distribution="uniform", low=0, high=1)},
                r"model\.search\.space\.C: 0\.0 is refused: LogisticRegression must be a float "
                r"in the range \(0\.0, inf\]",
                id="the low end of a range",
            ),
            pytest.param(
                HistGradientBoostingClassifier(),
                {"max_depth": ParamRange(distribution="randint", low=0, high=4)},
                r"model\.search\.space\.max_depth: 0 is refused",
                id="the low end of a randint range",
            ),
        ],
    )
    def test_a_value_the_estimator_refuses_is_named(
        self, estimator: Any, space: dict[str, Any], fragment: str
    ) -> None:
        with pytest.raises(ConfigError, match=fragment) as caught:
            search_space(space, estimator)
        assert len(caught.value.problems) == 1, caught.value.problems

    def test_a_range_the_estimator_takes_end_to_end_is_accepted(self) -> None:
        space: Space = {
            "learning_rate": ParamRange(distribution="uniform", low=0.1, high=2),
            "max_depth": [None, 3],
        }
        got = search_space(space, HistGradientBoostingClassifier())
        assert set(got) == {"model__learning_rate", "model__max_depth"}

    def test_build_pipeline_refuses_a_bad_space_naming_the_config_file(
        self, tmp_path: Path
    ) -> None:
        bad = config(search={"method": "random", "space": {"C": LOG_C, "bogus": [1, 2]}})
        path = write_config(bad, tmp_path / "retraining.yaml")
        loaded = load_config(path)  # the space is checked against the class, not at load
        with pytest.raises(ConfigError) as caught:
            build_pipeline(loaded)
        assert caught.value.source == str(path)
        assert str(path) in str(caught.value)
        [problem] = caught.value.problems
        assert problem.startswith("model.search.space.bogus: not a parameter of")
        # a weekly run builds the same pipeline: the bad space is found before any fit
        with pytest.raises(ConfigError, match=r"model\.search\.space\.bogus"):
            train(loaded, FRAME, out_dir=tmp_path / "out", tune=False)
        assert not (tmp_path / "out" / "model.skops").exists()

    def test_a_refused_value_in_a_hist_gradient_boosting_space_names_the_file(
        self, tmp_path: Path
    ) -> None:
        bad = config(
            estimator="sklearn.ensemble.HistGradientBoostingClassifier",
            params={"max_iter": 10},
            search={"method": "grid", "space": {"max_depth": [2, -1]}, "budget": 2},
        )
        path = write_config(bad, tmp_path / "retraining.yaml")
        with pytest.raises(ConfigError) as caught:
            build_pipeline(load_config(path))
        assert str(path) in str(caught.value)
        assert "model.search.space.max_depth: -1 is refused" in str(caught.value)

    def test_without_a_source_file_the_error_has_no_source(self) -> None:
        bad = config(search={"method": "grid", "space": {"bogus": [1]}, "budget": 1})
        with pytest.raises(ConfigError, match=r"model\.search\.space\.bogus") as caught:
            build_pipeline(bad)
        assert caught.value.source is None


class TestScorerName:
    @pytest.mark.parametrize(
        ("metric", "average", "n_classes", "expected"),
        [
            ("accuracy", "auto", 2, "accuracy"),
            ("accuracy", "macro", 3, "accuracy"),
            ("accuracy", "weighted", 2, "accuracy"),
            ("f1", "auto", 2, "f1"),
            ("f1", "auto", 3, "f1_macro"),
            ("f1", "weighted", 2, "f1_weighted"),
            ("f1", "weighted", 4, "f1_weighted"),
            ("precision", "auto", 2, "precision"),
            ("precision", "macro", 2, "precision_macro"),
            ("recall", "binary", 2, "recall"),
            ("recall", "auto", 5, "recall_macro"),
            ("roc_auc", "auto", 2, "roc_auc"),
            ("roc_auc", "macro", 2, "roc_auc"),
            ("roc_auc", "auto", 3, "roc_auc_ovr"),
            ("roc_auc", "weighted", 3, "roc_auc_ovr"),
        ],
    )
    def test_the_scikit_learn_scorer_for_a_metric_and_average(
        self, metric: str, average: str, n_classes: int, expected: str
    ) -> None:
        name = scorer_name(metric, average, n_classes)
        assert name == expected
        assert get_scorer(name) is not None, "a scorer scikit-learn knows"

    def test_a_multiclass_search_scores_with_the_macro_scorer(self) -> None:
        rng = np.random.default_rng(1)
        x = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
        y = pd.Series(np.digitize(x["a"] + 0.3 * rng.normal(size=300), [-0.5, 0.5]))
        pipeline = build_pipeline(config(features={"numeric": ["a", "b"]}))
        settings = SearchSettings(method="grid", space={"C": [10.0]}, budget=1, scoring="f1")
        found = search(pipeline, x, y, settings, seed=SEED)
        assert found.scoring == "f1_macro"
        assert found.chosen == "search"
        assert found.best_score > found.configured_score + 0.3


class TestHalving:
    def test_budget_is_the_first_rounds_candidates(self) -> None:
        cfg = config(
            estimator=TREE,
            params={"max_depth": 1},
            features={"numeric": ["x1", "x2", "x3"]},
        )
        settings = SearchSettings(
            method="halving_random",
            space={"max_depth": ParamRange(distribution="randint", low=2, high=8)},
            budget=20,
            cv_folds=2,
        )
        found = search(build_pipeline(cfg), *xy(cfg), settings, seed=SEED)
        assert found.candidates == 20
        assert found.cv_folds == 2
        # 20 candidates, then the best third of them (and so on), each on 2 folds; plus the
        # winner and the configured parameters re-scored on the full folds
        assert found.fits > 2 * 20 + 2 * 2
        assert 2 <= found.best_params["max_depth"] <= 8
        assert isinstance(found.best_params["max_depth"], int), "a Python int (JSON)"
        assert found.summary().startswith("halving_random search of 20 candidates")
        assert found.to_dict()["candidates"] == 20


class TestSearchRuns:
    def test_a_single_class_label_is_a_data_error(self) -> None:
        cfg = config()
        x, y = xy(cfg)
        settings = SearchSettings(method="grid", space={"C": [1.0]}, budget=1)
        with pytest.raises(DataError, match="needs two classes or more"):
            search(build_pipeline(cfg), x, pd.Series(np.zeros(len(y), dtype=int)), settings, seed=1)

    def test_the_same_seed_finds_the_same_parameters(self) -> None:
        cfg = config(estimator=TREE, params={}, features={"numeric": ["x1", "x2", "x3"]})
        leaf = ParamRange(distribution="uniform", low=0.01, high=0.2)
        settings = SearchSettings(method="random", space={"min_samples_leaf": leaf}, budget=3)
        a = search(build_pipeline(cfg), *xy(cfg), settings, seed=7)
        b = search(build_pipeline(cfg), *xy(cfg), settings, seed=7)
        c = search(build_pipeline(cfg), *xy(cfg), settings, seed=8)
        assert a.best_params == b.best_params and a.best_score == b.best_score
        assert c.best_params != a.best_params, "another seed draws other candidates"


class TestPositiveClass:
    """Two classes: precision, recall and F1 are of the last class in sorted order, as the
    evaluation scores them, whatever the labels are (scikit-learn's named scorers assume 1)."""

    @pytest.mark.parametrize(
        ("labels", "positive"),
        [
            pytest.param({0: "no", 1: "yes"}, "yes", id="string labels"),
            pytest.param({0: 2, 1: 1}, 2, id="1 is the negative class"),
        ],
    )
    def test_the_search_scores_f1_of_the_last_class(
        self, labels: dict[int, Any], positive: Any
    ) -> None:
        from sklearn.metrics import f1_score

        frame = FRAME.assign(label=FRAME["label"].map(labels))
        cfg = config(search={"method": "grid", "space": {"C": [0.1, 10.0]}, "scoring": "f1"})
        x, y = xy(cfg, frame)
        assert cfg.model.search is not None
        found = search(build_pipeline(cfg), x, y, cfg.model.search, seed=SEED)
        assert f"positive class {positive!r}" in found.scoring
        assert np.isfinite(found.best_score) and np.isfinite(found.configured_score)
        folds = list(StratifiedKFold(3, shuffle=True, random_state=SEED).split(x, y))
        pipeline = build_pipeline(cfg).set_params(**prefixed(found.best_params))
        expected = np.mean(
            [
                f1_score(
                    y.iloc[test], pipeline.fit(x.iloc[fit], y.iloc[fit]).predict(x.iloc[test]),
                    pos_label=positive,
                )
                for fit, test in folds
            ]
        )  # fmt: skip
        assert found.best_score == pytest.approx(expected, abs=1e-6)
