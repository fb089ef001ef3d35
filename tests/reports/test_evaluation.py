"""Tests of retrain.reports.evaluation: the evaluation report as a self-contained HTML page."""

from __future__ import annotations

from retrain.config import EvaluationSettings
from retrain.evaluate import ModelScores, gate
from retrain.reports.evaluation import evaluation_report_html


class TestEvaluationReportHtml:
    @staticmethod
    def scores(accuracy: float, matrix: list[list[int]]) -> ModelScores:
        return ModelScores(
            {"accuracy": accuracy, "f1": accuracy - 0.05}, {}, matrix, ["no", "yes"], 100
        )

    def test_shows_the_gate_the_metrics_and_each_confusion_matrix(self) -> None:
        candidate = self.scores(0.9, [[50, 3], [7, 40]])
        production = self.scores(0.88, [[48, 5], [7, 40]])
        result = gate(candidate.metrics, production.metrics, EvaluationSettings())
        page = evaluation_report_html(candidate, production, result, title="churn <v2>")
        assert page.startswith("<!DOCTYPE html>")
        assert "<h1>churn &lt;v2&gt;</h1>" in page
        assert f"<h2>Gate: {result.status.upper()}</h2>" in page
        assert "<th>metric</th><th>production</th><th>candidate</th>" in page
        assert page.count('src="data:image/png;base64,') == 3
        assert "://" not in page  # no external resources
        alone = evaluation_report_html(candidate, None, result, title="first model")
        assert alone.count("<img") == 2
        assert "production confusion matrix" not in alone
