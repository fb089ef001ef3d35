"""Plots and self-contained HTML for reports (drift now; confusion matrices and metric
comparisons later).

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend
state, safe in worker threads) and embedded in HTML as base64 PNG, so a report is one file that
can be stored as an MLflow artifact or served by the UI.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrain.drift import DriftReport, FeatureDrift

__all__ = [
    "CURRENT_COLOR",
    "REFERENCE_COLOR",
    "bar_comparison",
    "confusion_matrix_figure",
    "figure_to_base64_png",
    "histogram_comparison",
    "html_document",
    "html_table",
    "img_tag",
    "new_figure",
]

REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"
SEVERITY_COLORS = {
    "none": "#e8f5e9",
    "low": "#fffde7",
    "medium": "#ffe0b2",
    "high": "#ffcdd2",
    "unknown": "#eeeeee",
}

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem;
       color: #222; max-width: 1100px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.summary span { display: inline-block; margin-right: 1.5rem; }
.muted { color: #666; font-size: 0.85rem; }
figure { margin: 1rem 0; } img { max-width: 100%; }
"""


def new_figure(width: float = 6.4, height: float = 3.0) -> tuple[Figure, Axes]:
    """A figure with one axes, drawn on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def figure_to_base64_png(fig: Figure) -> str:
    """The figure as a base64-encoded PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def img_tag(fig: Figure, alt: str) -> str:
    """An ``<img>`` element with the figure inlined as a data URI."""
    data = figure_to_base64_png(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def histogram_comparison(
    edges: npt.ArrayLike,
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    title: str,
    labels: tuple[str, str] = ("reference", "current"),
) -> Figure:
    """Densities of two binned samples on shared ``edges`` (``len(edges) - 1`` counts each)."""
    e = np.asarray(edges, dtype=np.float64)
    fig, ax = new_figure()
    widths = np.diff(e)
    for counts, label, color in (
        (reference, labels[0], REFERENCE_COLOR),
        (current, labels[1], CURRENT_COLOR),
    ):
        c = np.asarray(counts, dtype=np.float64)
        total = c.sum()
        density = np.divide(
            c / total if total else c, widths, where=widths > 0, out=np.zeros_like(c)
        )
        ax.stairs(density, e, label=label, color=color, linewidth=1.6)
    ax.set_title(title)
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    return fig


def bar_comparison(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str = "share",
) -> Figure:
    """Grouped bars: one group per label, one bar per series (e.g. reference vs current shares,
    or a metric for the production model vs the candidate)."""
    fig, ax = new_figure(width=max(6.4, 0.45 * len(labels) * max(len(series), 1)))
    x = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    colors = [REFERENCE_COLOR, CURRENT_COLOR, "#55a868", "#c44e52", "#8172b2"]
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name,
               color=colors[i % len(colors)])  # fmt: skip
    ax.set_xticks(x, [_short(label) for label in labels], rotation=45, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    return fig


def confusion_matrix_figure(
    matrix: npt.ArrayLike, labels: Sequence[str], *, title: str = "confusion matrix"
) -> Figure:
    """A confusion matrix (rows: true label, columns: predicted) with counts in the cells."""
    m = np.asarray(matrix)
    fig, ax = new_figure(width=1.0 + 0.6 * len(labels), height=0.8 + 0.6 * len(labels))
    ax.imshow(m, cmap="Blues")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, [_short(label) for label in labels], rotation=45, ha="right")
    ax.set_yticks(ticks, [_short(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = m.max() / 2 if m.size else 0
    for (i, j), value in np.ndenumerate(m):
        color = "white" if value > threshold else "black"
        ax.text(j, i, f"{value:g}", ha="center", va="center", color=color, fontsize=8)
    ax.set_title(title)
    return fig


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    row_styles: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells are escaped, numbers right-aligned."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        style = f' style="{html.escape(row_styles[i])}"' if row_styles else ""
        cells = "".join(_cell(value) for value in row)
        body.append(f"<tr{style}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_document(title: str, body: str) -> str:
    """A complete, self-contained HTML page (inline CSS, no external resources)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


# --- drift report --------------------------------------------------------------------------------


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


def _severity_order(f: FeatureDrift) -> tuple[int, str]:
    order = {"unknown": 0, "high": 1, "medium": 2, "low": 3, "none": 4}
    return order[f.severity], f.name


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"
