"""The Retraining view's model page at size: 100 versions, 1,000 retraining-log records.

Times (1) rendering the HTML from a synthetic ``ModelOverview`` (``render.model_page``) and
(2) the whole request ``GET /models/<name>?limit=1000`` through FastAPI's ``TestClient`` on the
plugin's app, with the user, permissions, MLflow source and Airflow run store replaced by
in-memory stand-ins (dependency overrides), so it measures the app and the rendering, not
MLflow. The issue's bar: under 1 s.

    .venv/bin/python benchmarks/plugin.py [--versions 100] [--records 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODEL = "churn-classifier"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def synthetic_overview(versions: int = 100, records: int = 1000) -> Any:
    """A ``ModelOverview`` as big as asked, with every section filled."""
    from retrain.log import RetrainingRecord
    from retrain.overview import DriftView, ModelOverview, ProductionChange, VersionRow

    start = NOW - timedelta(days=7 * versions)
    rows = []
    for v in range(versions, 0, -1):
        aliases = ("production",) if v == versions - 1 else ("canary",) if v == versions else ()
        rows.append(
            VersionRow(
                version=v,
                aliases=aliases,
                status="production" if aliases == ("production",) else "archived",
                created_at=(start + timedelta(days=7 * v)).isoformat(),
                data_version=f"{(start + timedelta(days=7 * v)):%Y-%m-%d}",
                retraining_id=f"retrain_{v:04d}",
                git_commit=f"{v:040x}",
                gate="passed",
                metrics={"accuracy": 0.9 + v / 10000, "f1": 0.85, "precision": 0.88, "recall": 0.8},
                trigger_reasons=("weekly_retraining: days_since_training 8 > 7",),
                run_id=f"{v:032x}",
            )
        )
    timeline = tuple(
        ProductionChange(
            at=(start + timedelta(days=7 * v, hours=3)).isoformat(),
            op="rollback" if v % 10 == 0 else "promote",
            from_version=v - 1 if v > 1 else None,
            to_version=v,
            actor="alice",
            reason=f"canary healthy <b>{v}</b>",
            run_id=f"retrain_promote/manual__{v}",
        )
        for v in range(versions - 1, 0, -1)
    )
    checklist = [
        {"key": f"item{i}", "title": f"Checklist item {i}", "passed": i % 5 != 0,
         "evidence": "rows 1000 = 800 + 200", "required_for": "production"}
        for i in range(12)
    ]  # fmt: skip
    logged = tuple(_record(i, versions, checklist, RetrainingRecord) for i in range(records))
    severity = {f"feature_{i}": ("high", "medium", "low", "none")[i % 4] for i in range(25)}
    return ModelOverview(
        model=MODEL,
        production=versions - 1,
        canary=versions,
        rollback_to=versions - 2,
        rollback_note="",
        versions=tuple(rows),
        timeline=timeline,
        records=logged,
        drift=DriftView("retrain_00000", NOW.isoformat(), 7, 0.28, severity, f"{0:032x}"),
        canary_verdict={"decision": "continue", "action": "none", "d_hat": 0.004,
                        "interval": [-0.01, 0.018], "canary_labels": 812,
                        "production_labels": 7400, "at": NOW.isoformat(), "reasons": ["waiting"]},
        cadence={"level": "weekly", "interval_days": 7.0, "reasons": ["stable"], "due": False},
        next_runs={"weekly": "2026-12-07T06:00:00+00:00",
                   "full_rebuild": "2026-12-06T20:00:00+00:00"},
    )  # fmt: skip


def _record(i: int, versions: int, checklist: list[dict[str, Any]], cls: Any) -> Any:
    """The ``i``-th newest synthetic retraining record, in full."""
    start = NOW - timedelta(hours=6 * i)
    return cls(
        retraining_id=f"retrain_{i:05d}",
        trigger="scheduled:weekly_retraining" if i % 3 else "manual",
        start_time=start.isoformat(),
        end_time=(start + timedelta(minutes=4)).isoformat(),
        training_duration_minutes=4.2,
        data_version="2026-11-29",
        new_samples=12000,
        model_version=str(versions - i % versions),
        metrics={"accuracy": 0.91, "f1": 0.86},
        baseline_metrics={"accuracy": 0.9, "f1": 0.85},
        status=("deployed", "rejected", "skipped", "failed")[i % 4],
        notes="a note",
        trigger_reasons=["weekly_retraining: days_since_training 8 > 7"],
        run_key=f"retrain_pipeline/scheduled__2026-11-{1 + i % 28:02d}T06:00:00+00:00",
        mlflow_run_id=f"{i:032x}",
        drift={"drift_count": 2, "drift_share": 0.25, "severity": {"tenure": "high"}},
        gate={
            "status": "passed",
            "reasons": ["accuracy 0.91 >= 0.85"],
            "checks": [{"check": "accuracy >= 0.85", "value": 0.91, "passed": True}],
        },
        ab_test={
            "winner": "candidate",
            "significant": True,
            "p_value": 0.003,
            "difference": 0.012,
            "ci_low": 0.004,
            "ci_high": 0.02,
            "n": 4000,
        },
        checklist=checklist,
        mode="weekly" if i % 5 else "full_rebuild",
    )


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def _report(what: str, times: Sequence[float], size: int) -> None:
    print(
        f"{what:<42} median {statistics.median(times) * 1000:7.1f} ms  "
        f"min {min(times) * 1000:7.1f} ms  max {max(times) * 1000:7.1f} ms  "
        f"({size / 1e6:.2f} MB of HTML)"
    )


def bench_render(overview: Any, repeat: int) -> list[float]:
    from retrain_airflow.plugin.render import (
        DagRunView,
        Links,
        LogFilter,
        ModelActions,
        PageContext,
        model_page,
    )

    ctx = PageContext(Links("/retrain", "", "http://127.0.0.1:5000"), "admin", NOW)
    actions = ModelActions(
        dags={"rollback": "retrain_rollback", "promote": "retrain_promote",
              "pipeline": "retrain_pipeline", "full_rebuild": "retrain_full_rebuild"},
        allowed=frozenset({"rollback", "promote"}),
    )  # fmt: skip
    recent = [DagRunView("retrain_rollback", f"retrain_ui__{i:024d}", "success") for i in range(10)]

    def render() -> str:
        return str(
            model_page(
                overview,
                ctx,
                actions=actions,
                log_filter=LogFilter(limit=len(overview.records)),
                recent=recent,
            )
        )

    times, page = _timed(render, repeat)
    _report("render model_page", times, len(page))
    return times


@dataclass
class _User:
    name: str = "admin"

    def get_name(self) -> str:
        return self.name


class _Allow:
    def allowed(self, method: str, dag_id: str) -> bool:
        return True


class _Source:
    def __init__(self, overview: Any) -> None:
        self.page = overview

    def overview(self, config: Any, *, records: int) -> Any:
        return self.page

    def row(self, config: Any) -> Any:  # pragma: no cover - not asked for here
        raise NotImplementedError

    def record(self, config: Any, retraining_id: str) -> Any:  # pragma: no cover
        return None

    def drift_report(self, config: Any, run_id: str) -> str | None:  # pragma: no cover
        return None


class _Runs:
    def trigger(self, dag_id: str, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def find(self, dag_id: str, run_id: str) -> Any:
        return None

    def recent(self, dag_ids: Sequence[str], limit: int = 10) -> list[Any]:
        from retrain_airflow.plugin.render import DagRunView

        return [DagRunView(dag_ids[0], f"retrain_ui__{i:024d}", "success") for i in range(limit)]

    def dag_problems(self, dag_ids: Iterable[str]) -> Mapping[str, str]:
        return {}


def bench_request(overview: Any, repeat: int) -> list[float]:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from retrain.config import parse_config
    from retrain.config.catalog import Catalog
    from retrain_airflow.dags.targets import Target
    from retrain_airflow.plugin import app as plugin_app

    config = parse_config(
        {
            "model": {"name": MODEL, "target": "y", "features": {"numeric": ["x"]}},
            "data": {"source": {"kind": "parquet", "path": "/tmp/none", "event_time_column": "t"}},
            "registry": {"tracking_uri": "http://127.0.0.1:5000"},
        },
        source="<benchmark>",
    )
    catalog = Catalog(root=Path("<benchmark>"), directory=False, configs={MODEL: config})
    app = plugin_app.create_app()
    app.dependency_overrides.update(
        {
            get_user: _User,
            plugin_app.dag_access: _Allow,
            plugin_app.overview_source: lambda: _Source(overview),
            plugin_app.run_store: _Runs,
            plugin_app.catalog: lambda: (catalog, [Target(config, "<benchmark>", None)]),
        }
    )
    client = TestClient(app, root_path="/retrain")
    url = f"/models/{MODEL}?limit={len(overview.records)}"

    def get() -> Any:
        response = client.get(url)
        response.raise_for_status()
        return response

    get()  # the first request builds the route's dependency graph
    times, response = _timed(get, repeat)
    _report("GET /models/<name> (TestClient, overrides)", times, len(response.content))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="retrain-bench-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.path.insert(0, str(REPO))
    t0 = time.perf_counter()
    overview = synthetic_overview(args.versions, args.records)
    print(
        f"synthetic overview: {args.versions} versions, {args.records} records, "
        f"{len(overview.timeline)} production moves ({time.perf_counter() - t0:.2f} s to build)"
    )
    render = bench_render(overview, args.repeat)
    request = bench_request(overview, args.repeat)
    worst = max(statistics.median(render), statistics.median(request))
    print(f"{'under 1 s' if worst < 1 else 'OVER 1 s'}: slowest median {worst * 1000:.0f} ms")
    return 0 if worst < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
