"""The drift report as a self-contained HTML page: a table of every feature's verdict and a
reference-vs-current plot for each drifted one."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from retrain.drift import DriftReport, FeatureDrift
from retrain.reports.figures import bar_comparison, histogram_comparison, img_tag
from retrain.reports.page import html_document, html_table

SEVERITY_COLORS = {
    "none": "#e8f5e9",
    "low": "#fffde7",
    "medium": "#ffe0b2",
    "high": "#ffcdd2",
    "unknown": "#eeeeee",
}


def _feature_figure(feature: FeatureDrift) -> Figure | None:
    plot = feature.plot
    if not plot:
        return None
    title = f"{feature.name} ({feature.severity})"
    if feature.kind == "numeric":
        edges = np.asarray(plot["edges"], dtype=np.float64)
        ref = np.asarray(plot["ref"], dtype=np.float64)
        cur = np.asarray(plot["cur"], dtype=np.float64)
        if len(edges) < 3:
            return bar_comparison(
                ["below", "at", "above"][: len(ref)],
                {"reference": _share(ref), "current": _share(cur)},
                title=title,
            )
        return _numeric_figure(edges, ref, cur, title=title)
    ref = np.asarray(plot["ref"], dtype=np.float64)
    cur = np.asarray(plot["cur"], dtype=np.float64)
    ref_s, cur_s = ref / max(ref.sum(), 1), cur / max(cur.sum(), 1)
    top = np.argsort(-np.maximum(ref_s, cur_s), kind="stable")[:20]
    top = top[(ref_s[top] > 0) | (cur_s[top] > 0)]
    labels = [str(plot["labels"][i]) for i in top]
    return bar_comparison(
        labels, {"reference": ref_s[top].tolist(), "current": cur_s[top].tolist()}, title=title
    )


def _numeric_figure(
    edges: npt.NDArray[np.float64],
    ref: npt.NDArray[np.float64],
    cur: npt.NDArray[np.float64],
    *,
    title: str,
) -> Figure:
    """Densities on the profile's fine bins between the reference minimum and maximum, merged to
    a readable width and zoomed on the central 99% of both samples."""
    # bins: (-inf, below-min edge], (edge, min] (the minimum itself), (min, e2], ..., (max, +inf)
    inner_edges = edges[1:]
    inner = [np.concatenate(([c[1] + c[2]], c[3:-1])) for c in (ref, cur)]
    cum = [np.concatenate(([0.0], np.cumsum(c))) / max(c.sum(), 1) for c in inner]
    lo = min(float(np.interp(0.005, c, inner_edges)) for c in cum)
    hi = max(float(np.interp(0.995, c, inner_edges)) for c in cum)
    min_width = (hi - lo) / 60 if hi > lo else 0.0
    keep = [0]
    for i in range(1, len(inner_edges)):
        if inner_edges[i] - inner_edges[keep[-1]] >= min_width or i == len(inner_edges) - 1:
            keep.append(i)
    merged_edges = inner_edges[keep]
    merged = [np.diff(np.concatenate(([0.0], np.cumsum(c)))[keep]) for c in inner]
    fig = histogram_comparison(merged_edges, merged[0], merged[1], title=title)
    ax = fig.axes[0]
    if hi > lo:
        pad = (hi - lo) * 0.05
        ax.set_xlim(lo - pad, hi + pad)
    outside = [float((c[0] + c[-1]) / max(c.sum(), 1)) for c in (ref, cur)]
    if outside[1] >= 0.0005:
        ax.set_xlabel(f"{outside[1]:.1%} of current values are outside the reference range")
    return fig


def _share(counts: Any) -> list[float]:
    c = np.asarray(counts, dtype=np.float64)
    return [float(v) for v in c / max(c.sum(), 1)]


def _stat(feature: FeatureDrift, key: str) -> float | None:
    value = feature.statistics.get(key)
    return None if value is None else float(value)


def drift_report_html(report: DriftReport, *, plot_all: bool = False) -> str:
    """The drift report as a self-contained HTML page."""
    rows: list[list[Any]] = []
    styles: list[str] = []
    for f in sorted(report.features, key=_severity_order):
        rows.append(
            [
                f.name, f.kind, f.severity, f.status,
                _stat(f, "psi"), _stat(f, "js"), _stat(f, "wasserstein"), _stat(f, "ks"),
                _pct(f.missing_rate_ref), _pct(f.missing_rate_cur), _pct(f.unseen_share),
                _stat(f, "p_value"), "; ".join(f.reasons) or f.message,
            ]
        )  # fmt: skip
        styles.append(f"background: {SEVERITY_COLORS.get(f.severity, '#fff')}")
    table = html_table(
        ["feature", "kind", "severity", "status", "PSI", "JS", "Wasserstein", "KS",
         "missing ref", "missing cur", "unseen", "p", "why"],
        rows,
        row_styles=styles,
    )  # fmt: skip
    counts = {k: len(v) for k, v in report.by_severity.items()}
    summary = (
        '<p class="summary">'
        f"<span><b>drift_count</b> (high): {report.drift_count}</span>"
        f"<span><b>drift_share</b> (medium+high): {report.drift_share:.2f}</span>"
        + "".join(f"<span>{html.escape(k)}: {v}</span>" for k, v in counts.items() if v)
        + "</p>"
        f'<p class="muted">reference rows: {report.n_ref:,}; current rows: {report.n_cur:,}; '
        f"alpha {report.alpha:g}; min_samples {report.min_samples}; "
        f"report {html.escape(report.created_at)}; profile "
        f"{html.escape(report.profile_created_at)}</p>"
    )
    parts = ["<h1>Drift report</h1>", summary, table]
    if report.skipped:
        parts.append(f'<p class="muted">skipped: {html.escape(", ".join(report.skipped))}</p>')
    shown = [
        f
        for f in sorted(report.features, key=_severity_order)
        if f.checked and (plot_all or f.severity in {"medium", "high"})
    ]
    if shown:
        parts.append("<h2>Reference vs current</h2>")
    for f in shown:
        fig = _feature_figure(f)
        if fig is None:
            continue
        caption = html.escape("; ".join(f.reasons) or f.message or f.severity)
        parts.append(f"<figure>{img_tag(fig, f.name)}<figcaption>{caption}</figcaption></figure>")
    return html_document("Drift report", "".join(parts))


def write_drift_report(
    report: DriftReport, path: str | os.PathLike[str] | None = None, *, plot_all: bool = False
) -> str:
    """Render ``report`` as a self-contained HTML page (inline PNG plots); write it when ``path``
    is given. Plots every drifted (medium/high) feature, or every checked one with
    ``plot_all``."""
    text = drift_report_html(report, plot_all=plot_all)
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return text


def _severity_order(f: FeatureDrift) -> tuple[int, str]:
    order = {"unknown": 0, "high": 1, "medium": 2, "low": 3, "none": 4}
    return order[f.severity], f.name


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"
