"""The evaluation report as a self-contained HTML page: the gate's verdict and reasons, the
holdout metrics of candidate and production, and their confusion matrices."""

from __future__ import annotations

import html

from retrain.evaluate import GateResult, ModelScores
from retrain.reports.figures import bar_comparison, confusion_matrix_figure, img_tag
from retrain.reports.page import html_document, html_table


def evaluation_report_html(
    candidate: ModelScores,
    production: ModelScores | None,
    result: GateResult,
    *,
    title: str,
    more: str = "",
) -> str:
    """A self-contained HTML page: metric comparison, confusion matrices and the gate reasons,
    then ``more`` (an HTML fragment: a full rebuild's search and comprehensive tests)."""
    names = sorted(candidate.metrics)
    series = {"candidate": [candidate.metrics[m] for m in names]}
    if production is not None:
        series = {"production": [production.metrics.get(m, 0.0) for m in names], **series}
    rows = [
        [m, production.metrics.get(m) if production else None, candidate.metrics[m]] for m in names
    ]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<h2>Gate: {html.escape(result.status.upper())}</h2>",
        "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons) + "</ul>",
        html_table(["metric", "production", "candidate"], rows),
        img_tag(
            bar_comparison(names, series, title="holdout metrics", ylabel="value"),
            "holdout metrics",
        ),
        img_tag(
            confusion_matrix_figure(
                candidate.confusion_matrix, candidate.labels, title="candidate"
            ),
            "candidate confusion matrix",
        ),
    ]
    if production is not None:
        parts.append(
            img_tag(
                confusion_matrix_figure(
                    production.confusion_matrix, production.labels, title="production"
                ),
                "production confusion matrix",
            )
        )
    if more:
        parts.append(more)
    return html_document(title, "\n".join(parts))
