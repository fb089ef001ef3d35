"""The full rebuild's hyperparameter search: scikit-learn's searches over the whole pipeline.

The search runs over the unfitted preprocessing + estimator pipeline of
:func:`retrain.train.build_pipeline`, so every candidate is preprocessed on its own training
folds exactly as it would be trained. The configured parameters (``model.estimator.params``)
are scored on the same stratified folds first; the search's best replaces them only when it
scores higher there, so a search never makes the model worse by its own measure.

``halving_random`` (successive halving, :class:`~sklearn.model_selection.HalvingRandomSearchCV`)
tries ``budget`` sampled candidates on a few rows, keeps the best third on three times as many,
and so on until the last round uses (nearly) every row; its winner is then re-scored on the
configured parameters' folds, so the two scores are paired.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (enables the import below)
from sklearn.metrics import f1_score, get_scorer, make_scorer, precision_score, recall_score
from sklearn.model_selection import (
    GridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline

from retrain.config.schema import ParamRange, SearchSettings
from retrain.errors import ConfigError, DataError

__all__ = ["SearchResult", "prefixed", "scorer", "scorer_name", "search", "search_space"]

log = logging.getLogger(__name__)
STEP = "model"  # the estimator's step in the pipeline: its parameters are model__<name>
_BINARY = {"precision": precision_score, "recall": recall_score, "f1": f1_score}


@dataclass(frozen=True)
class SearchResult:
    """What the search tried, what it found, and which parameters the model was fitted with."""

    method: str
    scoring: str
    cv_folds: int
    candidates: int
    fits: int
    best_params: dict[str, Any]
    best_score: float
    configured_params: dict[str, Any]
    configured_score: float
    #: ``search`` (its best scored higher) or ``configured`` (it did not: kept the config's).
    chosen: str
    seconds: float

    @property
    def chosen_params(self) -> dict[str, Any]:
        return self.best_params if self.chosen == "search" else {}

    @property
    def improvement(self) -> float:
        return self.best_score - self.configured_score

    def summary(self) -> str:
        verdict = (
            f"best {self.best_params} chosen"
            if self.chosen == "search"
            else "the configured parameters kept (no candidate scored higher)"
        )
        return (
            f"{self.method} search of {self.candidates} candidates ({self.fits} fits, "
            f"{self.seconds:.1f}s): CV {self.scoring} {self.best_score:.4f} vs configured "
            f"{self.configured_score:.4f} ({self.improvement:+.4f}); {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "improvement": self.improvement}


def scorer(metric: str, average: str, classes: Sequence[Any]) -> tuple[str, Any]:
    """``(name, scikit-learn scorer)`` of an ``evaluation`` metric for a label with ``classes``.

    Two classes, averaged ``binary``: precision, recall and F1 of the last class in sorted order
    (:func:`retrain.evaluate.compute_metrics`' positive class), not of the label ``1`` that
    scikit-learn's named scorers assume (string labels would score NaN).
    """
    ordered = sorted(classes)
    name = scorer_name(metric, average, len(ordered))
    if name in _BINARY:
        positive = _json_value(ordered[-1])
        return f"{name} (positive class {positive!r})", make_scorer(
            _BINARY[name], pos_label=positive, zero_division=0
        )
    return name, get_scorer(name)


def scorer_name(metric: str, average: str, n_classes: int) -> str:
    """The scikit-learn scorer for an ``evaluation`` metric and averaging (``auto``: binary for
    two classes, macro otherwise, as :func:`retrain.evaluate.compute_metrics` averages)."""
    if metric == "accuracy":
        return "accuracy"
    mode = ("binary" if n_classes == 2 else "macro") if average == "auto" else average
    if metric == "roc_auc":
        return "roc_auc" if n_classes == 2 else "roc_auc_ovr"
    return metric if mode == "binary" else f"{metric}_{mode}"


def _json_value(value: Any) -> Any:
    """numpy scalars as Python ones (the result goes to JSON, MLflow and the log)."""
    return value.item() if isinstance(value, np.generic) else value


def _distribution(value: ParamRange) -> Any:
    low, high = value.low, value.high
    if value.distribution == "loguniform":
        return loguniform(low, high)
    if value.distribution == "randint":
        return randint(int(low), int(high) + 1)  # scipy's high is exclusive; the config's is not
    return uniform(low, high - low)


def search_space(space: Mapping[str, list[Any] | ParamRange], estimator: Any) -> dict[str, Any]:
    """``model.search.space`` as the searches take it (``model__<name>``: a list or a scipy
    distribution), every name checked against ``estimator``'s parameters first."""
    accepted = estimator.get_params(deep=False)
    unknown = sorted(name for name in space if name not in accepted)
    if unknown:
        kind = type(estimator).__name__
        raise ConfigError(
            [
                f"model.search.space.{name}: not a parameter of {kind} (it takes: "
                f"{', '.join(sorted(accepted))})"
                for name in unknown
            ]
        )
    problems = [
        problem
        for name, value in space.items()
        for tried in (value if isinstance(value, list) else _ends(value))
        if (problem := _refused(estimator, name, tried))
    ]
    if problems:
        raise ConfigError(problems)
    return {
        f"{STEP}__{name}": (_distribution(value) if isinstance(value, ParamRange) else value)
        for name, value in space.items()
    }


def _ends(value: ParamRange) -> list[Any]:
    if value.distribution == "randint":
        return [int(value.low), int(value.high)]
    return [value.low, value.high]


def _refused(estimator: Any, name: str, value: Any) -> str | None:
    """Why ``estimator`` refuses ``name=value`` (scikit-learn's parameter constraints), if so."""
    if not hasattr(estimator, "_validate_params"):
        return None
    try:
        clone(estimator).set_params(**{name: value})._validate_params()
    except (TypeError, ValueError) as exc:  # sklearn's InvalidParameterError is both
        rule = str(exc).partition(" parameter of ")[2] or str(exc)
        return f"model.search.space.{name}: {value!r} is refused: {rule}"
    return None


def _make_search(
    pipeline: Pipeline,
    space: dict[str, Any],
    settings: SearchSettings,
    *,
    scoring: Any,
    splits: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    seed: int,
) -> Any:
    common: dict[str, Any] = {
        "scoring": scoring,
        "n_jobs": settings.n_jobs,
        "refit": False,
        "error_score": np.nan,
    }
    if settings.method == "grid":
        return GridSearchCV(pipeline, space, cv=splits, **common)
    if settings.method == "random":
        return RandomizedSearchCV(
            pipeline, space, n_iter=settings.budget, cv=splits, random_state=seed, **common
        )
    # halving subsamples rows per round: it needs a splitter, not fixed folds
    folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=seed)
    return HalvingRandomSearchCV(
        pipeline,
        space,
        n_candidates=settings.budget,
        factor=3,
        min_resources="exhaust",  # the last round uses (nearly) every row
        cv=folds,
        random_state=seed,
        **common,
    )


def search(
    pipeline: Pipeline,
    x: pd.DataFrame,
    y: pd.Series,
    settings: SearchSettings,
    *,
    seed: int,
    average: str = "auto",
) -> SearchResult:
    """Search ``settings.space`` for ``pipeline``'s estimator on ``(x, y)``; ``pipeline`` is not
    fitted or changed. Apply the result with
    ``pipeline.set_params(**prefixed(result.chosen_params))``."""
    started = time.perf_counter()
    estimator = pipeline.named_steps[STEP]
    space = search_space(settings.space, estimator)
    classes = pd.unique(y)
    if len(classes) < 2:
        raise DataError([f"the search needs two classes or more in the label, got {len(classes)}"])
    scoring, score = scorer(settings.scoring, average, list(classes))
    splits = list(StratifiedKFold(settings.cv_folds, shuffle=True, random_state=seed).split(x, y))
    log.info(
        "search: scoring the configured parameters on %d folds of %d rows",
        settings.cv_folds,
        len(x),
    )
    configured = float(
        np.mean(
            cross_val_score(clone(pipeline), x, y, cv=splits, scoring=score, n_jobs=settings.n_jobs)
        )
    )
    log.info(
        "search: %s over %d candidates (%s), configured CV %s %.4f",
        settings.method,
        settings.budget,
        ", ".join(settings.space),
        scoring,
        configured,
    )
    found = _make_search(pipeline, space, settings, scoring=score, splits=splits, seed=seed)
    found.fit(x, y)
    results = found.cv_results_
    scores = np.asarray(results["mean_test_score"], dtype=np.float64)
    if not np.isfinite(scores).any():
        raise DataError(
            ["the search: every candidate failed to fit (error_score nan); see the task log"]
        )
    best = {k.removeprefix(f"{STEP}__"): _json_value(v) for k, v in found.best_params_.items()}
    fits = int(np.sum(np.isfinite(scores)) * settings.cv_folds)
    if settings.method == "halving_random":
        # paired with the configured score: the same folds, every row
        best_score = float(
            np.mean(
                cross_val_score(
                    clone(pipeline).set_params(**found.best_params_),
                    x,
                    y,
                    cv=splits,
                    scoring=score,
                    n_jobs=settings.n_jobs,
                )
            )
        )
        fits += settings.cv_folds
        candidates = int(found.n_candidates_[0])
    else:
        best_score = float(found.best_score_)
        candidates = len(scores)
    fits += settings.cv_folds  # the configured parameters' folds
    configured_params = {
        k: _json_value(v)
        for k, v in estimator.get_params(deep=False).items()
        if k in settings.space
    }
    best_score, configured = round(best_score, 6), round(configured, 6)  # as recorded
    chosen = "search" if math.isfinite(best_score) and best_score > configured else "configured"
    result = SearchResult(
        method=settings.method,
        scoring=scoring,
        cv_folds=settings.cv_folds,
        candidates=candidates,
        fits=fits,
        best_params=best,
        best_score=best_score,
        configured_params=configured_params,
        configured_score=configured,
        chosen=chosen,
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info("search: %s", result.summary())
    return result


def prefixed(params: Mapping[str, Any]) -> dict[str, Any]:
    """Estimator parameters as the pipeline's ``set_params`` takes them."""
    return {f"{STEP}__{k}": v for k, v in params.items()}
