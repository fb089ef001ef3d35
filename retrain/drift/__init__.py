"""Per-feature drift of current data against a compact reference profile.

At training time :func:`build_profile` summarises every feature of the training data in a small,
JSON-serialisable :class:`ReferenceProfile` (counts, missing rate, quantile bin edges and counts
for numeric features, category counts for categorical ones). Monitoring then calls
:func:`check_drift` with current data (a DataFrame, a pyarrow Table, or a parquet file/directory
streamed in record batches) and gets a :class:`DriftReport`; the training data is never re-read.
Each numeric column is binned by sorting 64k-row blocks in cache and searching the reference
edges; categories are matched against the reference's with ``index_in``; columns run in threads.

Statistics per feature (all computed from binned counts):

* numeric: PSI and Jensen-Shannon distance on the ``bins`` reference-quantile bins (plus one bin
  below and one above the reference range), the two-sample KS statistic evaluated at the fine
  grid (about 100 quantile edges plus 100 evenly spaced ones), the 1-Wasserstein distance
  integrated over the fine grid and divided by the reference standard deviation, and a Pearson
  chi-square homogeneity test (2 x k, like ``chi2_contingency`` without continuity correction);
* categorical: PSI, Jensen-Shannon distance and the chi-square homogeneity test over the
  reference categories plus an "unseen" bin, and the share of current rows in unseen categories;
* every feature: the change of the missing rate (two-proportion z-test).

PSI floors each bin share at ``max(1e-4, 0.5 / n)`` so empty bins never divide by zero and, for
``n >= 5000``, the value does not depend on the sample size. Jensen-Shannon uses base 2 (0..1).

Severity, per feature:

1. Effect sizes are graded net of sampling noise: PSI minus its expectation under homogeneity,
   ``(k - 1)(1/n_ref + 1/n_cur)``; JS with the expected JS divergence removed; Wasserstein with
   its expected value between two samples of the reference removed in quadrature; the unseen
   share minus the share that rare categories are expected to miss the reference by chance.
   The raw values are reported in ``statistics``; the graded ones as ``<statistic>_net``.
2. Each net effect size maps to ``none | low | medium | high`` with the cut points of
   ``DriftSettings.thresholds`` (per-feature overrides in ``DriftSettings.features``).
3. A family of statistics counts only if its test is significant at ``alpha`` (distribution:
   Bonferroni of KS and chi-square; missing rate: z-test; unseen share: one-sided z-test against
   chance), so small samples do not raise alarms. Large samples make tiny shifts significant but
   not severe: effect sizes, not p-values, decide the level.
4. The severity is the highest level of the significant families; fewer than ``min_samples``
   rows on either side cap it at ``low``.

Features that cannot be checked (column missing, dtype mismatch) get severity ``unknown`` and a
status naming the problem; other degenerate cases get a status and a message (see
:class:`FeatureDrift`).

Modules, bottom up (each imports only modules listed before it): :mod:`~retrain.drift.stats`
(the statistics and noise corrections), :mod:`~retrain.drift.severity` (the grading),
:mod:`~retrain.drift.sources` (input adapters), :mod:`~retrain.drift.binning` (counters),
:mod:`~retrain.drift.profile` (the reference profile), :mod:`~retrain.drift.report` (the result
types) and :mod:`~retrain.drift.check` (:func:`check_drift`). Public names resolve lazily:
importing this package loads none of numpy, pandas, pyarrow or scipy. The HTML page of a report
is :func:`retrain.reports.write_drift_report` (this package never imports :mod:`retrain.reports`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "FORMAT_VERSION": "retrain.drift.profile",
    "CategoricalProfile": "retrain.drift.profile",
    "NumericProfile": "retrain.drift.profile",
    "ReferenceProfile": "retrain.drift.profile",
    "build_profile": "retrain.drift.profile",
    "infer_feature_kinds": "retrain.drift.profile",
    "load_reference": "retrain.drift.profile",
    "chi2_homogeneity": "retrain.drift.stats",
    "js_distance": "retrain.drift.stats",
    "psi": "retrain.drift.stats",
    "SEVERITIES": "retrain.drift.severity",
    "DriftReport": "retrain.drift.report",
    "FeatureDrift": "retrain.drift.report",
    "check_drift": "retrain.drift.check",
}

__all__ = [
    "FORMAT_VERSION",
    "SEVERITIES",
    "CategoricalProfile",
    "DriftReport",
    "FeatureDrift",
    "NumericProfile",
    "ReferenceProfile",
    "build_profile",
    "check_drift",
    "chi2_homogeneity",
    "infer_feature_kinds",
    "js_distance",
    "load_reference",
    "psi",
]

if TYPE_CHECKING:
    from retrain.drift.check import check_drift
    from retrain.drift.profile import (
        FORMAT_VERSION,
        CategoricalProfile,
        NumericProfile,
        ReferenceProfile,
        build_profile,
        infer_feature_kinds,
        load_reference,
    )
    from retrain.drift.report import DriftReport, FeatureDrift
    from retrain.drift.severity import SEVERITIES
    from retrain.drift.stats import chi2_homogeneity, js_distance, psi


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrain.drift' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
