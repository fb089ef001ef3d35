"""Regenerate the generated parts of README.md (the configuration reference)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from retrain.config import reference_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def render(text: str) -> str:
    """``text`` with the block between the markers replaced by the current reference."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{README}: markers {START} / {END} not found")
    return pattern.sub(lambda _: f"{START}\n{reference_markdown()}{END}", text)


if __name__ == "__main__":
    current = README.read_text(encoding="utf-8")
    updated = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if updated == current else 1)
    README.write_text(updated, encoding="utf-8")
    print(f"updated {README}")
