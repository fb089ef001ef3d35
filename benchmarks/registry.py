"""Registry timings against a local MLflow server: register (goal < 2 s) and rollback (< 1 s).

    python benchmarks/registry.py [--url http://127.0.0.1:5000] [--runs 7] [--prefill 1000]

Without ``--url`` a throw-away server is started in a temporary directory (and stopped). The
model is a small HistGradientBoosting pipeline on 200 rows (a tree ensemble, so skops needs its
computed trusted types); training is outside the timings. A rollback is everything
``ModelRegistry.rollback`` does: read aliases and history, check the target's status, download,
load and predict on its input example, write the audit entry, move the alias, write both status
tags, mark the entry done. Consecutive rollbacks alternate between two versions (each one is a
rollback of the previous rollback). Prints the median, min and max of ``--runs`` runs.
``--prefill N`` first adds N audit entries, to see how the history size affects the timings.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import parse_config
from retrain.notify import Notification
from retrain.registry import AliasMove, AuditEntry, ModelRegistry
from tools.mlflow_server import MlflowServer

GOALS = {"register": 2.0, "rollback": 1.0}


class _Quiet:
    def notify(self, notification: Notification) -> None:
        pass


def _model() -> tuple[Any, pd.DataFrame]:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=200),
            "x2": rng.normal(size=200),
            "segment": rng.choice(["a", "b", "c"], size=200),
        }
    )
    label = (frame["x1"] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    features = make_column_transformer((OrdinalEncoder(), ["segment"]), remainder="passthrough")
    model = make_pipeline(features, HistGradientBoostingClassifier(max_iter=30))
    return model.fit(frame, label), frame


def _record(i: int) -> dict[str, Any]:
    return {
        "algorithm": "HistGradientBoostingClassifier",
        "training_data_version": f"bench-{i}",
        "metrics": {"accuracy": 0.9},
        "features": ["x1", "x2", "segment"],
        "retraining_id": f"bench_{i:03d}",
        "watermark": "2024-01-15T00:00:00Z",
    }


def _time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _prefill(registry: ModelRegistry, count: int) -> None:
    def write(n: int) -> None:
        entry = AuditEntry.new(
            op="note",
            moves=(AliasMove("staging", None, None),),
            statuses={},
            reason=f"prefill {n}",
            run_id=None,
            actor=registry.actor,
        )
        with registry._client.calls("prefill"):
            registry._audit.finish(registry._audit.write(entry), "done")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(count)))


def run(url: str, runs: int, prefill: int = 0) -> dict[str, list[float]]:
    config = parse_config(
        {
            "model": {
                "name": f"bench-{uuid.uuid4().hex[:8]}",
                "target": "label",
                "features": {"numeric": ["x1", "x2"], "categorical": ["segment"]},
            },
            "data": {"source": {"kind": "parquet", "path": "unused", "event_time_column": "t"}},
            "registry": {"tracking_uri": url},
        }
    )
    registry = ModelRegistry(config, actor="benchmark", notifier=_Quiet())
    model, frame = _model()
    example = frame.head(10)
    counter = iter(range(10_000))

    def register() -> int:
        i = next(counter)
        info = registry.register(
            model, input_example=example, record=_record(i), idempotency_key=f"bench-{i}"
        )
        return info.version

    register()  # warm-up: imports, experiment and registered model creation
    _prefill(registry, prefill)
    timings: dict[str, list[float]] = {"register": [], "re-register (same key)": []}
    for _ in range(runs):
        timings["register"].append(_time(register))
    for _ in range(runs):
        timings["re-register (same key)"].append(
            _time(
                lambda: registry.register(
                    model, input_example=example, record=_record(0), idempotency_key="bench-0"
                )
            )
        )
    for _ in range(2):
        version = register()
        registry.promote(version, "canary", reason="benchmark")
        registry.promote(version, "production", reason="benchmark")
    registry.rollback(reason="warm-up")
    timings["rollback"] = [_time(lambda: registry.rollback(reason="bench")) for _ in range(runs)]
    timings["history read"] = [_time(registry.history) for _ in range(runs)]
    print(f"({len(registry.history())} audit entries, {len(registry.versions())} versions)")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="use this running MLflow server instead of a fresh one")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--prefill", type=int, default=0, help="add N audit entries first (history size effect)"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # rollbacks log at CRITICAL by design
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    if args.url:
        timings = run(args.url, args.runs, args.prefill)
    else:
        with (
            tempfile.TemporaryDirectory(prefix="retrain-bench-") as tmp,
            MlflowServer(root=tmp) as server,
        ):
            print(f"local MLflow server at {server.url}")
            timings = run(server.url, args.runs, args.prefill)
    print(f"{'operation':<24}{'median':>9}{'min':>9}{'max':>9}   goal")
    for name, values in timings.items():
        goal = GOALS.get(name)
        verdict = ""
        if goal is not None:
            ok = statistics.median(values) < goal
            verdict = f"< {goal:g} s  {'OK' if ok else 'MISSED'}"
        print(
            f"{name:<24}{statistics.median(values):>8.3f}s{min(values):>8.3f}s"
            f"{max(values):>8.3f}s   {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
