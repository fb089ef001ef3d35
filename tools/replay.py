"""Traffic replay: labelled rows sent to a running ``retrain serve``, their labels posted back.

Dev tooling for the tests and the demo (like :mod:`tools.synthetic`). :func:`replay` sends the
rows' features in batches (``dataframe_split``, one request id per row, the entity ids of
``entity_column`` when given, so the router splits by entity), optionally paced at ``rate``
requests per second, collects each row's answer (version, arm, prediction), and posts each
row's true label to ``/feedback`` by request id ``label_delay_seconds`` after its answer came.
The :class:`ReplayReport` counts rows per arm and per version, the accuracy of each arm on the
labels the server stored, the failures (by message) and the request latency.

CLI::

    RETRAIN_SERVE_TOKEN=... python -m tools.replay --url http://127.0.0.1:8000 \\
        --parquet .state/demo/data/events [--rows N] [--rate R] [--label-delay S]

The features, target and event-time column come from ``--config`` (default
``$RETRAIN_CONFIG``; ``--model`` picks a model of a directory and uses its
``/models/<name>/`` paths), or ``--features`` and ``--target``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

__all__ = ["TOKEN_ENV", "ReplayReport", "main", "replay"]

#: The bearer token of ``retrain serve`` (``retrain.serving.service.TOKEN_ENV``).
TOKEN_ENV = "RETRAIN_SERVE_TOKEN"
ANSWER_COLUMNS = [
    "row",
    "request_id",
    "entity_id",
    "version",
    "arm",
    "prediction",
    "label",
    "label_stored",
]
_LABELS_PER_POST = 500
_KEPT_MESSAGES = 20


@dataclass
class ReplayReport:
    """What a replay sent and got back.

    ``answers``: one row per answered input row (``row``: its position in the rows given),
    with ``request_id``, ``entity_id``, ``version``, ``arm``, ``prediction``, the true ``label``
    and ``label_stored`` (the server confirmed it). ``failures``: message -> rows refused or lost
    by scoring requests; ``label_failures``: message -> labels not stored. ``latency_ms``: p50,
    p95, p99 and max of the scoring requests (one request = one batch).
    """

    rows: int
    requests: int
    seconds: float
    answers: pd.DataFrame
    failures: dict[str, int] = field(default_factory=dict)
    label_failures: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return len(self.answers)

    @property
    def failed_rows(self) -> int:
        return sum(self.failures.values())

    @property
    def labels_stored(self) -> int:
        return int(self.answers["label_stored"].sum()) if len(self.answers) else 0

    @property
    def by_arm(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.answers["arm"].value_counts().sort_index().items()}

    @property
    def by_version(self) -> dict[int, int]:
        counts = self.answers["version"].value_counts().sort_index()
        return {int(k): int(v) for k, v in zip(counts.index.tolist(), counts.tolist(), strict=True)}

    @property
    def labelled(self) -> dict[str, int]:
        """Stored labels per arm."""
        stored = self.answers[self.answers["label_stored"].astype(bool)]
        return {str(k): int(v) for k, v in stored["arm"].value_counts().sort_index().items()}

    @property
    def accuracy(self) -> dict[str, float]:
        """Per arm: the share of right predictions among the rows whose label was stored."""
        stored = self.answers[self.answers["label_stored"].astype(bool)]
        right = [_same(p, y) for p, y in zip(stored["prediction"], stored["label"], strict=True)]
        by_arm = pd.Series(right, index=stored.index, dtype=float).groupby(stored["arm"]).mean()
        return {str(k): float(v) for k, v in by_arm.sort_index().items()}

    @property
    def latency_ms(self) -> dict[str, float]:
        if not self.latencies_ms:
            return {}
        values = np.asarray(self.latencies_ms, dtype=float)
        q = np.percentile(values, [50, 95, 99])
        return {"p50": float(q[0]), "p95": float(q[1]), "p99": float(q[2]), "max": values.max()}

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready numbers (without the per-row answers)."""
        return {
            "rows": self.rows,
            "answered": self.answered,
            "failed_rows": self.failed_rows,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "by_arm": self.by_arm,
            "by_version": {str(k): v for k, v in self.by_version.items()},
            "labels_stored": self.labels_stored,
            "labelled": self.labelled,
            "accuracy": self.accuracy,
            "latency_ms": self.latency_ms,
            "failures": self.failures,
            "label_failures": self.label_failures,
        }

    def lines(self) -> list[str]:
        """A few lines for a console."""
        arms = ", ".join(
            f"{arm} {n} ({n / self.answered:.0%})" for arm, n in self.by_arm.items() if n
        )
        versions = ", ".join(f"v{v} {n}" for v, n in self.by_version.items())
        accuracy = ", ".join(
            f"{arm} {acc:.3f} on {self.labelled.get(arm, 0)}" for arm, acc in self.accuracy.items()
        )
        lat = self.latency_ms
        out = [
            f"{self.rows} rows in {self.requests} requests over {self.seconds:.1f} s: "
            f"{self.answered} answered, {self.failed_rows} failed",
            f"by arm: {arms or '-'}; by version: {versions or '-'}",
            f"labels stored: {self.labels_stored}; accuracy by arm: {accuracy or '-'}",
        ]
        if lat:
            out.append(
                f"request latency: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
                f"max {lat['max']:.1f} ms"
            )
        for message, n in {**self.failures, **self.label_failures}.items():
            out.append(f"failure x{n}: {message}")
        return out


def replay(
    url: str,
    token: str | None,
    rows: pd.DataFrame,
    *,
    features: Sequence[str],
    target: str,
    entity_column: str | None = None,
    batch_rows: int = 20,
    rate: float | None = None,
    label_delay_seconds: float = 0.0,
    model: str | None = None,
    timeout: float = 30.0,
    client: httpx.Client | None = None,
) -> ReplayReport:
    """Send ``rows`` to the ``retrain serve`` at ``url`` and post their labels (module doc).

    ``rate``: scoring requests per second (``None``: as fast as the server answers);
    ``model``: use the ``/models/<model>/`` paths. Rows whose ``target`` is missing are scored,
    not labelled. Never raises for a refused request: the report counts it.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    if rate is not None and not rate > 0:
        raise ValueError("rate must be positive (None: as fast as possible)")
    if label_delay_seconds < 0:
        raise ValueError("label_delay_seconds must not be negative")
    needed = [*features, target, *([entity_column] if entity_column else [])]
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack column(s) {', '.join(map(repr, missing))}")
    prefix = f"/models/{model}" if model else ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    own = client is None
    http = client or httpx.Client(base_url=url, headers=headers, timeout=timeout)
    frame = rows.reset_index(drop=True)
    run = uuid.uuid4().hex[:8]
    request_ids = [f"replay-{run}-{i}" for i in range(len(frame))]
    entity_ids = _entity_ids(frame[entity_column]) if entity_column else None
    labels: list[Any] = [
        row[0] for row in json.loads(frame[[target]].to_json(orient="split", index=False))["data"]
    ]
    sender = _Sender(http, prefix, headers if client is not None else {})
    pending: collections.deque[tuple[float, list[int]]] = collections.deque()
    answers: list[dict[str, Any]] = []
    started = time.monotonic()
    requests = 0
    try:
        for requests, first in enumerate(range(0, len(frame), batch_rows), start=1):
            if rate is not None:
                _sleep_until(started + (requests - 1) / rate)
            last = min(first + batch_rows, len(frame))
            batch = frame.iloc[first:last]
            body: dict[str, Any] = {
                "dataframe_split": json.loads(
                    batch[list(features)].to_json(orient="split", index=False)
                ),
                "request_ids": request_ids[first:last],
            }
            if entity_ids is not None:
                body["entity_ids"] = entity_ids[first:last]
            got = sender.score(body, last - first)
            for offset, answer in enumerate(got):
                row = first + offset
                answers.append(
                    {
                        "row": row,
                        "request_id": answer.get("request_id") or request_ids[row],
                        "entity_id": answer.get("entity_id"),
                        "version": int(answer["version"]),
                        "arm": str(answer["arm"]),
                        "prediction": answer["prediction"],
                        "label": labels[row],
                        "label_stored": False,
                    }
                )
            rows_to_label = [len(answers) - len(got) + k for k in range(len(got))]
            rows_to_label = [k for k in rows_to_label if answers[k]["label"] is not None]
            if rows_to_label:
                pending.append((time.monotonic() + label_delay_seconds, rows_to_label))
            sender.post_due(pending, answers, time.monotonic())
        while pending:
            _sleep_until(pending[0][0])
            sender.post_due(pending, answers, time.monotonic())
    finally:
        if own:
            http.close()
    table = pd.DataFrame(answers, columns=ANSWER_COLUMNS)
    return ReplayReport(
        rows=len(frame),
        requests=requests,
        seconds=time.monotonic() - started,
        answers=table,
        failures=sender.failures,
        label_failures=sender.label_failures,
        latencies_ms=sender.latencies_ms,
    )


class _Sender:
    """The HTTP side of a replay: scoring requests, label posts, what failed and how long."""

    def __init__(self, http: httpx.Client, prefix: str, headers: dict[str, str]) -> None:
        self.http = http
        self.prefix = prefix
        self.headers = headers
        self.failures: dict[str, int] = {}
        self.label_failures: dict[str, int] = {}
        self.latencies_ms: list[float] = []

    def score(self, body: dict[str, Any], rows: int) -> list[dict[str, Any]]:
        """The per-row answers of one request (``retrain`` merged with ``predictions``), or
        ``[]`` with the failure counted."""
        began = time.perf_counter()
        try:
            response = self.http.post(f"{self.prefix}/invocations", json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            _count(self.failures, f"{type(exc).__name__}: {exc}", rows)
            return []
        self.latencies_ms.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            _count(self.failures, f"HTTP {response.status_code}: {_message(response)}", rows)
            return []
        try:
            answer = response.json()
            rows_back = answer["retrain"]
            predictions = answer["predictions"]
        except (ValueError, KeyError, TypeError):
            _count(self.failures, "an answer without 'predictions' and 'retrain'", rows)
            return []
        if len(rows_back) != rows or len(predictions) != rows:
            _count(self.failures, f"{len(rows_back)} answers to {rows} rows", rows)
            return []
        return [{**r, "prediction": p} for r, p in zip(rows_back, predictions, strict=True)]

    def post_due(
        self,
        pending: collections.deque[tuple[float, list[int]]],
        answers: list[dict[str, Any]],
        now: float,
    ) -> None:
        """Post the labels of every batch due by ``now`` (by request id, in chunks)."""
        due: list[int] = []
        while pending and pending[0][0] <= now:
            due.extend(pending.popleft()[1])
        for first in range(0, len(due), _LABELS_PER_POST):
            chunk = due[first : first + _LABELS_PER_POST]
            body = {
                "labels": [
                    {"request_id": answers[k]["request_id"], "label": answers[k]["label"]}
                    for k in chunk
                ]
            }
            try:
                response = self.http.post(
                    f"{self.prefix}/feedback", json=body, headers=self.headers
                )
            except httpx.HTTPError as exc:
                _count(self.label_failures, f"feedback: {type(exc).__name__}: {exc}", len(chunk))
                continue
            stored = response.json().get("stored") if response.status_code == 200 else None
            if stored != len(chunk):
                message = f"feedback HTTP {response.status_code}: {_message(response)}"
                _count(self.label_failures, message, len(chunk))
                continue
            for k in chunk:
                answers[k]["label_stored"] = True


def _count(where: dict[str, int], message: str, n: int) -> None:
    if message in where or len(where) < _KEPT_MESSAGES:
        where[message] = where.get(message, 0) + n
    else:
        where["(other failures)"] = where.get("(other failures)", 0) + n


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))[:300]
    except ValueError:
        return response.text[:300]


def _entity_ids(values: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else str(v) for v in values]


def _same(prediction: Any, label: Any) -> bool:
    return bool(prediction == label)


def _sleep_until(moment: float) -> None:
    wait = moment - time.monotonic()
    if wait > 0:
        time.sleep(wait)


# --- CLI -----------------------------------------------------------------------------------------


def read_rows(
    path: str | Path, *, event_time: str | None = None, rows: int | None = None
) -> pd.DataFrame:
    """The rows of a parquet file or directory (hive partitions read too), in event-time order
    when ``event_time`` is a column, the first ``rows`` of them."""
    frame = pd.read_parquet(path)
    if event_time and event_time in frame.columns:
        frame = frame.sort_values(event_time, kind="stable")
    if rows is not None:
        frame = frame.head(rows)
    return frame.reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.replay",
        description="Replay labelled parquet rows through a running `retrain serve` and post "
        f"their labels (the bearer token from ${TOKEN_ENV}).",
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--parquet", required=True, help="a parquet file or directory")
    parser.add_argument("--rows", type=int, help="replay the first N rows (event-time order)")
    parser.add_argument("--rate", type=float, help="requests per second (default: no limit)")
    parser.add_argument(
        "--label-delay", type=float, default=0.0, help="seconds from an answer to its label"
    )
    parser.add_argument("--batch-rows", type=int, default=20, help="rows per request")
    parser.add_argument("--entity-column", help="column of the entity ids (the split key)")
    parser.add_argument(
        "--config", default=os.environ.get("RETRAIN_CONFIG"), help="retrain config file or dir"
    )
    parser.add_argument("--model", help="a model of a config directory (/models/<name>/ paths)")
    parser.add_argument("--features", help="comma-separated feature columns (without --config)")
    parser.add_argument("--target", help="the label column (without --config)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    features, target, event_time = _schema(args, parser)
    rows = read_rows(args.parquet, event_time=event_time, rows=args.rows)
    report = replay(
        args.url,
        os.environ.get(TOKEN_ENV) or None,
        rows,
        features=features,
        target=target,
        entity_column=args.entity_column,
        batch_rows=args.batch_rows,
        rate=args.rate,
        label_delay_seconds=args.label_delay,
        model=args.model,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return 1 if report.failures or report.label_failures else 0


def _schema(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[list[str], str, str | None]:
    """Features, target and event-time column, from the flags or the config."""
    if args.features and args.target:
        return [f.strip() for f in args.features.split(",") if f.strip()], args.target, None
    if not args.config:
        parser.error("give --config (or $RETRAIN_CONFIG), or --features and --target")
    from retrain.config import load_catalog

    config = load_catalog(args.config).select(args.model)
    features = list(config.model.features.all)
    if args.features:
        features = [f.strip() for f in args.features.split(",") if f.strip()]
    return (
        features,
        args.target or config.model.target,
        getattr(config.data.source, "event_time_column", None),
    )


if __name__ == "__main__":
    sys.exit(main())
