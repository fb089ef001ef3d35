"""Evaluate: metrics on the holdout and the promotion gate.

The gate passes only if the candidate meets every configured threshold (the seed: accuracy >=
0.85) AND is not worse than the production model, on the same holdout, by more than the
non-inferiority margin. With no production model the thresholds alone decide. A forced promotion
needs a reason and is recorded as forced. Every decision carries readable reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from retrain.config import EvaluationSettings, LeakageSettings
from retrain.data import select_columns
from retrain.errors import DataError

__all__ = [
    "GateResult",
    "ModelScores",
    "compute_metrics",
    "gate",
    "score_model",
    "single_feature_accuracy",
    "suspicions",
]

_BINS = 20


@dataclass(frozen=True)
class ModelScores:
    """Averaged metrics, per-class metrics, confusion matrix and predictions of one model."""

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    labels: list[str]
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateResult:
    """Whether the candidate may be promoted, and why."""

    passed: bool
    forced: bool
    reasons: list[str]
    checks: list[dict[str, Any]] = field(default_factory=list)
    force_reason: str | None = None
    #: "Too good to be true" findings: the gate may pass, but promotion waits for a human.
    suspicions: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``passed``, ``failed`` or ``forced`` (failed but promoted by an operator)."""
        if self.forced and not all(c["passed"] for c in self.checks):
            return "forced"
        return "passed" if self.passed else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def compute_metrics(
    y_true: np.ndarray[Any, Any] | pd.Series,
    y_pred: np.ndarray[Any, Any],
    y_score: np.ndarray[Any, Any] | None,
    *,
    labels: list[Any],
    average: str = "auto",
) -> ModelScores:
    """Accuracy, precision, recall, F1 and ROC AUC (when scores exist), per class and averaged.

    ``average="auto"`` means ``binary`` (positive class = the last label) for two classes and
    ``macro`` otherwise. ``y_score`` is ``predict_proba`` output with columns in ``labels`` order.
    """

    binary = len(labels) == 2
    mode = ("binary" if binary else "macro") if average == "auto" else average
    p, r, f, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    # the averages from the per-class values, as scikit-learn defines them (one pass, not two)
    if mode == "binary" and binary:
        precision, recall, f1 = p[-1], r[-1], f[-1]  # positive class = the last label
    elif mode == "macro":
        precision, recall, f1 = p.mean(), r.mean(), f.mean()
    elif mode == "weighted" and support.sum() > 0:
        precision, recall, f1 = (np.average(v, weights=support) for v in (p, r, f))
    else:  # anything else as scikit-learn decides (and explains)
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, average=mode, labels=labels, zero_division=0
        )
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }
    if y_score is not None and _two_or_more(y_true):
        if binary:
            metrics["roc_auc"] = float(roc_auc_score(y_true, y_score[:, 1], labels=labels))
        else:
            metrics["roc_auc"] = float(
                roc_auc_score(y_true, y_score, labels=labels, multi_class="ovr", average="macro")
            )
    per_class = {
        str(label): {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    matrix = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return ModelScores(metrics, per_class, matrix, [str(x) for x in labels], len(y_pred))


def _two_or_more(values: Any) -> bool:
    """Whether ``values`` holds at least two distinct labels (as text, as ROC AUC needs).

    Integer, boolean and text arrays are compared directly (distinct values have distinct text);
    anything else by its text, value by value.
    """

    array = np.asarray(values)
    if array.ndim == 1 and array.dtype.kind in "iubU":
        return bool(array.size) and bool((array != array[0]).any())
    return len(set(map(str, values))) >= 2


def score_model(
    model: Any,
    frame: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    labels: list[Any],
    average: str = "auto",
) -> tuple[ModelScores, np.ndarray[Any, Any]]:
    """Predict ``frame`` with ``model``; return its scores and the predictions."""

    inputs = select_columns(frame, features)
    estimator, ready = _final_step(model, inputs)
    proba = np.asarray(estimator.predict_proba(ready)) if hasattr(model, "predict_proba") else None
    if proba is not None and _predict_is_argmax(estimator):
        y_pred = np.asarray(estimator.classes_).take(proba.argmax(axis=1))
    else:
        y_pred = np.asarray(estimator.predict(ready))
    y_score = None
    if proba is not None:
        order = [
            list(model.classes_).index(label) if label in model.classes_ else None
            for label in labels
        ]
        y_score = np.column_stack(
            [proba[:, i] if i is not None else np.zeros(len(inputs)) for i in order]
        )
    scores = compute_metrics(
        frame[target].to_numpy(), y_pred, y_score, labels=labels, average=average
    )
    return scores, y_pred


def _predict_is_argmax(estimator: Any) -> bool:
    """Whether ``estimator.predict`` is the class of highest ``predict_proba``.

    True for scikit-learn's single-output tree ensembles and trees, whose ``predict`` computes
    ``predict_proba`` (forests, trees) or the raw scores it is a monotonic function of
    (histogram gradient boosting: equal unless two classes' probabilities round to an exact
    tie). Scoring then predicts once instead of twice; other estimators are asked both.
    """

    argmax_types = (
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        ExtraTreesClassifier,
        DecisionTreeClassifier,
        ExtraTreeClassifier,
    )
    return type(estimator) in argmax_types and getattr(estimator, "n_outputs_", 1) == 1


def _final_step(model: Any, inputs: pd.DataFrame) -> tuple[Any, Any]:
    """``(final estimator, its input)``: a scikit-learn ``Pipeline``'s transformers run once.

    ``Pipeline.predict`` and ``Pipeline.predict_proba`` each run every transformer and then the
    final estimator; scoring needs both, so the transformed input is computed once and handed to
    the final estimator twice (same result, one preprocessing pass less). Other models as is.
    """

    if type(model) is Pipeline and len(model.steps) > 1:
        return model.steps[-1][1], model[:-1].transform(inputs)
    return model, inputs


def gate(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    settings: EvaluationSettings,
    *,
    force: bool = False,
    force_reason: str | None = None,
    tests: Sequence[tuple[str, bool, str]] = (),
) -> GateResult:
    """Apply thresholds and non-inferiority against ``baseline`` (the production model), and
    require every one of ``tests`` (``(name, passed, detail)``: a full rebuild's)."""
    if force and not (force_reason and force_reason.strip()):
        raise DataError(["a forced promotion needs a reason"])
    checks: list[dict[str, Any]] = []
    reasons: list[str] = []
    for metric, threshold in settings.thresholds.items():
        value = candidate.get(metric)
        ok = value is not None and math.isfinite(value) and value >= threshold
        shown = "missing" if value is None else f"{value:.4f}"
        reasons.append(f"{metric} {shown} {'>=' if ok else '<'} threshold {threshold}")
        checks.append({"check": f"{metric} >= {threshold}", "value": value, "passed": ok})
    if baseline is None:
        reasons.append("no production model: thresholds alone decide")
    else:
        margin = settings.non_inferiority_margin
        for metric in settings.compare_metrics:
            cand, base = candidate.get(metric), baseline.get(metric)
            if cand is None or base is None:
                reasons.append(f"{metric}: not comparable (missing for one model)")
                checks.append({"check": f"{metric} vs production", "value": None, "passed": False})
                continue
            ok = cand >= base - margin
            diff = cand - base
            reasons.append(
                f"{metric} {cand:.4f} vs production {base:.4f} ({diff:+.4f}); "
                f"{'within' if ok else 'worse than'} non-inferiority margin {margin}"
            )
            checks.append(
                {"check": f"{metric} >= production - {margin}", "value": diff, "passed": ok}
            )
    for name, ok, detail in tests:
        reasons.append(f"{name} {'passed' if ok else 'FAILED'}: {detail}")
        checks.append({"check": name, "value": None, "passed": ok})
    passed = all(c["passed"] for c in checks)
    if force and not passed:
        reasons.append(f"FORCED despite failing checks: {force_reason}")
    return GateResult(passed or force, force, reasons, checks, force_reason if force else None)


def single_feature_accuracy(
    frame: pd.DataFrame, features: list[str], target: str
) -> dict[str, float]:
    """How well each feature alone predicts ``target``: the majority label per value (per
    quantile bin for numbers) learnt on the first half of ``frame``'s rows, scored on the
    second half. A copy of the label scores 1.0; an identifier never seen twice scores about
    the majority class's share, not 1.0 (its values do not recur in the second half)."""
    half = len(frame) // 2
    if half < 2 or target not in frame:
        return {}
    labels = frame[target].astype(str).to_numpy()
    fit_y, score_y = labels[:half], labels[half:]
    fallback = pd.Series(fit_y).mode().iloc[0]
    scores: dict[str, float] = {}
    for name in features:
        if name not in frame:
            continue
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype="float64", na_value=np.nan)
            fitted = values[:half][~np.isnan(values[:half])]
            if fitted.size == 0:
                continue
            edges = np.unique(np.quantile(fitted, np.linspace(0, 1, _BINS + 1)))
            codes = np.where(np.isnan(values), -1, np.searchsorted(edges, values, side="right"))
            keys: pd.Series[Any] = pd.Series(codes.astype(str))
        else:
            keys = column.astype(str).reset_index(drop=True)
        table = pd.DataFrame({"key": keys[:half].to_numpy(), "y": fit_y})
        majority = table.groupby("key")["y"].agg(lambda y: y.mode().iloc[0])
        predicted = keys[half:].map(majority).fillna(fallback).to_numpy()
        scores[name] = float(np.mean(predicted == score_y))
    return scores


def suspicions(
    candidate: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    feature_scores: Mapping[str, float],
    settings: LeakageSettings,
    *,
    compare: list[str],
    target: str,
) -> list[str]:
    """What makes a candidate "too good to be true" (see :class:`LeakageSettings`)."""
    found = []
    limit = settings.single_feature_accuracy
    if limit is not None:
        for name, score in sorted(feature_scores.items(), key=lambda kv: -kv[1]):
            if score >= limit:
                found.append(
                    f"feature {name!r} alone predicts {target!r} with accuracy {score:.3f} "
                    f"(>= evaluation.leakage.single_feature_accuracy {limit}): a leak?"
                )
    jump = settings.max_metric_jump
    if jump is not None and baseline is not None:
        for metric in compare:
            cand, base = candidate.get(metric), baseline.get(metric)
            if cand is not None and base is not None and cand - base > jump:
                found.append(
                    f"{metric} {cand:.3f} beats production {base:.3f} by {cand - base:+.3f} "
                    f"(> evaluation.leakage.max_metric_jump {jump}): too good to be true?"
                )
    return found
