"""Benchmark: the whole ``retrain run`` against bare ``fit + predict`` of the same estimator.

    .venv/bin/python benchmarks/pipeline.py [--rows 100000 1000000] [--repeat 3]
        [--encoding onehot|native] [--workdir /tmp/pipeline-bench] [--profile]
        [--url http://127.0.0.1:5000]

Data: the 25 features of ``benchmarks/drift_data.py`` (20 numeric, two with 5% NaN, + 5 string
categoricals, one with 50 categories), a learnable binary label (a noisy logistic function of
six features; HistGradientBoosting reaches ~0.92 accuracy) and an ``event_time`` column. The
parquet file holds ``4 + repeat`` weeks of ``rows / 4`` rows each; the pipeline trains on a
28-day window (``data.training_window_days``), so every run extracts exactly ``rows`` rows and
fits on the oldest 80% of them (the newest 20% are the holdout). ``--encoding`` sets
``model.categorical_encoding`` (default ``onehot``, the config default: 89 matrix columns;
``native``: 25 columns, the categoricals as ordinal codes for the estimator's own support).

Without ``--url`` a throw-away MLflow server (SQLite, local artifacts) is started in the work
directory and stopped at the end. The config is the defaults plus the window, ``cooldown_hours:
0`` and ``ab_test.alpha: 0.001`` (so that a tie between two models trained on the same
distribution is never "significantly worse" by chance: every steady run takes the full path,
register and promote). Per size, every measurement runs in a fresh child process:

* ``pipeline`` (bootstrap): ``run_pipeline(config, trigger="manual", as_of=week 4)``: no
  production model yet, so no production scoring and no A/B test. Shown, not judged.
* ``repeat`` rounds, one week later each, of three adjacent children (same machine load):
  ``bare-estimator``, ``pipeline`` (steady state) and ``bare-pipeline``. In the steady state a
  production model exists, so ``check`` scores it on the week of new rows and checks drift
  against its profile, ``evaluate``/``compare`` score both models on the holdout, and the
  candidate is registered and promoted. The goals are judged on the medians of these runs.
* ``bare-estimator``: read the same window, split it the same way (``time_split``), run the
  config's preprocessing untimed, then time ``HistGradientBoostingClassifier(same params).fit``
  on the ready numeric matrix and ``.predict`` on the holdout: the honest "bare" baseline.
* ``bare-pipeline``: the same, but timing ``build_pipeline(config).fit/predict`` (the same
  scikit-learn Pipeline as the run, preprocessing included).

In the pipeline child, scikit-learn ``Pipeline.fit/predict/predict_proba/transform`` and the
estimator's ``fit/predict/predict_proba`` are wrapped with timers (measurement only; outermost
calls count) and the progress callback marks the step boundaries. "Model" time is every fit and
prediction inside the run, preprocessing included (``fit_seconds`` of the train step is the
``Pipeline.fit``); the overhead is everything else. Also shown: the overhead with preprocessing
counted as overhead, and the run next to the adjacent bare estimator.

Memory: the peak RSS of the run is ``VmHWM`` of the pipeline child (reset after the imports and
at every step boundary, so each step's peak is shown too); the bare children's peak is their
``ru_maxrss`` (``os.wait4``). Both are compared with the in-memory size of the extracted training
window (pandas ``memory_usage(deep=True)``). ``--profile`` writes a cProfile of each steady-state
run (it slows Python-heavy code down: use it to attribute, not to time) and prints the top calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retrain.pipeline import graph

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
WEEK = timedelta(weeks=1)
WINDOW_DAYS = 28
GOALS = {100_000: 0.25, 1_000_000: 0.10}  # max overhead share of the total
RSS_GOAL = 3.0  # peak RSS <= 3x the training data in memory
ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
}


# --- data -----------------------------------------------------------------------------------------


def make_week(rows: int, week: int) -> Any:
    """One week of events as a pyarrow Table: 25 features, ``label`` and ``event_time``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from benchmarks.drift_data import make_drift_table

    table = make_drift_table(rows, current=False, seed=week)
    rng = np.random.default_rng([week, 99])

    def z(name: str) -> Any:
        x = table.column(name).to_numpy().astype(np.float64)
        return (x - x.mean()) / x.std()

    def isin(name: str, values: list[str]) -> Any:
        return pc.is_in(table.column(name), pa.array(values)).to_numpy(zero_copy_only=False)

    logit = (
        1.5 * z("num_same_normal")
        + 1.2 * z("num_mean_shift_0_25sd")
        - 1.0 * z("num_same_uniform")
        + 0.8 * z("num_same_bimodal")
        + 0.6 * np.log1p(table.column("num_same_poisson_3").to_numpy())
        + np.where(isin("cat_same_three", ["monthly"]), 1.2, -0.8)
        + np.where(isin("cat_reshuffled_shares", ["premium", "enterprise"]), 1.0, 0.0)
        - 0.6
    )
    label = (rng.random(rows) < 1 / (1 + np.exp(-2.5 * logit))).astype(np.int64)
    seconds = np.sort(rng.uniform(1.0, WEEK.total_seconds() - 1.0, rows))
    base = np.datetime64(int((START + week * WEEK).timestamp() * 1e6), "us")
    times = base + (seconds * 1e6).astype("timedelta64[us]")
    return table.append_column("label", pa.array(label)).append_column(
        "event_time", pa.array(times, pa.timestamp("us", tz="UTC"))
    )


def write_data(rows: int, weeks: int, path: Path) -> None:
    """``weeks`` weeks of ``rows / 4`` rows each, one row group per week (skipped if present)."""
    import pyarrow.parquet as pq

    stamp = path.with_suffix(".rows")
    if path.exists() and stamp.exists() and stamp.read_text() == f"{rows}x{weeks}":
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    per_week = rows // 4
    first = make_week(per_week, 0)
    with pq.ParquetWriter(path, first.schema) as writer:
        writer.write_table(first, row_group_size=per_week)
        for week in range(1, weeks):
            writer.write_table(make_week(per_week, week), row_group_size=per_week)
    stamp.write_text(f"{rows}x{weeks}")


def config_dict(
    data: Path, work: Path, url: str, name: str, encoding: str = "onehot"
) -> dict[str, Any]:
    from benchmarks.drift_data import CATEGORICAL, NUMERIC

    return {
        "model": {
            "name": name,
            "target": "label",
            "features": {"numeric": list(NUMERIC), "categorical": list(CATEGORICAL)},
            "estimator": {"class": "sklearn.ensemble.HistGradientBoostingClassifier"},
            "categorical_encoding": encoding,
        },
        "data": {
            "source": {"kind": "parquet", "path": str(data), "event_time_column": "event_time"},
            "training_window_days": WINDOW_DAYS,
        },
        "registry": {"tracking_uri": url, "request_timeout_seconds": 60},
        "triggers": {"cooldown_hours": 0},
        # every steady run takes the full path (register, promote): a tie must not be called
        # "significantly worse" by chance, which would reject the run and skip the deploy step
        "ab_test": {"alpha": 0.001},
        "storage": {"work_dir": str(work)},
    }


# --- children -------------------------------------------------------------------------------------


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak(*, release: bool = True) -> int:
    """Reset the peak-RSS counter (VmHWM) and return the current RSS in kB; ``release``: first
    return memory that pyarrow's allocator keeps to the OS."""
    if release:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


class _Timers:
    """Wall time spent in the model, per pipeline step (measurement only).

    ``model``: the outermost call of scikit-learn ``Pipeline.fit/predict/predict_proba/transform``
    or of the estimator's ``fit/predict/predict_proba``, so preprocessing counts as model time.
    ``estimator``: the outermost call of the estimator class's methods alone (its
    ``predict`` calling its own ``predict_proba`` counts once).
    """

    def __init__(self) -> None:
        self.step = "start"
        self.calls: list[dict[str, Any]] = []
        self.depth = {"model": 0, "estimator": 0}

    def _wrap(self, cls: type[Any], method: str, kinds: tuple[str, ...]) -> None:
        original = getattr(cls, method)

        def timed(self_: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
            outer = [k for k in kinds if self.depth[k] == 0]
            for k in kinds:
                self.depth[k] += 1
            started = time.perf_counter()
            try:
                return original(self_, x, *args, **kwargs)
            finally:
                seconds = time.perf_counter() - started
                for k in kinds:
                    self.depth[k] -= 1
                for k in outer:
                    call = {"step": self.step, "kind": k, "method": method, "rows": len(x)}
                    self.calls.append({**call, "seconds": seconds})

        setattr(cls, method, timed)

    def install(self, estimator: type[Any]) -> None:
        from sklearn.pipeline import Pipeline

        for method in ("fit", "predict", "predict_proba", "transform"):
            self._wrap(Pipeline, method, ("model",))
        for method in ("fit", "predict", "predict_proba"):
            self._wrap(estimator, method, ("model", "estimator"))


# the steps in order, as the progress callback names them: the time until a step's first message
# belongs to that step (deploy says several things: register, canary, production)
STEPS = [graph.START, *(name for name in graph.STEPS if name != "reject")]


def _child_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from retrain.config import parse_config
    from retrain.pipeline import run_pipeline
    from tools.http_calls import count_http_requests

    logging.basicConfig(level=logging.WARNING)
    out: dict[str, Any] = {"rss_after_imports_mb": _status_kb("VmRSS") / 1024}
    config = parse_config(json.loads(args.config))
    timers = _Timers()
    from retrain.train import load_estimator_class

    timers.install(load_estimator_class(config.model.estimator.class_path))
    marks: list[tuple[float, str, str]] = []

    peaks: dict[str, float] = {}

    def progress(step: str, text: str) -> None:
        marks.append((time.perf_counter(), step, text))
        peaks[step] = max(peaks.get(step, 0.0), _status_kb("VmHWM") / 1024)
        _reset_peak(release=False)
        following = STEPS[STEPS.index(step) + 1] if step in STEPS[:-1] else step
        timers.step = following if step != "deploy" else "deploy"

    import cProfile

    profiler = cProfile.Profile() if args.profile else None
    _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    with count_http_requests(config.registry.tracking_uri) as http:
        record = run_pipeline(
            config, trigger="manual", progress=progress, as_of=args.as_of, run_key=uuid.uuid4().hex
        ).record.to_dict()
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    total = time.perf_counter() - t0
    out["http_total"] = http.total
    out["http"] = dict(http.by_endpoint.most_common())
    peaks["finish"] = _status_kb("VmHWM") / 1024
    out["step_peak_rss_mb"] = peaks
    out["peak_run_mb"] = max(peaks.values())
    out.update(total=total, cpu=time.process_time() - c0)
    steps: dict[str, float] = {}
    previous = t0
    for stamp, step, _ in marks:
        steps[step] = steps.get(step, 0.0) + stamp - previous
        previous = stamp
    steps["finish"] = t0 + total - previous
    out["steps"] = steps
    out["messages"] = [f"{step}: {text}" for _, step, text in marks]
    out["calls"] = timers.calls
    out["status"] = record["status"]
    out["notes"] = record["notes"]
    out["metrics"] = record["metrics"]
    return out


def _window(config: Any, as_of: datetime) -> Any:
    """The extracted training window exactly as ``retrain.data.extract`` reads it."""
    from retrain.data import read_source

    table = read_source(config, start=as_of - timedelta(days=WINDOW_DAYS), end=as_of)
    return table.sort_by([("event_time", "ascending")]).to_pandas()


def _child_bare(args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.base import clone

    from retrain.config import parse_config
    from retrain.train import build_pipeline, time_split

    config = parse_config(json.loads(args.config))
    out: dict[str, Any] = {"rss_after_imports_mb": _status_kb("VmRSS") / 1024}
    frame = _window(config, datetime.fromisoformat(args.as_of))
    out["rows"] = len(frame)
    out["data_mb"] = frame.memory_usage(deep=True).sum() / MB
    features, target = config.model.features.all, config.model.target
    out["features_mb"] = frame[features].memory_usage(deep=True).sum() / MB
    train, holdout = time_split(frame, "event_time", config.data.holdout_fraction)
    pipeline = build_pipeline(config)
    if args.child == "bare-pipeline":
        x, xh, model = train[features], holdout[features], pipeline
    else:  # the estimator alone on the ready numeric matrix (preprocessing untimed)
        preprocess = clone(pipeline.named_steps["preprocess"])
        x = preprocess.fit_transform(train[features])
        xh = preprocess.transform(holdout[features])
        model = clone(pipeline.named_steps["model"])
        out["matrix_mb"] = (x.nbytes + xh.nbytes) / MB
        out["matrix_columns"] = int(x.shape[1])
    y, yh = train[target].to_numpy(), holdout[target].to_numpy()
    _reset_peak()
    t0 = time.perf_counter()
    model.fit(x, y)
    t1 = time.perf_counter()
    predicted = model.predict(xh)
    t2 = time.perf_counter()
    out.update(fit=t1 - t0, predict=t2 - t1, peak_during_mb=_status_kb("VmHWM") / 1024)
    out["accuracy"] = float((predicted == yh).mean())
    out["train_rows"], out["holdout_rows"] = len(train), len(holdout)
    return out


# --- parent ---------------------------------------------------------------------------------------


def run_child(argv: list[str]) -> dict[str, Any]:
    """Run a child; it writes its JSON result to a file. Adds its peak RSS from ``os.wait4``."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result, tempfile.TemporaryFile() as err:
        env = {**os.environ, **ENV}
        proc = subprocess.Popen(
            [*argv, "--result", result.name], stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{argv[2:5]} failed:\n{err.read().decode()[-4000:]}")
        data: dict[str, Any] = json.loads(Path(result.name).read_text())
    data["peak_rss_mb"] = usage.ru_maxrss / 1024
    return data


def _med(values: Any) -> float:
    return float(statistics.median(values))


def _seconds(
    run: dict[str, Any], kind: str, fit: bool | None = None, step: str | None = None
) -> float:
    """Seconds in ``kind`` calls (``model`` or ``estimator``); ``fit``: only fits (True), only
    predictions (False) or both (None); ``step``: in that pipeline step only."""
    return sum(
        c["seconds"]
        for c in run["calls"]
        if c["kind"] == kind
        and (fit is None or (c["method"] == "fit") == fit)
        and (step is None or c["step"] == step)
    )


def _outside(run: dict[str, Any], kind: str = "model") -> float:
    """Seconds of the run spent outside ``kind``'s fit/predict/predict_proba/transform calls."""
    return float(run["total"] - _seconds(run, kind))


def _summarise_run(label: str, run: dict[str, Any]) -> None:
    fit, pred = _seconds(run, "model", True), _seconds(run, "model", False)
    steps = "  ".join(f"{k} {v:.2f}" for k, v in run["steps"].items())
    print(
        f"  {label:<13} total {run['total']:7.2f} s (CPU {run['cpu']:.1f}), fit {fit:.2f}, "
        f"predict {pred:.2f}, outside the model {_outside(run):.2f} s "
        f"({_outside(run) / run['total']:.1%}); peak RSS {run['peak_run_mb']:.0f} MB; "
        f"{run['status']}; load {run['load']:.1f}",
        flush=True,
    )
    print(f"  {'':<13} steps: {steps}", flush=True)
    top = ", ".join(f"{n} {e}" for e, n in list(run["http"].items())[:6])
    print(f"  {'':<13} HTTP requests to MLflow: {run['http_total']} ({top}, ...)", flush=True)


def _summarise_bare(label: str, run: dict[str, Any]) -> None:
    print(
        f"  {label:<13} fit {run['fit']:.2f} s, predict {run['predict']:.2f} s, accuracy "
        f"{run['accuracy']:.4f}, peak RSS {run['peak_rss_mb']:.0f} MB; load {run['load']:.1f}",
        flush=True,
    )


def _print_profile(path: str, limit: int = 40) -> None:
    import pstats

    print(f"\n  cProfile of {path} (cumulative; retrain, registry and I/O calls, top {limit}):")
    stats = pstats.Stats(path)
    stats.sort_stats("cumulative").print_stats(
        r"retrain/|read_parquet|to_parquet|write_table|build_profile|check_drift", limit
    )


def bench_size(
    rows: int, repeat: int, workdir: Path, url: str, *, profile: bool, encoding: str
) -> dict[str, Any]:
    """Bootstrap once, then ``repeat`` x (bare estimator, steady-state run, bare Pipeline), each
    in a fresh child; adjacent children see about the same machine load."""
    me = [sys.executable, str(Path(__file__).resolve())]
    data = workdir / f"events_{rows}.parquet"
    write_data(rows, 4 + repeat, data)
    name = f"bench-pipeline-{rows}-{uuid.uuid4().hex[:6]}"
    config = json.dumps(config_dict(data, workdir / f"work_{rows}", url, name, encoding))
    print(
        f"\n== {rows:,} rows x 25 features (window {WINDOW_DAYS} days; 80% fit, 20% holdout; "
        f"{encoding} categorical encoding)"
    )

    def child(kind: str, as_of: datetime, prof: str | None = None) -> dict[str, Any]:
        argv = [*me, "--child", kind, "--config", config, "--as-of", as_of.isoformat()]
        load = os.getloadavg()[0]
        return {**run_child([*argv, *(["--profile", prof] if prof else [])]), "load": load}

    result: dict[str, Any] = {"rows": rows, "encoding": encoding}
    result["bootstrap"] = child("pipeline", START + 4 * WEEK)
    _summarise_run("bootstrap", result["bootstrap"])
    steady, bare_p, bare_e = [], [], []
    for i in range(repeat):
        as_of = START + (5 + i) * WEEK
        prof = str(workdir / f"profile_{rows}_{i}.prof") if profile else None
        bare_e.append(child("bare-estimator", as_of))
        _summarise_bare("bare estim.", bare_e[-1])
        steady.append(child("pipeline", as_of, prof))
        _summarise_run(f"steady #{i + 1}", steady[-1])
        bare_p.append(child("bare-pipeline", as_of))
        _summarise_bare("bare Pipeline", bare_p[-1])
    result.update(steady=steady, bare_pipeline=bare_p, bare_estimator=bare_e)
    result["summary"] = report(rows, result)
    if profile:
        _print_profile(str(workdir / f"profile_{rows}_0.prof"))
    return result


def report(rows: int, result: dict[str, Any]) -> dict[str, Any]:
    """Print the medians of the steady-state runs next to the bare runs; return the figures."""
    steady, bare_p, bare_e = result["steady"], result["bare_pipeline"], result["bare_estimator"]
    data_mb = bare_p[0]["data_mb"]
    steps = [s for s in [*STEPS, "reject", "finish"] if any(s in r["steps"] for r in steady)]
    print(f"\n  -- {rows:,} rows: medians of {len(steady)} steady-state runs")
    print(f"  {'step':<34} {'wall s':>8} {'model s':>8} {'outside s':>9} {'peak RSS MB':>12}")
    for step in steps:
        wall = _med(r["steps"].get(step, 0.0) for r in steady)
        model = _med(_seconds(r, "model", step=step) for r in steady)
        peak = _med(r["step_peak_rss_mb"].get(step, 0.0) for r in steady)
        print(f"  {step:<34} {wall:8.2f} {model:8.2f} {wall - model:9.2f} {peak:12.0f}")
    total = _med(r["total"] for r in steady)
    fit, pred = (_med(_seconds(r, "model", f) for r in steady) for f in (True, False))
    fit_e, pred_e = (_med(_seconds(r, "estimator", f) for r in steady) for f in (True, False))
    outside = _med(_outside(r) for r in steady)
    share = _med(_outside(r) / r["total"] for r in steady)
    share_e = _med(_outside(r, "estimator") / r["total"] for r in steady)
    cpu = _med(r["cpu"] for r in steady)
    print(
        f"  {'whole run (run_pipeline)':<34} {total:8.2f} {fit + pred:8.2f} {outside:9.2f}"
        f"   CPU {cpu:.1f} s"
    )
    print(f"  {'  model fit (Pipeline.fit)':<34} {fit:8.2f}   of which the estimator {fit_e:.2f}")
    print(f"  {'  model predictions (all)':<34} {pred:8.2f}   of which the estimator {pred_e:.2f}")
    be_fit, be_pred = _med(r["fit"] for r in bare_e), _med(r["predict"] for r in bare_e)
    bp_fit, bp_pred = _med(r["fit"] for r in bare_p), _med(r["predict"] for r in bare_p)
    print(
        f"  {'bare estimator fit + predict':<34} {be_fit + be_pred:8.2f}   (fit {be_fit:.2f}, "
        f"predict {be_pred:.2f}; ready {result['encoding']} matrix)"
    )
    print(
        f"  {'bare sklearn Pipeline fit + predict':<34} {bp_fit + bp_pred:8.2f}   (fit "
        f"{bp_fit:.2f}, predict {bp_pred:.2f}; preprocessing included)"
    )
    # each run next to the bare estimator measured just before it
    vs_bare = _med(
        (r["total"] - b["fit"] - b["predict"]) / r["total"]
        for r, b in zip(steady, bare_e, strict=True)
    )
    goal = GOALS.get(rows, 0.0)

    def verdict(value: float, limit: float) -> str:
        return "MET" if value <= limit else "MISSED"

    print(
        f"  overhead, everything but the model's fit/predict: {outside:.2f} s = {share:.1%} of "
        f"the run (goal <= {goal:.0%}: {verdict(share, goal)})"
    )
    print(f"  overhead with preprocessing counted as overhead: {share_e:.1%}")
    print(f"  run - bare estimator fit/predict (adjacent child): {vs_bare:.1%} of the run")
    boot = result["bootstrap"]
    http_steady = _med(r["http_total"] for r in steady)
    print(
        f"  HTTP requests to MLflow per run: bootstrap {boot['http_total']}, steady state "
        f"{http_steady:.0f} (runs: {', '.join(str(r['http_total']) for r in steady)})"
    )
    for label, run in (("bootstrap", boot), ("steady #1", steady[0])):
        print(f"    {label}, by endpoint:")
        for endpoint, n in run["http"].items():
            print(f"      {n:4d}  {endpoint}")
    peak = _med(r["peak_run_mb"] for r in steady)
    after_imports = _med(r["rss_after_imports_mb"] for r in steady)
    bare_peak = _med(r["peak_rss_mb"] for r in bare_p)
    est_peak = _med(r["peak_rss_mb"] for r in bare_e)
    print(
        f"  training window in memory {data_mb:.0f} MB ({bare_p[0]['rows']:,} rows x 27 "
        f"columns); {result['encoding']} matrix {bare_e[0]['matrix_mb']:.0f} MB "
        f"({bare_e[0]['matrix_columns']} columns, train + holdout)"
    )
    print(
        f"  peak RSS: run {peak:.0f} MB = {peak / data_mb:.2f}x the data (goal <= "
        f"{RSS_GOAL:g}x: {verdict(peak / data_mb, RSS_GOAL)}); bare Pipeline {bare_peak:.0f} MB "
        f"= {bare_peak / data_mb:.2f}x; bare estimator {est_peak:.0f} MB = "
        f"{est_peak / data_mb:.2f}x; the run's process after imports {after_imports:.0f} MB"
    )
    return {
        "total": total,
        "cpu": cpu,
        "fit": fit,
        "predict": pred,
        "fit_estimator": fit_e,
        "predict_estimator": pred_e,
        "outside": outside,
        "overhead_share": share,
        "overhead_share_estimator": share_e,
        "overhead_share_vs_bare": vs_bare,
        "bare_estimator_fit": be_fit,
        "bare_estimator_predict": be_pred,
        "bare_pipeline_fit": bp_fit,
        "bare_pipeline_predict": bp_pred,
        "data_mb": data_mb,
        "peak_rss_mb": peak,
        "rss_ratio": peak / data_mb,
        "bare_pipeline_peak_mb": bare_peak,
        "bare_estimator_peak_mb": est_peak,
        "http_bootstrap": boot["http_total"],
        "http_steady": http_steady,
        "steps": {
            step: {
                "wall": _med(r["steps"].get(step, 0.0) for r in steady),
                "model": _med(_seconds(r, "model", step=step) for r in steady),
                "peak_rss_mb": _med(r["step_peak_rss_mb"].get(step, 0.0) for r in steady),
            }
            for step in steps
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="steady-state runs per size")
    parser.add_argument(
        "--encoding",
        choices=["onehot", "native"],
        default="onehot",
        help="model.categorical_encoding (default: onehot, the config default)",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pipeline-bench"))
    parser.add_argument("--url", help="an MLflow server to use (default: start a throw-away one)")
    parser.add_argument(
        "--profile", nargs="?", const=True, default=False, help="cProfile the steady-state runs"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = _child_pipeline if args.child == "pipeline" else _child_bare
        Path(args.result).write_text(json.dumps(run(args), default=str))
        return 0

    from tools.mlflow_server import MlflowServer

    args.workdir.mkdir(parents=True, exist_ok=True)
    server = None
    url = args.url
    if url is None:
        root = Path(tempfile.mkdtemp(prefix="mlflow-", dir=args.workdir))
        server = MlflowServer(root=root, env=ENV).start()
        url = server.url
    results: dict[str, Any] = {}
    try:
        for rows in args.rows:
            results[str(rows)] = bench_size(
                rows, args.repeat, args.workdir, url, profile=args.profile, encoding=args.encoding
            )
    finally:
        if server is not None:
            server.stop()
    out = args.workdir / f"results-{args.encoding}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
