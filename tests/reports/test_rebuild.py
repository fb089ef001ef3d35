"""Tests of retrain.reports.rebuild: the comprehensive tests' figures and HTML fragment."""

from __future__ import annotations

import base64

import pytest
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression

from retrain.rebuild_checks import (
    CalibrationResult,
    CrossValidation,
    LatencyAndSize,
    RobustnessResult,
    SliceReport,
    calibration,
    cross_validated,
    latency_and_size,
    robustness,
    slice_report,
)
from retrain.reports.figures import figure_to_base64_png
from retrain.reports.rebuild import (
    cv_intervals_figure,
    rebuild_checks_html,
    rebuild_report_html,
    reliability_figure,
    slices_figure,
)
from tests.test_rebuild_checks import FEATURES, segment_pipeline, slice_regression

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
Checks = tuple[CrossValidation, SliceReport, CalibrationResult, RobustnessResult, LatencyAndSize]


@pytest.fixture(scope="module")
def checks() -> Checks:
    """Every check on the slice-regression case (the candidate fails the slice check)."""
    candidate, production, frame = slice_regression()
    small = frame.head(600)
    unfitted = segment_pipeline(["x1", "x2"], LogisticRegression())
    return (
        cross_validated(unfitted, production, small, "y", folds=3),
        slice_report(candidate, production, frame, "y", categorical=["segment"], numeric=["x1"]),
        calibration(candidate, production, frame, "y"),
        robustness(candidate, frame, FEATURES, ["no", "yes"], rows=20),
        latency_and_size(candidate, production, frame, features=FEATURES, rows=100, repeats=1),
    )


class TestFigures:
    @pytest.mark.parametrize(
        ("make", "index"),
        [
            pytest.param(cv_intervals_figure, 0, id="cross-validated intervals"),
            pytest.param(slices_figure, 1, id="accuracy per slice"),
            pytest.param(reliability_figure, 2, id="reliability diagram"),
        ],
    )
    def test_renders_to_png(self, checks: Checks, make: object, index: int) -> None:
        fig = make(checks[index])  # type: ignore[operator]
        assert isinstance(fig, Figure)
        assert base64.b64decode(figure_to_base64_png(fig)).startswith(PNG_MAGIC)

    def test_the_regressed_slice_comes_first_in_red(self, checks: Checks) -> None:
        fig = slices_figure(checks[1], limit=3)
        labels = fig.axes[0].get_xticklabels()
        assert len(labels) == 3
        assert labels[0].get_text() == "segment=c"
        assert labels[0].get_color() == "#c44e52"

    def test_the_reliability_diagram_has_both_curves_and_the_diagonal(self, checks: Checks) -> None:
        legend = reliability_figure(checks[2]).axes[0].get_legend()
        assert legend is not None
        texts = [t.get_text() for t in legend.texts]
        assert texts[0] == "perfect"
        assert [t.split(" ")[0] for t in texts[1:]] == ["production", "candidate"]


class TestHtml:
    def test_the_fragment_lists_every_check_and_shows_the_figures(self, checks: Checks) -> None:
        cv, slices, calib, robust, latency = checks
        fragment = rebuild_checks_html(
            cross_validation=cv, slices=slices, calibration=calib, robustness=robust,
            latency=latency,
        )  # fmt: skip
        assert not fragment.startswith("<!DOCTYPE")
        for name, _, _ in (c.checklist_item() for c in checks):
            assert f"<td>{name}</td>" in fragment
        assert "<td>slices</td><td>FAILED</td>" in fragment
        assert "<td>segment=c</td>" in fragment
        assert fragment.count('src="data:image/png;base64,') == 3
        assert "://" not in fragment  # no external resources

    def test_only_the_given_checks_are_shown(self, checks: Checks) -> None:
        fragment = rebuild_checks_html(robustness=checks[3])
        assert "<td>robustness</td><td>passed</td>" in fragment
        assert "<h3>Robustness</h3>" in fragment
        assert "<img" not in fragment
        assert "Slices" not in fragment

    def test_the_page_wraps_the_fragment(self, checks: Checks) -> None:
        page = rebuild_report_html("rebuild <2026-05>", slices=checks[1])
        assert page.startswith("<!DOCTYPE html>")
        assert "<h1>rebuild &lt;2026-05&gt;</h1>" in page
        assert page.count("<img") == 1

    def test_the_fragment_is_a_lazy_export(self) -> None:
        import retrain.reports

        assert retrain.reports.rebuild_checks_html is rebuild_checks_html
