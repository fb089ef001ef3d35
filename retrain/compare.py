"""A/B comparison of the candidate against the production model, with real statistics.

* **Offline** (both models predict the same holdout): the paired McNemar test on the discordant
  pairs (exact binomial when they are few, chi-square with continuity correction otherwise) and a
  paired bootstrap confidence interval of the accuracy difference.
* **Online** (split traffic with logged outcomes): the pooled two-proportion z-test, with a
  sample-size check for the configured minimum detectable effect and power; below it no winner is
  called.

Results carry the seed's fields (``current_accuracy``, ``candidate_accuracy``, ``winner``,
``significant``) plus the p-value, confidence interval, sample size and the test used.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.stats import binomtest, chi2, norm

from retrain.config import ABTestSettings
from retrain.errors import DataError

__all__ = [
    "ABResult",
    "bootstrap_difference_ci",
    "compare_offline",
    "compare_online",
    "mcnemar",
    "required_sample_size",
]

EXACT_BELOW = 25  # discordant pairs; below this McNemar uses the exact binomial test

Winner = Literal["candidate", "current", "tie", "inconclusive"]


@dataclass(frozen=True)
class ABResult:
    """Outcome of one comparison (offline or online)."""

    current_accuracy: float | None
    candidate_accuracy: float
    winner: Winner
    significant: bool
    passed: bool
    test: str
    p_value: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    n: int
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(candidate_only: int, current_only: int) -> tuple[float, str]:
    """Two-sided McNemar p-value from the discordant counts; returns ``(p, test name)``.

    ``candidate_only``: rows only the candidate got right; ``current_only``: only the current.
    """

    n = candidate_only + current_only
    if n == 0:
        return 1.0, "mcnemar-exact"
    if n < EXACT_BELOW:
        return float(binomtest(candidate_only, n, 0.5).pvalue), "mcnemar-exact"
    statistic = (abs(candidate_only - current_only) - 1) ** 2 / n
    return float(chi2.sf(statistic, df=1)), "mcnemar-chi2-cc"


def bootstrap_difference_ci(
    candidate_correct: np.ndarray[Any, Any],
    current_correct: np.ndarray[Any, Any],
    *,
    n_resamples: int,
    confidence: float,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired percentile bootstrap CI of ``mean(candidate_correct - current_correct)``.

    Each paired difference is -1, 0 or +1, so resampling rows with replacement is exactly a
    multinomial draw of those three counts: the bootstrap is computed from counts in
    O(n_resamples) instead of O(n_resamples * n) and is identical in distribution.
    """

    diff = candidate_correct.astype(np.int8) - current_correct.astype(np.int8)
    n = diff.size
    counts = np.array([(diff == -1).sum(), (diff == 0).sum(), (diff == 1).sum()], dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_resamples)
    means = (draws[:, 2] - draws[:, 0]) / n
    alpha = 1 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _verdict(
    difference: float, significant: bool, settings: ABTestSettings
) -> tuple[Winner, bool, str]:
    if significant:
        winner: Winner = "candidate" if difference > 0 else "current"
    else:
        winner = "tie"
    if settings.pass_if == "better":
        passed = winner == "candidate"
        rule = "pass_if=better: the candidate must be significantly better"
    else:
        passed = winner != "current"
        rule = "pass_if=not_worse: fails only if the candidate is significantly worse"
    return winner, passed, rule


def compare_offline(
    y_true: np.ndarray[Any, Any],
    candidate_pred: np.ndarray[Any, Any],
    current_pred: np.ndarray[Any, Any] | None,
    settings: ABTestSettings,
    *,
    seed: int = 0,
) -> ABResult:
    """Paired comparison on the same holdout. ``current_pred=None``: no production model yet."""

    cand_ok = np.asarray(candidate_pred) == np.asarray(y_true)
    n = int(cand_ok.size)
    cand_acc = float(cand_ok.mean()) if n else 0.0
    if current_pred is None:
        return ABResult(
            None,
            cand_acc,
            "candidate",
            False,
            True,
            "none",
            None,
            None,
            None,
            None,
            settings.confidence,
            n,
            ["no production model to compare with: first model passes A/B"],
        )
    cur_ok = np.asarray(current_pred) == np.asarray(y_true)
    cur_acc = float(cur_ok.mean())
    cand_only = int((cand_ok & ~cur_ok).sum())
    cur_only = int((~cand_ok & cur_ok).sum())
    p_value, test = mcnemar(cand_only, cur_only)
    lo, hi = bootstrap_difference_ci(
        cand_ok, cur_ok, n_resamples=settings.n_bootstrap, confidence=settings.confidence, seed=seed
    )
    difference = cand_acc - cur_acc
    significant = p_value < settings.alpha
    winner, passed, rule = _verdict(difference, significant, settings)
    reasons = [
        f"accuracy candidate {cand_acc:.4f} vs current {cur_acc:.4f} ({difference:+.4f}) on "
        f"n={n} paired rows",
        f"{test}: discordant pairs candidate-only={cand_only}, current-only={cur_only}, "
        f"p={p_value:.3g} ({'significant' if significant else 'not significant'} at "
        f"alpha={settings.alpha})",
        f"{settings.confidence:.0%} bootstrap CI of the difference: [{lo:+.4f}, {hi:+.4f}]",
        f"winner: {winner}; {rule} -> {'PASS' if passed else 'FAIL'}",
    ]
    return ABResult(
        cur_acc,
        cand_acc,
        winner,
        significant,
        passed,
        test,
        p_value,
        difference,
        lo,
        hi,
        settings.confidence,
        n,
        reasons,
        {"candidate_only": cand_only, "current_only": cur_only},
    )


def required_sample_size(p_current: float, effect: float, *, alpha: float, power: float) -> int:
    """Rows per arm for a two-sided two-proportion z-test to detect ``effect`` (Cohen's h)."""

    p_other = min(max(p_current + effect, 1e-9), 1 - 1e-9)
    p_current = min(max(p_current, 1e-9), 1 - 1e-9)
    h = abs(2 * math.asin(math.sqrt(p_other)) - 2 * math.asin(math.sqrt(p_current)))
    if h == 0:
        return 0
    z = float(norm.ppf(1 - alpha / 2) + norm.ppf(power))
    return math.ceil(2 * (z / h) ** 2)  # var(2 asin sqrt p) = 1/n per arm


def compare_online(
    *,
    current_correct: int,
    current_n: int,
    candidate_correct: int,
    candidate_n: int,
    settings: ABTestSettings,
) -> ABResult:
    """Two-proportion z-test on split-traffic outcomes, refusing a winner below the power need."""

    for name, k, n in (
        ("current", current_correct, current_n),
        ("candidate", candidate_correct, candidate_n),
    ):
        if n < 0 or k < 0 or k > n:
            raise DataError([f"{name}: correct={k} must be between 0 and n={n}"])
    if current_n == 0 or candidate_n == 0:
        raise DataError(["each arm needs at least one labelled outcome"])
    p1, p2 = current_correct / current_n, candidate_correct / candidate_n
    pooled = (current_correct + candidate_correct) / (current_n + candidate_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / current_n + 1 / candidate_n))
    z = 0.0 if se == 0 else (p2 - p1) / se
    p_value = float(2 * norm.sf(abs(z)))
    se_diff = math.sqrt(p1 * (1 - p1) / current_n + p2 * (1 - p2) / candidate_n)
    zc = norm.ppf(1 - (1 - settings.confidence) / 2)
    lo, hi = (p2 - p1) - zc * se_diff, (p2 - p1) + zc * se_diff
    needed = required_sample_size(
        p1, -settings.min_detectable_effect, alpha=settings.alpha, power=settings.power
    )
    enough = min(current_n, candidate_n) >= needed
    significant = enough and p_value < settings.alpha
    reasons = [
        f"accuracy candidate {p2:.4f} (n={candidate_n}) vs current {p1:.4f} (n={current_n})",
        f"two-proportion z-test: z={z:.3f}, p={p_value:.3g}",
        f"needs {needed} outcomes per arm to detect {settings.min_detectable_effect} with power "
        f"{settings.power}; {'enough' if enough else 'NOT enough'} collected",
    ]
    if not enough:
        winner: Winner = "inconclusive"
        passed = False
        reasons.append("no winner called below the required sample size")
    else:
        winner, passed, rule = _verdict(p2 - p1, significant, settings)
        reasons.append(f"winner: {winner}; {rule} -> {'PASS' if passed else 'FAIL'}")
    return ABResult(
        p1,
        p2,
        winner,
        significant,
        passed,
        "two-proportion-z",
        p_value,
        p2 - p1,
        lo,
        hi,
        settings.confidence,
        current_n + candidate_n,
        reasons,
        {"z": z, "required_per_arm": needed},
    )
