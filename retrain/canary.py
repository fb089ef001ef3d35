"""The online canary judge: promote, roll back or keep watching, after every batch of labels.

The canary serves a share of traffic next to production; as labels for both arms' predictions
arrive, :func:`judge` compares their accuracies with an anytime-valid confidence sequence, so it
may be asked after every batch without inflating its error, and checks two guardrails. Pure:
no I/O, no MLflow, no Airflow; its figure is :func:`retrain.reports.canary.evaluations_figure`.

The rule (issue 17), on ``D = acc_canary - acc_production``:

* ``D_hat = k_c/n_c - k_p/n_p`` and ``V = p_c(1-p_c)/n_c + p_p(1-p_p)/n_p`` with
  ``p = (k+0.5)/(n+1)`` inside ``V`` (never zero);
* the normal-mixture half-width
  ``h = sqrt(V (V+t2)/t2 * (2 ln(1/alpha) + ln((V+t2)/V)))``, and ``[D_hat - h, D_hat + h]``
  holds at every look at once with probability at least ``1 - alpha`` (asymptotically);
* only after ``min_labels_per_arm`` labels in each arm and ``min_bake_minutes``: ROLLBACK when
  ``D_hat + h < 0`` (shown worse; checked first), PROMOTE when ``D_hat - h > -margin`` (shown
  non-inferior), CONTINUE otherwise; a canary still undecided at ``max_duration_hours`` is
  rolled back (production kept);
* at any time, ROLLBACK when the canary's p95 latency exceeded ``max(SLO, 1.2 x production's
  p95)`` in the last K windows, or its error rate exceeds production's by the tolerance.

The formula is the Gaussian-mixture boundary of Robbins, in Howard et al. (2021, "Time-uniform,
nonparametric, nonasymptotic confidence sequences") and, with a plug-in variance, the asymptotic
confidence sequence of Waudby-Smith et al. (2024, "Time-uniform central limit theory and
asymptotic confidence sequences"): for a mean of ``n`` units with variance ``sigma^2`` their
half-width is ``sigma sqrt(2 (n rho^2 + 1) / (n^2 rho^2) * ln(sqrt(n rho^2 + 1) / alpha))``, which
is the issue's formula with ``V = sigma^2/n`` and ``t2 = rho^2 sigma^2``. So ``t2`` is on the
variance scale and grows with the estimated variance; a fixed ``rho^2`` is what keeps the
sequence valid. Here ``t2 = V * c * n / planned_labels`` (``n`` the labels of the smaller arm),
that is ``rho^2 = c / planned_labels``, with ``c = -W_{-1}(-alpha^2/e) - 1`` (about 8.2 at
alpha 0.05): the choice that makes ``h / sqrt(V)`` smallest exactly at ``n = planned_labels``
(Waudby-Smith et al.'s ``rho`` for a time ``t*``). The suggestion "t2 = V at the planned n" is
the same with ``c = 1``, which is tightest near ``c * planned`` (about 8 times later).

Both arms' labels arrive in a fixed ratio (the traffic split), so the difference of the two
means is a mean of i.i.d. batches and the one-sample result applies; the guarantee is
asymptotic (plug-in variance), which ``min_labels_per_arm`` protects, and
``benchmarks/canary_judge.py`` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from retrain.config.schema import CanarySettings
from retrain.errors import DataError
from retrain.times import parse_time

__all__ = [
    "ArmStats",
    "CanaryEvaluation",
    "ConfidenceInterval",
    "Decision",
    "confidence_bounds",
    "confidence_sequence",
    "judge",
    "mixture_half_width",
    "mixture_t2",
    "optimal_mixture_ratio",
]

FloatArray = npt.NDArray[np.float64]


class Decision(StrEnum):
    """What the judge says about the canary at one look."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    CONTINUE = "continue"

    @property
    def code(self) -> int:
        """1 promote, 0 continue, -1 roll back (a metric to plot over time)."""
        return {Decision.PROMOTE: 1, Decision.CONTINUE: 0, Decision.ROLLBACK: -1}[self]


@dataclass(frozen=True)
class ArmStats:
    """What one arm (production or canary) has served so far, cumulative since the start.

    ``labelled`` predictions have a label, ``correct`` of them were right. ``requests`` and
    ``errors`` count served requests and failed ones. ``latency_p95_ms`` is the p95 latency of
    each monitoring window, oldest first (both arms' windows end at the same times).
    """

    labelled: int
    correct: int
    requests: int = 0
    errors: int = 0
    latency_p95_ms: tuple[float, ...] = ()

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True)
class ConfidenceInterval:
    """The confidence sequence's interval for ``D = acc_canary - acc_production`` at one look."""

    d_hat: float
    lower: float
    upper: float
    half_width: float
    variance: float  #: V, the plug-in variance of d_hat
    t2: float  #: the mixture's tuning parameter on the variance scale


@dataclass(frozen=True)
class CanaryEvaluation:
    """One look of the judge: its decision, the interval and why."""

    decision: Decision
    d_hat: float
    lower: float
    upper: float
    production_labels: int
    canary_labels: int
    reasons: tuple[str, ...]
    at: datetime
    elapsed_minutes: float
    margin: float

    @property
    def half_width(self) -> float:
        return (self.upper - self.lower) / 2

    def metrics(self) -> dict[str, float]:
        """The look as numbers (for MLflow metrics over time)."""
        return {
            "d_hat": self.d_hat,
            "lower": self.lower,
            "upper": self.upper,
            "half_width": self.half_width,
            "production_labels": float(self.production_labels),
            "canary_labels": float(self.canary_labels),
            "elapsed_minutes": self.elapsed_minutes,
            "decision": float(self.decision.code),
        }


# --- the confidence sequence -------------------------------------------------------------------


def optimal_mixture_ratio(alpha: float) -> float:
    """``c = -W_{-1}(-alpha^2/e) - 1``: with ``rho^2 = c/m`` the mixture's ``h/sqrt(V)`` is
    smallest at ``m`` units (the root of ``c - ln(1 + c) = 2 ln(1/alpha)``; 8.21 at 0.05)."""
    if not 0 < alpha < 1:
        raise DataError([f"alpha: {alpha!r} must be between 0 and 1"])
    two_log = 2 * math.log(1 / alpha)
    c = two_log
    for _ in range(100):  # a contraction with factor 1/(1+c) < 1/2: converges in a few steps
        nxt = two_log + math.log1p(c)
        if abs(nxt - c) < 1e-13:
            return nxt
        c = nxt
    return c


def mixture_t2(
    variance: npt.ArrayLike, labels: npt.ArrayLike, *, planned_labels: float, alpha: float
) -> FloatArray:
    """``t2 = V * c * n / planned_labels``: the sequence is tightest (relative to ``sqrt(V)``)
    at ``n = planned_labels`` labels in the smaller arm (``c``: :func:`optimal_mixture_ratio`)."""
    c = optimal_mixture_ratio(alpha)
    v = np.asarray(variance, dtype=np.float64)
    n = np.asarray(labels, dtype=np.float64)
    return np.asarray(v * (c * n / planned_labels), dtype=np.float64)


def mixture_half_width(variance: npt.ArrayLike, t2: npt.ArrayLike, *, alpha: float) -> FloatArray:
    """``h = sqrt(V (V+t2)/t2 * (2 ln(1/alpha) + ln((V+t2)/V)))``, the two-sided normal-mixture
    half-width for an estimate of variance ``V`` (elementwise)."""
    v = np.asarray(variance, dtype=np.float64)
    t = np.asarray(t2, dtype=np.float64)
    ratio = t / v  # (V+t2)/V = 1 + t2/V and (V+t2)/t2 = 1 + V/t2, without cancelling
    return np.asarray(
        np.sqrt(v * (1 + 1 / ratio) * (2 * math.log(1 / alpha) + np.log1p(ratio))),
        dtype=np.float64,
    )


def confidence_bounds(
    production_correct: npt.ArrayLike,
    production_labels: npt.ArrayLike,
    canary_correct: npt.ArrayLike,
    canary_labels: npt.ArrayLike,
    *,
    alpha: float,
    planned_labels: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(d_hat, lower, upper)`` elementwise for many looks or runs at once (counts trusted:
    every labels count at least 1; :func:`confidence_sequence` checks them). The bounds are cut
    to ``[-1, 1]``, where ``D`` lies anyway."""
    kp = np.asarray(production_correct, dtype=np.float64)
    n_p = np.asarray(production_labels, dtype=np.float64)
    kc = np.asarray(canary_correct, dtype=np.float64)
    n_c = np.asarray(canary_labels, dtype=np.float64)
    d_hat = kc / n_c - kp / n_p
    pc = (kc + 0.5) / (n_c + 1)
    pp = (kp + 0.5) / (n_p + 1)
    variance = pc * (1 - pc) / n_c + pp * (1 - pp) / n_p
    t2 = mixture_t2(variance, np.minimum(n_c, n_p), planned_labels=planned_labels, alpha=alpha)
    h = mixture_half_width(variance, t2, alpha=alpha)
    return d_hat, np.maximum(d_hat - h, -1.0), np.minimum(d_hat + h, 1.0)


def confidence_sequence(
    production: ArmStats, canary: ArmStats, *, alpha: float, planned_labels: float
) -> ConfidenceInterval:
    """The interval for ``D = acc_canary - acc_production`` at this look; every arm needs at
    least one label. Raises :class:`DataError` naming each bad count."""
    problems = [*_arm_problems("production", production), *_arm_problems("canary", canary)]
    problems += [
        f"{name}.labelled: a confidence interval needs at least one label"
        for name, arm in (("production", production), ("canary", canary))
        if arm.labelled == 0
    ]
    if not 0 < alpha < 1:
        problems.append(f"alpha: {alpha!r} must be between 0 and 1")
    if not planned_labels > 0:
        problems.append(f"planned_labels: {planned_labels!r} must be positive")
    if problems:
        raise DataError(problems)
    pc = (canary.correct + 0.5) / (canary.labelled + 1)
    pp = (production.correct + 0.5) / (production.labelled + 1)
    variance = pc * (1 - pc) / canary.labelled + pp * (1 - pp) / production.labelled
    n = min(canary.labelled, production.labelled)
    t2 = float(mixture_t2(variance, n, planned_labels=planned_labels, alpha=alpha))
    h = float(mixture_half_width(variance, t2, alpha=alpha))
    d_hat = canary.correct / canary.labelled - production.correct / production.labelled
    return ConfidenceInterval(
        d_hat=d_hat,
        lower=max(d_hat - h, -1.0),
        upper=min(d_hat + h, 1.0),
        half_width=h,
        variance=variance,
        t2=t2,
    )


# --- the judge ---------------------------------------------------------------------------------


def judge(
    production: ArmStats,
    canary: ArmStats,
    settings: CanarySettings,
    *,
    started_at: datetime | str,
    now: datetime | str,
) -> CanaryEvaluation:
    """Decide the canary at ``now`` (it started serving at ``started_at``; naive times are UTC).

    Guardrails first (any time): latency over K windows, error rate. Then the accuracy test,
    once each arm has ``min_labels_per_arm`` labels and ``min_bake_minutes`` have passed:
    ROLLBACK if the interval lies below 0, PROMOTE if it lies above ``-margin``. A canary still
    undecided at ``max_duration_hours`` is rolled back. Bad counts or times raise
    :class:`DataError` naming the field.
    """
    problems = [*_arm_problems("production", production), *_arm_problems("canary", canary)]
    start = parse_time(started_at, what="started_at")
    at = parse_time(now, what="now")
    if at < start:
        problems.append(f"now: {at.isoformat()} is before started_at ({start.isoformat()})")
    if problems:
        raise DataError(problems)
    elapsed = (at - start).total_seconds() / 60
    if production.labelled and canary.labelled:
        ci = confidence_sequence(
            production, canary, alpha=settings.alpha, planned_labels=settings.planned_labels
        )
        d_hat, lower, upper = ci.d_hat, ci.lower, ci.upper
    else:
        d_hat, lower, upper = 0.0, -1.0, 1.0  # nothing known yet: D lies in [-1, 1]

    decision, reasons = Decision.CONTINUE, _guardrail_reasons(production, canary, settings)
    if reasons:
        decision = Decision.ROLLBACK
    else:
        reasons = _waiting_reasons(production, canary, settings, elapsed)
        if not reasons:
            decision, reason = _accuracy_decision(d_hat, lower, upper, settings.margin)
            reasons = [reason]
        if decision is Decision.CONTINUE and elapsed >= settings.max_duration_hours * 60:
            decision = Decision.ROLLBACK
            reasons.append(
                f"max duration reached: {elapsed / 60:.1f} h >= {settings.max_duration_hours:g} h "
                "with no decision; the canary is rolled back and production kept"
            )
    return CanaryEvaluation(
        decision=decision,
        d_hat=d_hat,
        lower=lower,
        upper=upper,
        production_labels=production.labelled,
        canary_labels=canary.labelled,
        reasons=tuple(reasons),
        at=at,
        elapsed_minutes=elapsed,
        margin=settings.margin,
    )


def _accuracy_decision(
    d_hat: float, lower: float, upper: float, margin: float
) -> tuple[Decision, str]:
    interval = f"D_hat {d_hat:+.4f}, interval [{lower:+.4f}, {upper:+.4f}]"
    if upper < 0:
        return Decision.ROLLBACK, f"canary is less accurate than production: {interval} < 0"
    if lower > -margin:
        return Decision.PROMOTE, f"canary is non-inferior: {interval} > -margin ({-margin:+.4f})"
    return Decision.CONTINUE, f"undecided: {interval} holds 0 and -margin ({-margin:+.4f})"


def _waiting_reasons(
    production: ArmStats, canary: ArmStats, settings: CanarySettings, elapsed: float
) -> list[str]:
    reasons = []
    need = settings.min_labels_per_arm
    if production.labelled < need or canary.labelled < need:
        reasons.append(
            f"too few labels: canary {canary.labelled}, production {production.labelled}; "
            f"the accuracy test judges from {need} per arm"
        )
    if elapsed < settings.min_bake_minutes:
        reasons.append(
            f"still baking: {elapsed:.1f} of min_bake_minutes {settings.min_bake_minutes:g}"
        )
    return reasons


def _guardrail_reasons(
    production: ArmStats, canary: ArmStats, settings: CanarySettings
) -> list[str]:
    reasons = []
    breaches = _latency_breaches(production.latency_p95_ms, canary.latency_p95_ms, settings)
    if breaches >= settings.latency_windows:
        slo = f"SLO {settings.latency_slo_ms:g} ms, " if settings.latency_slo_ms else ""
        recent = ", ".join(f"{v:g}" for v in canary.latency_p95_ms[-settings.latency_windows :])
        reasons.append(
            f"latency guardrail: canary p95 above max({slo}{settings.latency_ratio:g} x "
            f"production p95) in the last {breaches} consecutive windows (canary p95 ms: "
            f"{recent})"
        )
    canary_rate, production_rate = canary.error_rate, production.error_rate or 0.0
    if (
        canary_rate is not None
        and canary.requests >= settings.error_rate_min_requests
        and canary_rate > production_rate + settings.error_rate_tolerance
    ):
        reasons.append(
            f"error-rate guardrail: canary {canary_rate:.4f} ({canary.errors}/{canary.requests})"
            f" > production {production_rate:.4f} + tolerance {settings.error_rate_tolerance:g}"
        )
    return reasons


def _latency_breaches(
    production: Sequence[float], canary: Sequence[float], settings: CanarySettings
) -> int:
    """Consecutive breaching windows counted back from the latest (windows aligned at the end;
    a canary window without a production one is judged by the SLO alone)."""
    count = 0
    for back in range(1, len(canary) + 1):
        limits = [settings.latency_slo_ms or 0.0]
        if back <= len(production):
            limits.append(settings.latency_ratio * production[-back])
        elif settings.latency_slo_ms is None:
            break  # nothing to judge this window against
        if canary[-back] <= max(limits):
            break
        count += 1
    return count


def _arm_problems(name: str, arm: ArmStats) -> list[str]:
    problems = []
    for field in ("labelled", "correct", "requests", "errors"):
        value = getattr(arm, field)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            problems.append(f"{name}.{field}: {value!r} is not a whole number")
        elif value < 0:
            problems.append(f"{name}.{field}: {value} must not be negative")
    if not problems:
        if arm.correct > arm.labelled:
            problems.append(
                f"{name}.correct: {arm.correct} is more than {name}.labelled ({arm.labelled})"
            )
        if arm.errors > arm.requests:
            problems.append(
                f"{name}.errors: {arm.errors} is more than {name}.requests ({arm.requests})"
            )
    bad = [
        v
        for v in arm.latency_p95_ms
        if isinstance(v, bool)
        or not isinstance(v, int | float)
        or not (math.isfinite(v) and v >= 0)
    ]
    if bad:
        problems.append(
            f"{name}.latency_p95_ms: {bad[0]!r} is not a latency (finite, at least 0 ms)"
        )
    return problems
