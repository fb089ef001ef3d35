"""Tests of retrain.reports.drift: the drift report as a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retrain.drift import check_drift
from retrain.reports.drift import write_drift_report
from tests.drift.helpers import SETTINGS, benchmark, check


class TestWriteDriftReport:
    def test_writes_a_self_contained_page_with_plots(self, tmp_path: Path) -> None:
        _, cur, _, profile = benchmark(10_000)
        report = check_drift(profile, cur, settings=SETTINGS)
        text = write_drift_report(report, tmp_path / "out" / "drift.html")
        assert (tmp_path / "out" / "drift.html").read_text() == text
        assert text.count('src="data:image/png;base64,') == len(report.drifted) == 5
        assert "http://" not in text and "https://" not in text
        assert "<td>num_mean_shift_0_25sd</td>" in text
        few = check_drift(
            profile, cur, settings=SETTINGS, columns=["num_same_normal", "cat_same_three"]
        )
        assert write_drift_report(few).count("<img") == 0  # nothing drifted
        assert write_drift_report(few, plot_all=True).count("<img") == 2

    def test_handles_degenerate_features(self) -> None:
        ref = pd.DataFrame({"k": [5.0] * 500, "m": np.arange(500.0), "c": ["a"] * 500})
        cur = pd.DataFrame({"k": [7.0] * 500, "c": [None] * 500})
        report = check(ref, cur)
        text = write_drift_report(report, plot_all=True)
        assert "missing_column" in text and "constant_reference" in text
        assert text.count("<img") == 1  # the constant feature; nothing to plot for the others
