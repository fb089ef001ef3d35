"""The monthly full rebuild's comprehensive tests (issue 20): pure checks, each a checklist item.

* :func:`cross_validated`: k-fold metrics of the refitted candidate and of production (scored,
  not refitted) on the same held-out folds, with 95% intervals for both and their paired
  difference;
* :func:`slice_report`: accuracy per value of each categorical feature and per quantile bin of
  numeric ones; a large-enough slice worse than production by more than a margin fails;
* :func:`calibration`: Brier score and expected calibration error, with reliability curves;
* :func:`robustness`: missing values, unseen categories, reordered columns and extreme values
  must predict, within the declared classes;
* :func:`latency_and_size`: seconds per row and skops size, against production.

Every result is a frozen dataclass with ``passed``, its figures and :meth:`checklist_item`
(``(name, passed, detail)``). No I/O, MLflow, Airflow or plotting: the figures are drawn by
:mod:`retrain.reports.rebuild`.

Intervals (:func:`cross_validated`) are Student-t intervals over the ``k`` fold scores, not a
bootstrap: ``k`` is small (5), so resampling fold scores has too few distinct draws, and
resampling rows would ignore the variability of refitting. For quantities involving the
refitted candidate (its score, the paired difference) the variance is the Nadeau-Bengio
corrected one, ``s^2 (1/k + n_test/n_train)``: the training sets overlap, so the fold scores are
correlated and the naive ``s^2/k`` is too small. Production is one fixed model scored on
disjoint folds, so its fold scores are independent and get the plain ``s^2/k``.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import t as student_t
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, get_scorer
from sklearn.model_selection import StratifiedKFold, cross_validate

from retrain.data import select_columns
from retrain.errors import DataError
from retrain.serialization import dumps_trusted

__all__ = [
    "CalibrationResult",
    "ChecklistItem",
    "CrossValidation",
    "Interval",
    "LatencyAndSize",
    "MetricIntervals",
    "ModelCalibration",
    "ModelCost",
    "Perturbation",
    "RobustnessResult",
    "SliceReport",
    "SliceScore",
    "calibration",
    "cross_validated",
    "latency_and_size",
    "robustness",
    "slice_report",
]

ChecklistItem = tuple[str, bool, str]  # (name, passed, detail)
UNSEEN_CATEGORY = "__unseen_category__"
EXTREMES: tuple[float, ...] = (1e12, -1e12)


def _inputs(frame: pd.DataFrame, features: Sequence[str] | None, target: str | None) -> list[str]:
    """The model's input columns: ``features``, or every column but ``target``."""
    names = [c for c in frame.columns if c != target] if features is None else list(features)
    missing = [c for c in names if c not in frame.columns]
    if target is not None and target not in frame.columns:
        missing.append(target)
    if missing:
        raise DataError([f"column {c!r} is not in the frame" for c in missing])
    return [str(c) for c in names]


# --- cross-validated metrics ---------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval."""

    mean: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


@dataclass(frozen=True)
class MetricIntervals:
    """One metric: both models' fold scores and intervals, and the paired difference
    (candidate minus production; scikit-learn scorers are all higher-is-better)."""

    metric: str
    candidate: Interval
    production: Interval
    difference: Interval
    candidate_folds: tuple[float, ...]
    production_folds: tuple[float, ...]


@dataclass(frozen=True)
class CrossValidation:
    """:func:`cross_validated`'s result. Fails when, for some metric, the whole interval of the
    difference lies below ``-margin`` (the candidate is shown worse by more than the margin)."""

    metrics: tuple[MetricIntervals, ...]
    folds: int
    rows: int
    confidence: float
    margin: float
    passed: bool

    def metric(self, name: str) -> MetricIntervals:
        return next(m for m in self.metrics if m.metric == name)

    def checklist_item(self) -> ChecklistItem:
        parts = [
            f"{m.metric}: candidate {m.candidate}, production {m.production}, "
            f"difference {m.difference}"
            for m in self.metrics
        ]
        head = f"{self.folds}-fold CV on {self.rows} rows, {self.confidence:.0%} t-intervals; "
        return "cross_validated", self.passed, head + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _t_interval(values: npt.NDArray[np.float64], confidence: float, inflation: float) -> Interval:
    """Student-t interval of the mean of ``values``; variance ``s^2 (1/k + inflation)``."""
    k = values.size
    mean = float(values.mean())
    if k < 2:
        return Interval(mean, math.nan, math.nan)
    sd = float(values.std(ddof=1))
    half = float(student_t.ppf((1 + confidence) / 2, k - 1)) * sd * math.sqrt(1 / k + inflation)
    return Interval(mean, mean - half, mean + half)


def cross_validated(
    candidate: Any | Callable[[], Any],
    production: Any,
    frame: pd.DataFrame,
    target: str,
    *,
    features: Sequence[str] | None = None,
    metrics: Sequence[str] | Mapping[str, Any] = ("accuracy", "f1_macro"),
    folds: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
    margin: float = 0.0,
) -> CrossValidation:
    """Stratified k-fold scores of ``candidate`` (an unfitted estimator, cloned and refitted per
    fold, or a factory returning one) and of the fitted ``production`` on the same held-out folds.

    ``metrics`` are scikit-learn scorer names, or names to scorers. Production scores rows it
    may have been trained on when ``frame`` overlaps its training window: its figures are then
    optimistic.
    """
    if folds < 2:
        raise DataError([f"folds must be at least 2, got {folds}"])
    estimator = candidate if hasattr(candidate, "fit") else candidate()
    x = select_columns(frame, _inputs(frame, features, target))
    y = frame[target].to_numpy()
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y))
    # cross_validate refits a clone of the estimator on each fold's training rows
    scorers = dict(metrics) if isinstance(metrics, Mapping) else {m: get_scorer(m) for m in metrics}
    scores = cross_validate(estimator, x, y, cv=splits, scoring=scorers, error_score="raise")
    n_test = float(np.mean([len(test) for _, test in splits]))
    inflation = n_test / (len(y) - n_test)  # Nadeau-Bengio: n_test / n_train
    results = []
    for name, scorer in scorers.items():
        cand = np.asarray(scores[f"test_{name}"], dtype=np.float64)
        prod = np.array([float(scorer(production, x.iloc[test], y[test])) for _, test in splits])
        results.append(
            MetricIntervals(
                name,
                _t_interval(cand, confidence, inflation),
                _t_interval(prod, confidence, 0.0),
                _t_interval(cand - prod, confidence, inflation),
                tuple(cand.tolist()),
                tuple(prod.tolist()),
            )
        )
    passed = all(m.difference.high >= -margin for m in results)
    return CrossValidation(tuple(results), folds, len(y), confidence, margin, passed)


# --- slices --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceScore:
    """One slice: its rows and both models' accuracy on them."""

    name: str
    feature: str
    rows: int
    candidate_accuracy: float
    production_accuracy: float
    judged: bool  # rows >= min_slice_rows
    regression: bool  # judged and worse than production by more than slice_margin

    @property
    def difference(self) -> float:
        return self.candidate_accuracy - self.production_accuracy


@dataclass(frozen=True)
class SliceReport:
    """:func:`slice_report`'s result: fails when any judged slice regressed."""

    slices: tuple[SliceScore, ...]
    candidate_accuracy: float
    production_accuracy: float
    rows: int
    min_slice_rows: int
    slice_margin: float
    passed: bool

    @property
    def regressions(self) -> tuple[SliceScore, ...]:
        return tuple(s for s in self.slices if s.regression)

    def checklist_item(self) -> ChecklistItem:
        judged = sum(s.judged for s in self.slices)
        head = (
            f"overall accuracy candidate {self.candidate_accuracy:.4f} vs production "
            f"{self.production_accuracy:.4f}; {judged} of {len(self.slices)} slices have >= "
            f"{self.min_slice_rows} rows"
        )
        if self.passed:
            return "slices", True, f"{head}; none worse by more than {self.slice_margin:g}"
        worst = ", ".join(
            f"{s.name} ({s.candidate_accuracy:.4f} vs {s.production_accuracy:.4f}, n={s.rows})"
            for s in sorted(self.regressions, key=lambda s: s.difference)
        )
        return "slices", False, f"{head}; worse by more than {self.slice_margin:g}: {worst}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "regressions": [s.name for s in self.regressions]}


Slices = list[tuple[str, str, npt.NDArray[np.bool_]]]  # (feature, slice name, rows)


def _categorical_slices(column: pd.Series) -> Slices:
    name = str(column.name)
    missing = column.isna().to_numpy()
    values = sorted(column[~missing].unique().tolist(), key=str)
    found = [
        (name, f"{name}={v}", (column == v).to_numpy(dtype=bool, na_value=False)) for v in values
    ]
    return found + ([(name, f"{name} is missing", missing)] if missing.any() else [])


def _numeric_slices(column: pd.Series, bins: int) -> Slices:
    name = str(column.name)
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(values)
    found: Slices = []
    if not missing.all():
        edges = np.unique(np.quantile(values[~missing], np.linspace(0, 1, bins + 1)))
        index = np.searchsorted(edges[1:-1], values, side="right")
        for i in range(max(len(edges) - 1, 1)):
            low, high = edges[i], edges[min(i + 1, len(edges) - 1)]
            close = "]" if i >= len(edges) - 2 else ")"
            bin_rows = (index == i) & ~missing
            found.append((name, f"{name} in [{low:.4g}, {high:.4g}{close}", bin_rows))
    return found + ([(name, f"{name} is missing", missing)] if missing.any() else [])


def _predict(model: Any, x: pd.DataFrame) -> npt.NDArray[Any]:
    return np.asarray(model.predict(x))


def slice_report(
    candidate: Any,
    production: Any,
    frame: pd.DataFrame,
    target: str,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    features: Sequence[str] | None = None,
    bins: int = 10,
    min_slice_rows: int = 200,
    slice_margin: float = 0.05,
) -> SliceReport:
    """Accuracy of both fitted models per value of each ``categorical`` feature (``f=v``) and per
    quantile bin of each ``numeric`` one (``f in [a, b)``; missing values are their own slice).
    A slice of at least ``min_slice_rows`` rows where the candidate is less accurate than
    production by more than ``slice_margin`` is a regression, and fails the check."""
    x = select_columns(frame, _inputs(frame, features, target))
    y = frame[target].to_numpy()
    cand_ok = _predict(candidate, x) == y
    prod_ok = _predict(production, x) == y
    slices = [s for f in categorical for s in _categorical_slices(frame[f])] + [
        s for f in numeric for s in _numeric_slices(frame[f], bins)
    ]
    scores = []
    for feature, name, mask in slices:
        rows = int(mask.sum())
        if not rows:
            continue
        cand, prod = float(cand_ok[mask].mean()), float(prod_ok[mask].mean())
        judged = rows >= min_slice_rows
        scores.append(
            SliceScore(
                name, feature, rows, cand, prod, judged, judged and prod - cand > slice_margin
            )
        )
    passed = not any(s.regression for s in scores)
    overall = float(cand_ok.mean()), float(prod_ok.mean())
    return SliceReport(tuple(scores), *overall, len(y), min_slice_rows, slice_margin, passed)


# --- calibration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCalibration:
    """One model's Brier score, expected calibration error and reliability curve (the non-empty
    bins' mean predicted probability, observed frequency and rows)."""

    brier: float
    ece: float
    mean_predicted: tuple[float, ...]
    observed: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class CalibrationResult:
    """:func:`calibration`'s result: fails when the candidate's Brier score or ECE exceeds
    production's by more than its margin. ``event`` says what the curves are of."""

    candidate: ModelCalibration
    production: ModelCalibration
    event: str
    bins: int
    brier_margin: float
    ece_margin: float
    passed: bool

    def checklist_item(self) -> ChecklistItem:
        c, p = self.candidate, self.production
        return (
            "calibration",
            self.passed,
            f"Brier candidate {c.brier:.4f} vs production {p.brier:.4f} (margin "
            f"{self.brier_margin:g}); ECE candidate {c.ece:.4f} vs production {p.ece:.4f} "
            f"(margin {self.ece_margin:g}; {self.bins} bins, {self.event})",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _calibrate(
    model: Any, x: pd.DataFrame, y: npt.NDArray[Any], positive: Any, bins: int
) -> ModelCalibration:
    """Brier over all classes; ECE and curve of P(positive) (binary) or of the top-label
    confidence (``positive is None``: multiclass)."""
    proba = np.asarray(model.predict_proba(x), dtype=np.float64)
    classes = list(model.classes_)
    brier = float(brier_score_loss(y, proba, labels=classes))
    if positive is not None:
        p = proba[:, classes.index(positive)] if positive in classes else np.zeros(len(y))
        outcome = (y == positive).astype(int)
    else:
        p = proba.max(axis=1)
        outcome = (np.asarray(classes, dtype=object)[proba.argmax(axis=1)] == y).astype(int)
    observed, predicted = calibration_curve(outcome, p, n_bins=bins, strategy="uniform")
    index = np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], p)  # calibration_curve's bins
    counts = np.bincount(index, minlength=bins)
    counts = counts[counts > 0]
    ece = float(np.sum(counts / len(y) * np.abs(observed - predicted)))
    return ModelCalibration(
        brier, ece, tuple(predicted.tolist()), tuple(observed.tolist()), tuple(counts.tolist())
    )


def calibration(
    candidate: Any,
    production: Any,
    frame: pd.DataFrame,
    target: str,
    *,
    features: Sequence[str] | None = None,
    bins: int = 10,
    brier_margin: float = 0.01,
    ece_margin: float = 0.02,
) -> CalibrationResult:
    """Brier score and expected calibration error (``sum_b n_b/n |observed_b - predicted_b|``
    over ``bins`` equal-width bins) of both fitted models. Two classes: of the probability of the
    positive class (the candidate's last class); more: of the top-label confidence."""
    x = select_columns(frame, _inputs(frame, features, target))
    y = frame[target].to_numpy()
    classes = list(candidate.classes_)
    positive = classes[-1] if len(classes) == 2 else None
    cand = _calibrate(candidate, x, y, positive, bins)
    prod = _calibrate(production, x, y, positive, bins)
    event = f"P({target}={positive})" if positive is not None else "top-label confidence"
    passed = cand.brier <= prod.brier + brier_margin and cand.ece <= prod.ece + ece_margin
    return CalibrationResult(cand, prod, event, bins, brier_margin, ece_margin, passed)


# --- robustness ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    """One perturbed prediction: ``ok``, or the error (exception type and message)."""

    perturbation: str  # baseline, missing, unseen_category, reordered_columns, extreme_value
    column: str | None
    value: str | None
    ok: bool
    error: str | None = None

    @property
    def name(self) -> str:
        where = f" in {self.column}" if self.column is not None else ""
        value = f" ({self.value})" if self.value is not None else ""
        return f"{self.perturbation}{where}{value}"


@dataclass(frozen=True)
class RobustnessResult:
    """:func:`robustness`'s result: fails when any perturbation failed."""

    perturbations: tuple[Perturbation, ...]
    rows: int
    passed: bool

    @property
    def failures(self) -> tuple[Perturbation, ...]:
        return tuple(p for p in self.perturbations if not p.ok)

    def checklist_item(self) -> ChecklistItem:
        head = f"{len(self.perturbations)} perturbations of {self.rows} rows"
        if self.passed:
            return "robustness", True, f"{head}: all predicted within the declared classes"
        failed = "; ".join(f"{p.name}: {p.error}" for p in self.failures)
        return "robustness", False, f"{head}; failed: {failed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_numeric(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column))


def _filled(column: pd.Series, value: Any) -> pd.Series:
    """A column of ``column``'s length and index holding ``value``, in its dtype if it can."""
    dtype: Any = np.float64 if _is_numeric(column) else column.dtype
    if isinstance(dtype, pd.CategoricalDtype) and not (pd.isna(value) or value in dtype.categories):
        dtype = object
    try:
        filled: pd.Series = pd.Series([value] * len(column), index=column.index, dtype=dtype)
    except (TypeError, ValueError):
        filled = pd.Series([value] * len(column), index=column.index, dtype=object)
    return filled


def _unseen(column: pd.Series) -> Any:
    """A value not in ``column``: a marker string, or one above the maximum if it is numeric."""
    if _is_numeric(column) and column.notna().any():
        return float(column.max()) + 1
    return UNSEEN_CATEGORY


def _try(
    model: Any,
    x: pd.DataFrame,
    declared: set[Any],
    case: tuple[str, str | None, str | None],
    expected: npt.NDArray[Any] | None = None,
) -> tuple[Perturbation, npt.NDArray[Any] | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "unknown categories encoded as zeros"
            predicted = np.asarray(model.predict(x))
    except Exception as exc:  # the point: any failure is a finding, named
        message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return Perturbation(*case, ok=False, error=f"{type(exc).__name__}: {message}"), None
    outside = sorted({str(v) for v in predicted.tolist() if v not in declared})
    if len(predicted) != len(x):
        error: str | None = f"{len(predicted)} predictions for {len(x)} rows"
    elif outside:
        error = f"predicted labels outside the declared classes: {', '.join(outside)}"
    elif expected is not None and not np.array_equal(predicted, expected):
        error = "predictions changed with the column order"
    else:
        error = None
    return Perturbation(*case, ok=error is None, error=error), predicted


def robustness(
    model: Any,
    frame: pd.DataFrame,
    features: Sequence[str],
    classes: Sequence[Any] | None = None,
    *,
    categorical: Sequence[str] | None = None,
    rows: int = 100,
    extremes: Sequence[float] = EXTREMES,
) -> RobustnessResult:
    """Predict the first ``rows`` rows of ``frame[features]`` as they are, then with each
    feature missing, each categorical feature an unseen value, the columns reversed (predictions
    must not change) and each numeric feature at each of ``extremes`` (add ``inf``, ``-inf`` to
    be stricter: most scikit-learn estimators reject infinities). Every prediction must succeed
    and lie in ``classes`` (default: ``model.classes_``). ``categorical`` defaults to the
    non-numeric features."""
    x = select_columns(frame, _inputs(frame, features, None)).head(rows)
    declared = set(model.classes_ if classes is None else classes)
    cats = [f for f in x.columns if not _is_numeric(x[f])] if categorical is None else categorical
    numbers = [f for f in x.columns if f not in set(cats) and _is_numeric(x[f])]
    results = []
    base, expected = _try(model, x, declared, ("baseline", None, None))
    results.append(base)
    for f in x.columns:
        results.append(
            _try(model, x.assign(**{f: _filled(x[f], np.nan)}), declared, ("missing", f, None))[0]
        )
    for f in cats:
        value = _unseen(x[f])
        case = ("unseen_category", f, repr(value))
        results.append(_try(model, x.assign(**{f: _filled(x[f], value)}), declared, case)[0])
    reordered = x[list(reversed(x.columns))]
    results.append(_try(model, reordered, declared, ("reordered_columns", None, None), expected)[0])
    for f in numbers:
        for value in extremes:
            case = ("extreme_value", f, f"{value:g}")
            results.append(_try(model, x.assign(**{f: _filled(x[f], value)}), declared, case)[0])
    return RobustnessResult(tuple(results), len(x), all(r.ok for r in results))


# --- latency and size ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCost:
    """One model's prediction latency (medians over repeats) and skops-serialized size."""

    seconds_per_row: float  # a batch of ``rows`` rows, divided by the rows
    single_row_seconds: float  # one row alone (what one serving request costs)
    size_bytes: int


@dataclass(frozen=True)
class LatencyAndSize:
    """:func:`latency_and_size`'s result: fails when a candidate's latency or size exceeds
    production's times its ratio."""

    candidate: ModelCost
    production: ModelCost
    rows: int
    repeats: int
    max_latency_ratio: float
    max_size_ratio: float
    passed: bool

    @property
    def latency_ratio(self) -> float:
        return self.candidate.seconds_per_row / self.production.seconds_per_row

    @property
    def single_row_ratio(self) -> float:
        return self.candidate.single_row_seconds / self.production.single_row_seconds

    @property
    def size_ratio(self) -> float:
        return self.candidate.size_bytes / self.production.size_bytes

    def checklist_item(self) -> ChecklistItem:
        c, p = self.candidate, self.production
        return (
            "latency_and_size",
            self.passed,
            f"per row {c.seconds_per_row * 1e6:.1f} us vs production "
            f"{p.seconds_per_row * 1e6:.1f} us (x{self.latency_ratio:.2f}); one row "
            f"{c.single_row_seconds * 1e3:.2f} ms vs {p.single_row_seconds * 1e3:.2f} ms "
            f"(x{self.single_row_ratio:.2f}); size {c.size_bytes} vs {p.size_bytes} bytes "
            f"(x{self.size_ratio:.2f}); limits x{self.max_latency_ratio:g} latency, "
            f"x{self.max_size_ratio:g} size",
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _median_seconds(model: Any, x: pd.DataFrame, repeats: int) -> float:
    model.predict(x)  # warm-up: lazy initialisation is not latency
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cost(model: Any, x: pd.DataFrame, repeats: int) -> ModelCost:
    return ModelCost(
        _median_seconds(model, x, repeats) / len(x),
        _median_seconds(model, x.head(1), repeats),
        len(dumps_trusted(model)[0]),
    )


def latency_and_size(
    candidate: Any,
    production: Any,
    frame: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    rows: int = 1000,
    repeats: int = 5,
    max_latency_ratio: float = 2.0,
    max_size_ratio: float = 2.0,
) -> LatencyAndSize:
    """Seconds per row predicting the first ``rows`` rows and one row alone (medians of
    ``repeats`` timed calls after a warm-up), and the size of the model as skops bytes (never
    pickle), for both fitted models. ``features`` default to every column of ``frame``."""
    x = select_columns(frame, _inputs(frame, features, None)).head(rows)
    if x.empty:
        raise DataError(["latency_and_size needs at least one row"])
    cand, prod = _cost(candidate, x, repeats), _cost(production, x, repeats)
    passed = (
        cand.seconds_per_row <= prod.seconds_per_row * max_latency_ratio
        and cand.single_row_seconds <= prod.single_row_seconds * max_latency_ratio
        and cand.size_bytes <= prod.size_bytes * max_size_ratio
    )
    return LatencyAndSize(cand, prod, len(x), repeats, max_latency_ratio, max_size_ratio, passed)
