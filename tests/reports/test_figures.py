"""Tests of retrain.reports.figures: figures render to PNG."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from retrain.reports.figures import (
    bar_comparison,
    confusion_matrix_figure,
    figure_to_base64_png,
    histogram_comparison,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class TestFigures:
    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(
                lambda: histogram_comparison([0, 1, 2, 4], [5, 3, 1], [1, 3, 5], title="h"),
                id="a histogram comparison renders",
            ),
            pytest.param(
                lambda: bar_comparison(
                    ["accuracy", "f1"], {"production": [0.9, 0.8], "candidate": [0.92, 0.81]},
                    title="metrics", ylabel="score",
                ),
                id="a metric comparison renders",
            ),
            pytest.param(
                lambda: confusion_matrix_figure([[50, 3], [7, 40]], ["no", "yes"]),
                id="a confusion matrix renders",
            ),
        ],
    )  # fmt: skip
    def test_renders_to_png(self, make: object) -> None:
        fig = make()  # type: ignore[operator]
        data = base64.b64decode(figure_to_base64_png(fig))
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 2_000

    def test_confusion_matrix_writes_every_count(self) -> None:
        fig = confusion_matrix_figure(np.array([[50, 3], [7, 40]]), ["no", "yes"])
        texts = sorted(t.get_text() for t in fig.axes[0].texts)
        assert texts == ["3", "40", "50", "7"]

    def test_histogram_with_an_empty_sample_does_not_divide_by_zero(self) -> None:
        fig = histogram_comparison([0, 1, 2], [0, 0], [1, 1], title="empty reference")
        assert base64.b64decode(figure_to_base64_png(fig)).startswith(PNG_MAGIC)
