"""The drift check: one pass over the current data, then per-feature statistics and a severity
verdict against the reference profile."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

import numpy as np

from retrain.config import DriftSettings, DriftStatistic
from retrain.drift.binning import _CategoryCounts, _NumericCounter
from retrain.drift.profile import (
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    ReferenceProfile,
    _workers,
)
from retrain.drift.report import DriftReport, FeatureDrift
from retrain.drift.severity import _cuts_for, _fmt, _Verdict
from retrain.drift.sources import (
    BATCH_ROWS,
    DataLike,
    _dtype_name,
    _kind_of,
    _numeric_chunks,
    _Source,
)
from retrain.drift.stats import (
    _ks_pvalue,
    _net_js,
    _net_psi,
    _proportion_pvalue,
    _shares,
    _unseen_excess,
    _wasserstein,
    _wasserstein_noise,
    chi2_homogeneity,
    js_distance,
    psi,
)
from retrain.errors import DataError


class _Assessment:
    """A feature verdict under construction: statistics, severity families, status notes."""

    def __init__(
        self, p: FeatureProfile, *, n_cur: int, n_missing_cur: int, settings: DriftSettings
    ) -> None:
        self.settings = settings
        self.verdict = _Verdict(_cuts_for(settings, p.name), settings.alpha)
        self.notes: list[tuple[str, str]] = []
        self.feature = FeatureDrift(
            name=p.name,
            kind=p.kind,
            severity="none",
            statistics={},
            n_ref=p.n,
            n_cur=n_cur,
            missing_rate_ref=p.n_missing / p.n if p.n else None,
            missing_rate_cur=n_missing_cur / n_cur if n_cur else None,
        )
        self.stats = self.feature.statistics
        change = None
        if p.n and n_cur:
            change = abs(n_missing_cur / n_cur - p.n_missing / p.n)
        p_value = _proportion_pvalue(p.n_missing, p.n, n_missing_cur, n_cur)
        self.stats.update(missing_rate_change=change, missing_pvalue=p_value)
        self.verdict.family({"missing_rate": change}, p_value)

    def family(
        self,
        effects: Mapping[DriftStatistic, float | None],
        p_value: float,
        *,
        raw: Mapping[DriftStatistic, float | None] | None = None,
    ) -> None:
        """Record a family's statistics (raw values and, when given, ``<stat>_net``) and grade
        it."""
        for stat, value in effects.items():
            if raw is None:
                self.stats[stat] = value
            else:
                self.stats[stat] = raw[stat]
                self.stats[f"{stat}_net"] = value
        self.verdict.family(effects, p_value, raw=raw)

    def note(self, status: str, message: str) -> None:
        self.notes.append((status, message))

    def finish(self, n_compared: int) -> FeatureDrift:
        feature, min_samples = self.feature, self.settings.min_samples
        rows = min(feature.n_ref, feature.n_cur)
        if rows < min_samples:
            self.note(
                "insufficient_data", f"only {rows} rows on one side (min_samples {min_samples})"
            )
            self.verdict.cap("low", f"fewer than min_samples={min_samples} rows")
        feature.severity = self.verdict.severity
        feature.reasons = self.verdict.reasons
        self.stats["n_compared"] = n_compared
        if self.notes:
            feature.status = self.notes[0][0]
            messages = [m for _, m in self.notes] + ([feature.message] if feature.message else [])
            feature.message = "; ".join(messages)
        return feature


def _check_numeric(
    p: NumericProfile, counter: _NumericCounter, settings: DriftSettings
) -> FeatureDrift:
    a = _Assessment(p, n_cur=counter.n, n_missing_cur=counter.n_missing, settings=settings)
    n_inf_ref, n_inf_cur = p.n_neg_inf + p.n_pos_inf, counter.n_neg_inf + counter.n_pos_inf
    a.stats.update(n_inf_ref=n_inf_ref, n_inf_cur=n_inf_cur)
    a.stats.update(mean_ref=p.mean, std_ref=p.std, mean_cur=None, std_cur=None)
    if counter.n_finite:
        mean_c = counter.s1 / counter.n_finite
        a.stats["mean_cur"] = mean_c + counter.shift
        a.stats["std_cur"] = math.sqrt(max(counter.s2 / counter.n_finite - mean_c**2, 0.0))
    n_cur_nm = counter.n - counter.n_missing
    if not p.edges:
        a.note("all_missing_reference", "reference has no finite values")
    elif n_cur_nm == 0:
        a.note("all_missing", "current data has no non-missing values")
    else:
        _numeric_distribution(p, counter, a)
    if n_inf_ref or n_inf_cur:
        a.note(
            "infinite_values",
            f"{n_inf_ref} infinite values in reference, {n_inf_cur} in current (counted in the "
            "outermost bins, left out of Wasserstein)",
        )
    return a.finish(min(p.n - p.n_missing, n_cur_nm))


def _numeric_distribution(p: NumericProfile, counter: _NumericCounter, a: _Assessment) -> None:
    edges = np.asarray(p.edges)
    ref_counts = np.asarray(p.counts, dtype=np.int64)
    ref_cum = np.cumsum(ref_counts)[:-1]
    n_ref_nm, n_cur_nm = p.n - p.n_missing, counter.n - counter.n_missing
    cur_counts = np.diff(np.concatenate(([0], counter.cum, [n_cur_nm])))
    coarse_at = np.searchsorted(edges, np.asarray(p.coarse_edges))
    ref_coarse = np.diff(np.concatenate(([0], ref_cum[coarse_at], [n_ref_nm])))
    cur_coarse = np.diff(np.concatenate(([0], counter.cum[coarse_at], [n_cur_nm])))

    ks = float(np.max(np.abs(ref_cum / n_ref_nm - counter.cum / n_cur_nm)))
    ks_p = _ks_pvalue(ks, n_ref_nm, n_cur_nm)
    chi2, dof, chi2_p = chi2_homogeneity(ref_coarse, cur_coarse)
    wasserstein: float | None = None
    wasserstein_net: float | None = None
    ref_finite = n_ref_nm - p.n_neg_inf - p.n_pos_inf
    if not p.std:
        a.note(
            "constant_reference",
            f"reference is constant ({_fmt(p.min)}); Wasserstein is undefined, PSI/JS compare "
            "the bins below, at and above that value",
        )
    elif counter.n_finite and ref_finite:
        w = _wasserstein(
            edges,
            (ref_cum - p.n_neg_inf) / ref_finite,
            (counter.cum - counter.n_neg_inf) / counter.n_finite,
            (counter.below + counter.above) / counter.n_finite,
            step=p.integer_valued,
        )
        wasserstein = w / p.std
        noise = _wasserstein_noise(
            edges, (ref_cum - p.n_neg_inf) / ref_finite, ref_finite, counter.n_finite
        )
        wasserstein_net = math.sqrt(max(w * w - noise * noise, 0.0)) / p.std
    p_value = min(1.0, 2 * min(ks_p, chi2_p))
    a.stats.update(ks=ks, ks_pvalue=ks_p, chi2=chi2, chi2_dof=dof, chi2_pvalue=chi2_p)
    a.stats["p_value"] = p_value
    psi_value, js_value = psi(ref_coarse, cur_coarse), js_distance(ref_coarse, cur_coarse)
    k = dof + 1
    a.family(
        {
            "psi": _net_psi(psi_value, k, n_ref_nm, n_cur_nm),
            "js": _net_js(js_value, k, n_ref_nm, n_cur_nm),
            "wasserstein": wasserstein_net,
        },
        p_value,
        raw={"psi": psi_value, "js": js_value, "wasserstein": wasserstein},
    )
    a.feature.distribution = {
        "edges": [float(e) for e in p.coarse_edges],
        "ref": _shares(ref_coarse).round(6).tolist(),
        "cur": _shares(cur_coarse).round(6).tolist(),
    }
    a.feature.plot = {"edges": edges, "ref": ref_counts, "cur": cur_counts}


def _check_categorical(
    p: CategoricalProfile, counter: _CategoryCounts, settings: DriftSettings
) -> FeatureDrift:
    a = _Assessment(p, n_cur=counter.n, n_missing_cur=counter.n_missing, settings=settings)
    n_cur_nm = counter.n - counter.n_missing
    if p.n == p.n_missing:
        a.note("all_missing_reference", "reference has no non-missing values")
    elif n_cur_nm == 0:
        a.note("all_missing", "current data has no non-missing values")
    else:
        _categorical_distribution(p, counter, a)
    return a.finish(min(p.n - p.n_missing, n_cur_nm))


def _categorical_distribution(
    p: CategoricalProfile, counter: _CategoryCounts, a: _Assessment
) -> None:
    values, counts = counter.others()
    mapped = counter.known_counts
    rest = int(counts.sum())
    n_ref_nm, n_cur_nm = sum(p.counts) + p.other_count, counter.n - counter.n_missing
    labels = [*p.categories, "(other)", "(unseen)"]
    unseen_share: float | None = None
    unseen_net: float | None = None
    unseen_p = 1.0
    ref_arr = np.asarray([*p.counts, p.other_count, 0], dtype=np.int64)
    if p.truncated:
        cur_arr = np.asarray([*mapped.tolist(), rest, 0], dtype=np.int64)
        a.note(
            "high_cardinality",
            f"reference has {p.n_levels} levels; the {len(p.categories)} most frequent are "
            "compared one by one and the rest pooled as (other), so unseen categories cannot be "
            "told apart",
        )
    else:
        cur_arr = np.asarray([*mapped.tolist(), 0, rest], dtype=np.int64)
        unseen_share = rest / n_cur_nm
        totals = np.concatenate((np.asarray(p.counts) + mapped, counts))
        unseen_net, unseen_p = _unseen_excess(rest, totals, n_ref_nm, n_cur_nm)
        if rest:
            top = np.argsort(-counts, kind="stable")[:5]
            shown = ", ".join(f"{values[int(i)].as_py()!r} ({counts[i]})" for i in top)
            a.feature.message = f"{len(counts)} unseen categories: {shown}"
    chi2, dof, chi2_p = chi2_homogeneity(ref_arr, cur_arr)
    a.stats.update(chi2=chi2, chi2_dof=dof, chi2_pvalue=chi2_p, p_value=chi2_p)
    a.stats.update(unseen_pvalue=unseen_p, n_levels_ref=p.n_levels)
    a.stats["n_levels_cur"] = int(np.count_nonzero(mapped)) + len(counts)
    psi_value, js_value = psi(ref_arr, cur_arr), js_distance(ref_arr, cur_arr)
    k = dof + 1
    a.family(
        {
            "psi": _net_psi(psi_value, k, n_ref_nm, n_cur_nm),
            "js": _net_js(js_value, k, n_ref_nm, n_cur_nm),
        },
        chi2_p,
        raw={"psi": psi_value, "js": js_value},
    )
    a.family({"unseen_share": unseen_net}, unseen_p, raw={"unseen_share": unseen_share})
    a.feature.unseen_share = unseen_share
    keep = ((ref_arr > 0) | (cur_arr > 0)).tolist()
    a.feature.distribution = {
        "labels": [lab for lab, k in zip(labels, keep, strict=True) if k],
        "ref": _shares(ref_arr)[keep].round(6).tolist(),
        "cur": _shares(cur_arr)[keep].round(6).tolist(),
    }
    a.feature.plot = {"labels": labels, "ref": ref_arr, "cur": cur_arr}


def _unchecked(p: FeatureProfile, n_cur: int, status: str, message: str) -> FeatureDrift:
    return FeatureDrift(
        name=p.name,
        kind=p.kind,
        severity="unknown",
        statistics={},
        n_ref=p.n,
        n_cur=n_cur,
        missing_rate_ref=p.n_missing / p.n if p.n else None,
        missing_rate_cur=None,
        status=status,
        message=message,
    )


def _compatible(p: FeatureProfile, column: Any) -> str | None:
    """A dtype-mismatch message, or None when the current column can be compared."""
    found = _kind_of(column)
    if found == "null":
        return None
    if isinstance(p, NumericProfile):
        if found in {"numeric", "boolean"}:
            return None
        return f"expected numeric values (reference {p.dtype}), got {_dtype_name(column)}"
    if found == p.value_type:
        return None
    return (
        f"expected {p.value_type} categories (reference {p.dtype}), got "
        f"{_dtype_name(column)} ({found})"
    )


_Counter: TypeAlias = _NumericCounter | _CategoryCounts


def _count(
    profile: ReferenceProfile,
    source: _Source,
    names: Sequence[str],
    *,
    batch_rows: int,
    n_jobs: int,
) -> tuple[int, dict[str, _Counter], dict[str, str]]:
    """One pass over the current data: per-feature counters, rows seen, dtype mismatches."""
    counters: dict[str, _Counter] = {}
    for name in names:
        p = profile.features[name]
        if isinstance(p, NumericProfile):
            edges = np.asarray(p.edges)
            counters[name] = _NumericCounter(edges, lo=p.min, hi=p.max, shift=p.mean or 0.0)
        else:
            counters[name] = _CategoryCounts(p.categories)
    dictionary = [n for n, c in counters.items() if isinstance(c, _CategoryCounts)]
    mismatch: dict[str, str] = {}
    n_rows = 0
    with ThreadPoolExecutor(n_jobs) as pool:
        for rows, batch in source.batches(names, dictionary=dictionary, batch_rows=batch_rows):
            n_rows += rows
            for name, column in batch.items():
                problem = None if name in mismatch else _compatible(profile.features[name], column)
                if problem:
                    mismatch[name] = problem
            jobs = [
                pool.submit(_update, counters[name], column)
                for name, column in batch.items()
                if name not in mismatch
            ]
            for job in jobs:
                job.result()
    return n_rows, counters, mismatch


def _update(counter: _Counter, column: Any) -> None:
    if isinstance(counter, _NumericCounter):
        for chunk in _numeric_chunks(column):
            counter.update(chunk)
    else:
        counter.update(column)


def check_drift(
    profile: ReferenceProfile,
    current: DataLike,
    *,
    settings: DriftSettings,
    columns: Sequence[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    n_jobs: int | None = None,
) -> DriftReport:
    """Compare ``current`` with the reference ``profile``, feature by feature.

    ``current`` is a DataFrame, a pyarrow Table, or a parquet file/directory (streamed in record
    batches of ``batch_rows``, so memory is bounded by the batch size) or a CSV file. ``columns``
    restricts the check to some profiled features. Features disabled in ``settings.features`` are
    skipped. Raises :class:`DataError` for unknown ``columns`` or current data without rows.
    """
    names = list(profile.features) if columns is None else list(columns)
    unknown = [c for c in names if c not in profile.features]
    if unknown:
        raise DataError([f"{c}: not in the reference profile" for c in unknown], source="columns")
    skipped = [c for c in names if c in settings.features and not settings.features[c].enabled]
    names = [c for c in names if c not in skipped]
    source = _Source(current, role="current")
    present = [c for c in names if c in source.names]
    source.require(present)
    n_cur, counters, mismatch = _count(
        profile, source, present, batch_rows=batch_rows, n_jobs=n_jobs or _workers()
    )
    if n_cur == 0:
        raise DataError(["current data has no rows"], source=source.role)

    features: list[FeatureDrift] = []
    for name in names:
        p, counter = profile.features[name], counters.get(name)
        if counter is None:
            features.append(_unchecked(p, n_cur, "missing_column", "column not in current data"))
        elif name in mismatch:
            features.append(_unchecked(p, n_cur, "dtype_mismatch", mismatch[name]))
        elif isinstance(p, NumericProfile) and isinstance(counter, _NumericCounter):
            features.append(_check_numeric(p, counter, settings))
        elif isinstance(p, CategoricalProfile) and isinstance(counter, _CategoryCounts):
            features.append(_check_categorical(p, counter, settings))
    return DriftReport(
        features=features,
        n_ref=profile.n_rows,
        n_cur=n_cur,
        alpha=settings.alpha,
        min_samples=settings.min_samples,
        skipped=skipped,
        profile_created_at=profile.created_at,
    )
