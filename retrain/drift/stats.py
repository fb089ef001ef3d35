"""Two-sample statistics on binned counts: PSI, Jensen-Shannon distance, chi-square
homogeneity, KS and two-proportion p-values, the 1-Wasserstein distance, and the sampling-noise
corrections that turn raw effect sizes into the net ones that severity grades."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from retrain.drift._types import FloatArray, IntArray

#: Smallest bin share used by PSI (also floored at 0.5 / n).
PSI_FLOOR = 1e-4


def _shares(counts: npt.NDArray[Any]) -> FloatArray:
    total = float(counts.sum())
    return counts / total if total > 0 else np.zeros(len(counts))


def psi(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> float:
    """Population stability index over matching bins; shares floored at ``max(1e-4, 0.5/n)``."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    floor_r = max(PSI_FLOOR, 0.5 / max(ref.sum(), 1.0))
    floor_c = max(PSI_FLOOR, 0.5 / max(cur.sum(), 1.0))
    r = np.maximum(_shares(ref), floor_r)
    c = np.maximum(_shares(cur), floor_c)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of the two binned distributions."""
    r = _shares(np.asarray(ref_counts, dtype=np.float64))
    c = _shares(np.asarray(cur_counts, dtype=np.float64))
    m = (r + c) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_r = np.where(r > 0, r * np.log2(r / m), 0.0).sum()
        kl_c = np.where(c > 0, c * np.log2(c / m), 0.0).sum()
    return float(math.sqrt(max((kl_r + kl_c) / 2, 0.0)))


def chi2_homogeneity(
    ref_counts: npt.ArrayLike, cur_counts: npt.ArrayLike
) -> tuple[float, int, float]:
    """Pearson chi-square test of homogeneity on the 2 x k table (``chi2_contingency`` without
    continuity correction, empty columns dropped). Returns ``(statistic, dof, p_value)``."""
    table = np.vstack(
        [np.asarray(ref_counts, dtype=np.float64), np.asarray(cur_counts, dtype=np.float64)]
    )
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(rows == 0):
        return 0.0, max(table.shape[1] - 1, 0), 1.0
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return stat, dof, float(special.chdtrc(dof, stat))


def _ks_pvalue(d: float, n_ref: int, n_cur: int) -> float:
    if n_ref == 0 or n_cur == 0:
        return 1.0
    en = math.sqrt(n_ref * n_cur / (n_ref + n_cur))
    return float(min(1.0, special.kolmogorov((en + 0.12 + 0.11 / en) * d)))


def _proportion_pvalue(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided pooled two-proportion z-test."""
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k2 / n2 - k1 / n1) / se
    return float(special.erfc(z / math.sqrt(2)))


def _net_psi(value: float, bins: int, n_ref: int, n_cur: int) -> float:
    """PSI minus its expectation under homogeneity, ``(k - 1) (1/n_ref + 1/n_cur)``."""
    return max(value - (bins - 1) * (1 / n_ref + 1 / n_cur), 0.0)


def _net_js(value: float, bins: int, n_ref: int, n_cur: int) -> float:
    """JS distance with the expected JS divergence under homogeneity,
    ``(k - 1) (1/n_ref + 1/n_cur) / (8 ln 2)`` bits, removed."""
    noise = (bins - 1) * (1 / n_ref + 1 / n_cur) / (8 * math.log(2))
    return math.sqrt(max(value * value - noise, 0.0))


def _unseen_excess(unseen: int, totals: IntArray, n_ref: int, n_cur: int) -> tuple[float, float]:
    """Unseen share net of chance, and a one-sided p-value.

    Under homogeneity a category with ``t`` rows in both samples together is missing from the
    reference with probability ``q**t`` (``q = n_cur / (n_ref + n_cur)``), so rare categories
    of small samples are expected to look "unseen": ``E[U] = sum t q**t``.
    """
    if unseen == 0:
        return 0.0, 1.0
    q = n_cur / (n_ref + n_cur)
    t = totals[totals > 0].astype(np.float64)
    chance = q**t
    expected = float(np.sum(t * chance))
    variance = float(np.sum(t * t * chance * (1 - chance)))
    z = (unseen - expected) / math.sqrt(variance) if variance > 0 else math.inf
    p_value = float(special.ndtr(-z))
    return max(unseen - expected, 0.0) / n_cur, p_value


def _wasserstein_noise(edges: FloatArray, ref_cdf: FloatArray, n_ref: int, n_cur: int) -> float:
    """Expected W1 between two samples of the reference distribution:
    ``sqrt(2 / pi) * integral sqrt(F (1 - F)) dx / sqrt(n_eff)`` (Brownian-bridge limit)."""
    spread = np.sqrt(np.clip(ref_cdf * (1 - ref_cdf), 0.0, None))
    integral = float(np.sum((spread[:-1] + spread[1:]) / 2 * np.diff(edges)))
    return math.sqrt(2 / math.pi) * integral * math.sqrt(1 / n_ref + 1 / n_cur)


def _wasserstein(
    edges: FloatArray,
    ref_cdf: FloatArray,
    cur_cdf: FloatArray,
    tails: float,
    *,
    step: bool,
) -> float:
    """W1 between two distributions known by their CDFs at ``edges`` (linear in between, or a
    step function for integer-valued data) plus the exact area beyond the reference range."""
    d = ref_cdf - cur_cdf
    widths = np.diff(edges)
    if step:
        return float(np.sum(np.abs(d[:-1]) * widths) + tails)
    a, b = d[:-1], d[1:]
    abs_a, abs_b = np.abs(a), np.abs(b)
    total = abs_a + abs_b
    crossing = np.divide(a * a + b * b, 2 * total, out=np.zeros_like(total), where=total > 0)
    area = np.where(a * b >= 0, total / 2, crossing)
    return float(np.sum(area * widths) + tails)
