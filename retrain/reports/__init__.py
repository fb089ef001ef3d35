"""Presentation: figures and self-contained HTML pages for drift and evaluation reports.

The computation modules (:mod:`retrain.drift`, :mod:`retrain.evaluate`) never import this package
or matplotlib; it imports their result types. Modules, bottom up: :mod:`~retrain.reports.page`
(HTML tables and the page shell), :mod:`~retrain.reports.figures` (matplotlib figures),
:mod:`~retrain.reports.drift` and :mod:`~retrain.reports.evaluation` (the two reports),
:mod:`~retrain.reports.canary` (the canary judge's looks, a figure). Public names resolve
lazily: importing this package loads no matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "html_document": "retrain.reports.page",
    "html_table": "retrain.reports.page",
    "CURRENT_COLOR": "retrain.reports.figures",
    "REFERENCE_COLOR": "retrain.reports.figures",
    "bar_comparison": "retrain.reports.figures",
    "confusion_matrix_figure": "retrain.reports.figures",
    "figure_to_base64_png": "retrain.reports.figures",
    "histogram_comparison": "retrain.reports.figures",
    "img_tag": "retrain.reports.figures",
    "new_figure": "retrain.reports.figures",
    "drift_report_html": "retrain.reports.drift",
    "write_drift_report": "retrain.reports.drift",
    "evaluation_report_html": "retrain.reports.evaluation",
    "evaluations_figure": "retrain.reports.canary",
    "rebuild_checks_html": "retrain.reports.rebuild",
}

__all__ = [
    "CURRENT_COLOR",
    "REFERENCE_COLOR",
    "bar_comparison",
    "confusion_matrix_figure",
    "drift_report_html",
    "evaluation_report_html",
    "evaluations_figure",
    "figure_to_base64_png",
    "histogram_comparison",
    "html_document",
    "html_table",
    "img_tag",
    "new_figure",
    "rebuild_checks_html",
    "write_drift_report",
]

if TYPE_CHECKING:
    from retrain.reports.canary import evaluations_figure
    from retrain.reports.drift import drift_report_html, write_drift_report
    from retrain.reports.evaluation import evaluation_report_html
    from retrain.reports.figures import (
        CURRENT_COLOR,
        REFERENCE_COLOR,
        bar_comparison,
        confusion_matrix_figure,
        figure_to_base64_png,
        histogram_comparison,
        img_tag,
        new_figure,
    )
    from retrain.reports.page import html_document, html_table
    from retrain.reports.rebuild import rebuild_checks_html


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retrain.reports' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
