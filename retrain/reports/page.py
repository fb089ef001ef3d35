"""Self-contained HTML pages: escaped tables and the document shell with inline CSS (no external
resources), shared by every report."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem;
       color: #222; max-width: 1100px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.summary span { display: inline-block; margin-right: 1.5rem; }
.muted { color: #666; font-size: 0.85rem; }
figure { margin: 1rem 0; } img { max-width: 100%; }
"""


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    row_styles: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells are escaped, numbers right-aligned."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        style = f' style="{html.escape(row_styles[i])}"' if row_styles else ""
        cells = "".join(_cell(value) for value in row)
        body.append(f"<tr{style}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_document(title: str, body: str) -> str:
    """A complete, self-contained HTML page (inline CSS, no external resources)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"
