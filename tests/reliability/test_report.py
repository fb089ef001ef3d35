"""docs/reliability.md is the suite's figures table: generated, complete, and clean."""

from __future__ import annotations

import re
from pathlib import Path

from tools.reliability_report import GROUPS, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def test_the_page_shows_at_least_60_cases_and_no_state_change() -> None:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(r"\*\*(\d+) cases, (\d+) state changes\.\*\*", text)
    assert match, "regenerate it: tools/reliability_report.py"
    assert int(match[1]) >= 60 and int(match[2]) == 0
    for group in GROUPS:
        assert f"| {group} |" in text, f"no {group} cases in the page"


def test_the_renderer_counts_and_hides_what_varies() -> None:
    rows = [
        {
            "group": "config",
            "case": "c1",
            "error": "/tmp/pytest-of-root/pytest-3/t0/bad.yaml: bad at 127.0.0.1:5555",
            "changes": [],
            "seconds": 0.5,
        },
        {
            "group": "races",
            "case": "r1",
            "error": "held",
            "changes": ["aliases changed"],
            "seconds": 2.0,
        },
    ]
    page = render(rows)
    assert "**2 cases, 1 state changes.**" in page
    assert "<tmp>/bad.yaml: bad at 127.0.0.1:<port>" in page
