"""Tests of retrain.reports.page: HTML helpers escape and inline everything."""

from __future__ import annotations

from retrain.reports.figures import bar_comparison, img_tag
from retrain.reports.page import html_document, html_table


class TestHtml:
    def test_table_escapes_cells_and_aligns_numbers(self) -> None:
        text = html_table(["a<b", "n"], [["<script>", 0.123456], [None, 7]], row_styles=["x", "y"])
        assert "<script>" not in text
        assert "&lt;script&gt;" in text and "a&lt;b" in text
        assert '<td class="num">0.1235</td>' in text and '<td class="num">7</td>' in text
        assert '<tr style="x">' in text

    def test_document_is_self_contained(self) -> None:
        fig = bar_comparison(["a"], {"x": [1.0]}, title="t")
        page = html_document("T & S", img_tag(fig, 'alt "quoted"'))
        assert page.startswith("<!DOCTYPE html>")
        assert "<title>T &amp; S</title>" in page
        assert 'src="data:image/png;base64,' in page
        assert 'alt="alt &quot;quoted&quot;"' in page
        assert "http" not in page  # no external resources
