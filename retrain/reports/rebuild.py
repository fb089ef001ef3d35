"""The monthly full rebuild's comprehensive tests in a report: the checklist, the cross-validated
intervals, the per-slice accuracies and the reliability diagram (:mod:`retrain.rebuild_checks`)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from retrain.rebuild_checks import (
    CalibrationResult,
    ChecklistItem,
    CrossValidation,
    LatencyAndSize,
    RobustnessResult,
    SliceReport,
)
from retrain.reports.figures import (
    CURRENT_COLOR,
    REFERENCE_COLOR,
    bar_comparison,
    img_tag,
    new_figure,
)
from retrain.reports.page import html_document, html_table
from retrain.search import SearchResult

__all__ = [
    "cv_intervals_figure",
    "rebuild_checks_html",
    "rebuild_report_html",
    "reliability_figure",
    "search_html",
    "slices_figure",
]

PASS_STYLE = "background: #e8f5e9"
FAIL_STYLE = "background: #ffcdd2"
_MODELS = (("production", REFERENCE_COLOR), ("candidate", CURRENT_COLOR))


def cv_intervals_figure(result: CrossValidation) -> Figure:
    """Left: each metric's mean and interval for production and the candidate; right: the
    paired difference's interval, with the zero line and ``-margin``."""
    fig = Figure(figsize=(8.0, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    names = [m.metric for m in result.metrics]
    x = np.arange(len(names))
    for offset, (model, color) in zip((-0.12, 0.12), _MODELS, strict=True):
        intervals = [getattr(m, model) for m in result.metrics]
        means = np.array([i.mean for i in intervals])
        errors = np.array(
            [[i.mean - i.low for i in intervals], [i.high - i.mean for i in intervals]]
        )
        left.errorbar(x + offset, means, yerr=errors, fmt="o", capsize=4, color=color, label=model)
    left.set_xticks(x, names)
    left.set_title(f"{result.folds}-fold CV, {result.confidence:.0%} intervals")
    left.legend(frameon=False, fontsize=8)
    diffs = [m.difference for m in result.metrics]
    means = np.array([d.mean for d in diffs])
    errors = np.array([[d.mean - d.low for d in diffs], [d.high - d.mean for d in diffs]])
    right.errorbar(x, means, yerr=errors, fmt="o", capsize=4, color="black")
    right.axhline(0.0, color="black", linewidth=0.8)
    right.axhline(-result.margin, color=CURRENT_COLOR, linestyle="--", linewidth=1.0,
                  label=f"-margin ({-result.margin:g})")  # fmt: skip
    right.set_xticks(x, names)
    right.set_title("candidate - production")
    right.legend(frameon=False, fontsize=8)
    return fig


def slices_figure(result: SliceReport, *, limit: int = 30) -> Figure:
    """Both models' accuracy per slice, the ``limit`` slices of largest loss first; the names of
    regressed slices are red."""
    shown = sorted(result.slices, key=lambda s: s.difference)[:limit]
    fig = bar_comparison(
        [s.name for s in shown],
        {
            "production": [s.production_accuracy for s in shown],
            "candidate": [s.candidate_accuracy for s in shown],
        },
        title=f"accuracy per slice (regression: >= {result.min_slice_rows} rows and worse by "
        f"more than {result.slice_margin:g})",
        ylabel="accuracy",
    )
    for label, score in zip(fig.axes[0].get_xticklabels(), shown, strict=True):
        if score.regression:
            label.set_color("#c44e52")
    return fig


def reliability_figure(result: CalibrationResult) -> Figure:
    """The reliability diagram: observed frequency against mean predicted probability per bin,
    for both models, with the diagonal of perfect calibration."""
    fig, ax = new_figure(width=4.8, height=4.2)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1.0, label="perfect")
    for model, color in _MODELS:
        scores = getattr(result, model)
        ax.plot(scores.mean_predicted, scores.observed, marker="o", color=color,
                label=f"{model} (ECE {scores.ece:.3f})")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"mean predicted {result.event}")
    ax.set_ylabel("observed frequency")
    ax.set_title("reliability diagram")
    ax.legend(frameon=False, fontsize=8)
    return fig


def _checklist(items: Sequence[ChecklistItem]) -> str:
    rows = [[name, "passed" if passed else "FAILED", detail] for name, passed, detail in items]
    styles = [PASS_STYLE if passed else FAIL_STYLE for _, passed, _ in items]
    return html_table(["check", "result", "figures"], rows, row_styles=styles)


def rebuild_checks_html(
    *,
    cross_validation: CrossValidation | None = None,
    slices: SliceReport | None = None,
    calibration: CalibrationResult | None = None,
    robustness: RobustnessResult | None = None,
    latency: LatencyAndSize | None = None,
    not_run: Sequence[str] = (),
) -> str:
    """An HTML fragment (to embed in a page): the checklist of the checks given (and why others
    did not run), then a section per check with its table and figure."""
    checks = [cross_validation, slices, calibration, robustness, latency]
    parts = ["<h2>Comprehensive tests</h2>", _checklist([c.checklist_item() for c in checks if c])]
    if not_run:
        parts.append(
            "<p>Not run:</p><ul>"
            + "".join(f"<li>{html.escape(why)}</li>" for why in not_run)
            + "</ul>"
        )
    if cross_validation is not None:
        rows = [
            [m.metric, *(getattr(m, k).mean for k in ("production", "candidate", "difference")),
             f"[{m.difference.low:+.4f}, {m.difference.high:+.4f}]"]
            for m in cross_validation.metrics
        ]  # fmt: skip
        parts += [
            "<h3>Cross-validated metrics</h3>",
            html_table(["metric", "production", "candidate", "difference", "interval"], rows),
            img_tag(cv_intervals_figure(cross_validation), "cross-validated intervals"),
        ]
    if slices is not None:
        rows = [
            [s.name, s.rows, s.production_accuracy, s.candidate_accuracy, s.difference]
            for s in slices.slices
        ]
        styles = [FAIL_STYLE if s.regression else "" for s in slices.slices]
        parts += [
            "<h3>Slices</h3>",
            html_table(
                ["slice", "rows", "production", "candidate", "difference"], rows, row_styles=styles
            ),
            img_tag(slices_figure(slices), "accuracy per slice"),
        ]
    if calibration is not None:
        rows = [
            [name, getattr(calibration, name).brier, getattr(calibration, name).ece]
            for name, _ in _MODELS
        ]
        parts += [
            "<h3>Calibration</h3>",
            html_table(["model", "Brier", "ECE"], rows),
            img_tag(reliability_figure(calibration), "reliability diagram"),
        ]
    if robustness is not None:
        rows = [[p.name, "ok" if p.ok else "FAILED", p.error] for p in robustness.perturbations]
        styles = [PASS_STYLE if p.ok else FAIL_STYLE for p in robustness.perturbations]
        parts += [
            "<h3>Robustness</h3>",
            html_table(["perturbation", "result", "error"], rows, row_styles=styles),
        ]
    if latency is not None:
        rows = [
            [name, cost.seconds_per_row, cost.single_row_seconds, cost.size_bytes]
            for name, cost in (("production", latency.production), ("candidate", latency.candidate))
        ]
        parts += [
            "<h3>Latency and size</h3>",
            html_table(["model", "seconds per row", "one row (s)", "skops bytes"], rows),
        ]
    return "\n".join(parts)


def search_html(result: SearchResult) -> str:
    """An HTML fragment: the hyperparameter search, its best and the configured parameters."""
    names = sorted(set(result.best_params) | set(result.configured_params))
    rows = [[n, result.configured_params.get(n), result.best_params.get(n)] for n in names]
    return "\n".join(
        [
            "<h2>Hyperparameter search</h2>",
            f"<p>{html.escape(result.summary())}</p>",
            html_table(["parameter", "configured", "search's best"], rows),
            img_tag(
                bar_comparison(
                    [result.scoring],
                    {
                        "configured": [result.configured_score],
                        "search's best": [result.best_score],
                    },
                    title=f"{result.cv_folds}-fold CV {result.scoring}",
                    ylabel="score",
                ),
                "search vs configured parameters",
            ),
        ]
    )


def rebuild_report_html(
    title: str,
    *,
    cross_validation: CrossValidation | None = None,
    slices: SliceReport | None = None,
    calibration: CalibrationResult | None = None,
    robustness: RobustnessResult | None = None,
    latency: LatencyAndSize | None = None,
) -> str:
    """A self-contained page: the title and :func:`rebuild_checks_html`."""
    fragment = rebuild_checks_html(
        cross_validation=cross_validation,
        slices=slices,
        calibration=calibration,
        robustness=robustness,
        latency=latency,
    )
    return html_document(title, f"<h1>{html.escape(title)}</h1>\n{fragment}")
