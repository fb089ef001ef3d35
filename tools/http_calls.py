"""Count the HTTP requests a process sends to the MLflow server (benchmarks and call budgets).

Measurement only, so it lives with the dev tooling: ``requests.Session.request`` is wrapped for
a block, in every thread, so it sees MLflow's REST calls and its artifact uploads, listings and
downloads alike.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

__all__ = ["HttpCalls", "count_http_requests", "endpoint_of"]

_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_ID_SEGMENT = re.compile(r"^(m-)?[0-9a-f]{32}$")


def endpoint_of(method: str, url: str) -> str:
    """``METHOD /path`` of a request, ids and artifact file paths replaced by placeholders.

    ``PUT .../mlflow-artifacts/artifacts/<file>`` is an upload, ``GET`` of the same a download and
    ``GET .../mlflow-artifacts/artifacts?path=...`` a listing; logged-model and run ids in a path
    become ``{id}``.
    """
    path = urlsplit(url).path
    if path.startswith(_ARTIFACTS + "/"):
        path = _ARTIFACTS + "/{file}"
    else:
        path = "/".join("{id}" if _ID_SEGMENT.match(p) else p for p in path.split("/"))
    return f"{method.upper()} {path}"


@dataclass
class HttpCalls:
    """HTTP requests counted by :func:`count_http_requests`, by ``METHOD /path``."""

    prefix: str | None = None
    by_endpoint: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total(self) -> int:
        return sum(self.by_endpoint.values())

    def add(self, method: str, url: str) -> None:
        if self.prefix is None or url.startswith(self.prefix):
            endpoint = endpoint_of(method, url)
            with self.lock:
                self.by_endpoint[endpoint] += 1

    def lines(self, limit: int | None = None) -> list[str]:
        """``count  METHOD /path`` lines, most frequent first."""
        return [f"{n:4d}  {e}" for e, n in self.by_endpoint.most_common(limit)]


@contextlib.contextmanager
def count_http_requests(prefix: str | None = None) -> Iterator[HttpCalls]:
    """Count the HTTP requests this process sends through ``requests`` during the block.

    Measurement only (the benchmark and the call-budget test): ``requests.Session.request`` is
    wrapped for the block, in every thread, so it sees MLflow's REST calls and its artifact
    uploads, listings and downloads alike. ``prefix``: count only URLs that start with it (the
    tracking server). A request that urllib3 retries counts once; nested blocks each count.
    """

    calls = HttpCalls(prefix)
    original = requests.Session.request

    def counted(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        calls.add(str(method), str(url))
        return original(self, method, url, *args, **kwargs)

    setattr(requests.Session, "request", counted)  # noqa: B010 (mypy: no method assignment)
    try:
        yield calls
    finally:
        setattr(requests.Session, "request", original)  # noqa: B010
