"""Write the reliability rows at the end of the session (see ``harness.write_rows``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.harness import write_rows


@pytest.fixture(scope="session", autouse=True)
def _reliability_rows() -> Iterator[None]:
    yield
    write_rows()
