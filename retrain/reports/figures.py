"""Figures for reports: reference-vs-current histograms and bars, confusion matrices, and a
figure as an inline ``<img>``.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend
state, safe in worker threads) and embedded in HTML as base64 PNG, so a report is one file that
can be stored as an MLflow artifact or served by the UI.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

REFERENCE_COLOR = "#4c72b0"
CURRENT_COLOR = "#dd8452"


def new_figure(width: float = 6.4, height: float = 3.0) -> tuple[Figure, Axes]:
    """A figure with one axes, drawn on the Agg canvas."""
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


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
