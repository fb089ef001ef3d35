"""Tests of retrain.reports.canary: the canary judge's looks as a figure."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from retrain.canary import ArmStats, CanaryEvaluation, judge
from retrain.config.schema import CanarySettings
from retrain.reports import evaluations_figure
from retrain.reports.figures import figure_to_base64_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
START = datetime(2026, 3, 1, tzinfo=UTC)
SETTINGS = CanarySettings()


def looks(count: int) -> list[CanaryEvaluation]:
    """A canary as accurate as production, judged every 30 minutes (the last looks promote)."""
    out = [judge(ArmStats(0, 0), ArmStats(0, 0), SETTINGS, started_at=START, now=START)]
    for i in range(1, count + 1):
        n = 2500 * i
        out.append(
            judge(ArmStats(9 * n, round(9 * n * 0.85)), ArmStats(n, round(n * 0.85)), SETTINGS,
                  started_at=START, now=START + timedelta(minutes=30 * i))
        )  # fmt: skip
    return out


class TestEvaluationsFigure:
    def test_renders_d_hat_its_interval_and_the_lines(self) -> None:
        evaluations = looks(8)
        assert evaluations[-1].decision.value == "promote"
        fig = evaluations_figure(evaluations)
        data = base64.b64decode(figure_to_base64_png(fig))
        assert data.startswith(PNG_MAGIC)
        ax = fig.axes[0]
        labels = ax.get_legend_handles_labels()[1]
        assert labels == ["-margin (-0.01)", "confidence sequence", "D_hat", "promote"]
        low, high = ax.get_ylim()
        assert low < -SETTINGS.margin and high > 0

    def test_looks_without_labels_are_left_out(self) -> None:
        fig = evaluations_figure(looks(0))
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert texts == ["no labelled looks yet"]
        assert base64.b64decode(figure_to_base64_png(fig)).startswith(PNG_MAGIC)

    def test_no_looks_at_all(self) -> None:
        fig = evaluations_figure([])
        assert [t.get_text() for t in fig.axes[0].texts] == ["no labelled looks yet"]
