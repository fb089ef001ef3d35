"""Benchmark: a full rebuild (``retrain run --mode full_rebuild``) with a halving search.

    .venv/bin/python benchmarks/rebuild.py [--rows 1000000] [--budget 20] [--n-jobs 1]
        [--cv-folds 3] [--encoding onehot|native] [--workdir /tmp/rebuild-bench]
        [--url http://127.0.0.1:5000]

Data and config: those of ``benchmarks/pipeline.py`` (its generator and ``config_dict``): the 25
features of ``benchmarks/drift_data.py`` plus a learnable label, 4 weekly row groups of ``rows
/ 4`` rows each, ``HistGradientBoostingClassifier`` with default parameters behind the config's
``ColumnTransformer`` (``--encoding`` sets ``model.categorical_encoding``; default ``onehot``,
the config default). Added: ``model.search``, a ``halving_random`` search of ``--budget``
candidates (default 20) scored on ``--cv-folds`` stratified folds (default 3) with ``n_jobs
--n-jobs`` (default 1), over ``learning_rate`` (loguniform 0.02-0.3), ``max_leaf_nodes``
(randint 15-63), ``min_samples_leaf`` (randint 20-200) and ``l2_regularization`` (loguniform
1e-4-1); ``full_rebuild.checks`` at their defaults (5-fold cross-validation, slices,
calibration, robustness, latency and size).

Two runs, each in a fresh child process, against a throw-away MLflow server (or ``--url``):

* ``weekly`` (the bootstrap, shown, not judged): ``run_pipeline(mode="weekly", window_days=7,
  as_of=week 3)`` trains on week 2 alone (``rows / 4`` rows) and promotes it to production.
  Without a production model a full rebuild runs only the robustness test; with one it runs
  them all.
* ``rebuild`` (the measurement): ``run_pipeline(mode="full_rebuild", as_of=week 4)`` extracts
  all history, ``rows`` rows, searches on the oldest 80% (the newest 20% are the holdout), fits
  the winner (or the configured parameters if no candidate beat them), scores it and production
  on the holdout, runs the comprehensive tests against production, compares and deploys.

Each step's wall time comes from the progress callback (as in ``pipeline.py``: the time until a
step's message belongs to that step). Inside a step, library functions are wrapped with timers
in the child (measurement only; outermost calls count; each call is attributed to the step that
was running): in ``train`` the search (``retrain.train.search``; its own ``seconds`` is in the
log record), its three parts (the configured parameters' CV, ``HalvingRandomSearchCV.fit`` and
the winner's re-score on the configured folds: the first and second ``cross_val_score`` of
``retrain.search``) and the reference profile; the final fit is the record's ``fit_seconds``.
In ``evaluate``: the holdout scoring of both models (``score_model``), loading the production
model, the leakage check (``single_feature_accuracy``) and the comprehensive tests
(``run_rebuild_tests``), each test on its own. The search's share is ``search.seconds`` over
the whole ``run_pipeline`` call.

CPU is the run's process (OpenMP threads included; with ``--n-jobs`` > 1 the joblib workers'
CPU and memory are not). Peak RSS: ``VmHWM`` of the child, reset at every step boundary so each
step's peak is shown; the run's peak is the largest of them. (The child's ``ru_maxrss`` from
``os.wait4`` is not the run's peak: resetting ``VmHWM`` resets the high-water mark it is taken
from, so it covers only the time since the last reset; it is kept in the JSON, not printed.)
The load average (1 min) is sampled at every step boundary. Results:
``<workdir>/results-rebuild-<rows>.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.pipeline import (
    ENV,
    START,
    STEPS,
    WEEK,
    _reset_peak,
    _status_kb,
    config_dict,
    run_child,
    write_data,
)

WEEKS = 4  # rows / 4 rows each: the rebuild extracts all of them
BOOTSTRAP_WINDOW_DAYS = 7
SPACE = {
    "learning_rate": {"distribution": "loguniform", "low": 0.02, "high": 0.3},
    "max_leaf_nodes": {"distribution": "randint", "low": 15, "high": 63},
    "min_samples_leaf": {"distribution": "randint", "low": 20, "high": 200},
    "l2_regularization": {"distribution": "loguniform", "low": 1e-4, "high": 1.0},
}


# --- child ----------------------------------------------------------------------------------------


class _Probe:
    """Wall time of wrapped functions, per pipeline step (measurement only)."""

    def __init__(self) -> None:
        self.step = "start"
        self.calls: list[dict[str, Any]] = []
        self.active: set[str] = set()
        self.halving: dict[str, Any] = {}
        self.train_result: Any = None

    def wrap(self, owner: Any, name: str, label: str, after: Any = None) -> None:
        """Replace ``owner.name`` by a timed call; ``after(result, args)`` sees each result."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if label in self.active:  # an inner call of the same function: the outer one counts
                return original(*args, **kwargs)
            self.active.add(label)
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.active.discard(label)
                seconds = time.perf_counter() - started
                self.calls.append({"step": self.step, "label": label, "seconds": seconds})
            if after is not None:
                after(result, args)
            return result

        setattr(owner, name, timed)

    def install(self) -> None:
        from retrain import search, train
        from retrain.pipeline import rebuild
        from retrain.pipeline.steps import evaluate
        from retrain.pipeline.steps import train as train_step
        from retrain.registry.model_registry import ModelRegistry

        def keep_train(result: Any, _: Any) -> None:
            self.train_result = result

        def keep_halving(found: Any, _: Any) -> None:
            results = found.cv_results_
            self.halving = {
                "n_resources": [int(n) for n in found.n_resources_],
                "n_candidates": [int(n) for n in found.n_candidates_],
                "iter": [int(i) for i in results["iter"]],
                "mean_fit_time": [float(t) for t in results["mean_fit_time"]],
                "mean_score_time": [float(t) for t in results["mean_score_time"]],
                "mean_test_score": [float(s) for s in results["mean_test_score"]],
            }

        self.wrap(train_step, "train", "train()", keep_train)
        self.wrap(train_step, "build_profile", "reference profile")
        self.wrap(train, "search", "search")
        self.wrap(search, "cross_val_score", "search: cross_val_score")
        self.wrap(search.HalvingRandomSearchCV, "fit", "search: halving", keep_halving)
        self.wrap(evaluate, "score_model", "holdout scoring")
        self.wrap(evaluate, "single_feature_accuracy", "leakage check")
        self.wrap(evaluate, "run_rebuild_tests", "comprehensive tests")
        self.wrap(ModelRegistry, "load_model", "load production model")
        for name, label in (
            ("cross_validated", "cross-validation"),
            ("slice_report", "slices"),
            ("calibration", "calibration"),
            ("robustness", "robustness"),
            ("latency_and_size", "latency and size"),
        ):
            self.wrap(rebuild, name, label)

    def seconds(self, label: str, step: str | None = None) -> float:
        return sum(
            c["seconds"]
            for c in self.calls
            if c["label"] == label and (step is None or c["step"] == step)
        )


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from retrain.config import parse_config
    from retrain.pipeline import run_pipeline

    logging.basicConfig(level=logging.WARNING)
    out: dict[str, Any] = {"rss_after_imports_mb": _status_kb("VmRSS") / 1024}
    config = parse_config(json.loads(args.config))
    probe = _Probe()
    probe.install()
    marks: list[tuple[float, str, str]] = []
    peaks: dict[str, float] = {}
    loads: list[float] = [os.getloadavg()[0]]

    def progress(step: str, text: str) -> None:
        marks.append((time.perf_counter(), step, text))
        loads.append(os.getloadavg()[0])
        peaks[step] = max(peaks.get(step, 0.0), _status_kb("VmHWM") / 1024)
        _reset_peak(release=False)
        following = STEPS[STEPS.index(step) + 1] if step in STEPS[:-1] else step
        probe.step = following if step != "deploy" else "deploy"

    options: dict[str, Any] = {"mode": args.mode}
    if args.mode == "weekly":
        options["window_days"] = BOOTSTRAP_WINDOW_DAYS
    _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    outcome = run_pipeline(
        config,
        trigger="manual",
        progress=progress,
        as_of=args.as_of,
        run_key=uuid.uuid4().hex,
        **options,
    )
    total = time.perf_counter() - t0
    out.update(total=total, cpu=time.process_time() - c0, loads=loads)
    peaks["finish"] = _status_kb("VmHWM") / 1024
    out["step_peak_rss_mb"] = peaks
    out["peak_run_mb"] = max(peaks.values())
    steps: dict[str, float] = {}
    previous = t0
    for stamp, step, _ in marks:
        steps[step] = steps.get(step, 0.0) + stamp - previous
        previous = stamp
    steps["finish"] = t0 + total - previous
    out["steps"] = steps
    out["messages"] = [f"{step}: {text}" for _, step, text in marks]
    out["calls"] = probe.calls
    out["halving"] = probe.halving
    fit = probe.train_result
    out["fit_seconds"] = fit.fit_seconds if fit is not None else None
    out["train_rows"] = fit.train_rows if fit is not None else None
    out["holdout_rows"] = fit.holdout_rows if fit is not None else None
    record = outcome.record.to_dict()
    out["record"] = {
        k: record.get(k)
        for k in (
            "status",
            "notes",
            "metrics",
            "baseline_metrics",
            "training_duration_minutes",
            "search",
            "rebuild_tests",
            "gate",
            "model_version",
            "baseline_version",
            "error",
            "failed_step",
        )
    }
    out["error"] = repr(outcome.error) if outcome.error is not None else None
    return out


# --- parent ---------------------------------------------------------------------------------------


def _call_seconds(run: dict[str, Any], label: str, step: str | None = None) -> list[float]:
    return [
        c["seconds"]
        for c in run["calls"]
        if c["label"] == label and (step is None or c["step"] == step)
    ]


def _row(label: str, seconds: float | None, total: float, extra: str = "") -> None:
    if seconds is None:
        print(f"  {label:<46} {'-':>9}")
        return
    print(f"  {label:<46} {seconds:9.2f} {seconds / total:7.1%}  {extra}".rstrip())


def _summarise_run(label: str, run: dict[str, Any]) -> None:
    steps = "  ".join(f"{k} {v:.2f}" for k, v in run["steps"].items())
    record = run["record"]
    print(
        f"  {label:<9} total {run['total']:8.2f} s (CPU {run['cpu']:.1f} s), peak RSS "
        f"{run['peak_run_mb']:.0f} MB; {record['status']}; load "
        f"{min(run['loads']):.1f}-{max(run['loads']):.1f}",
        flush=True,
    )
    print(f"  {'':<9} steps: {steps}", flush=True)
    if run["error"]:
        print(f"  {'':<9} error: {run['error']}", flush=True)


def _train_rows(run: dict[str, Any], total: float) -> None:
    """The train step: the search (and its parts), the final fit, the rest."""
    search = run["record"]["search"] or {}
    train = run["steps"].get("train")
    _row("train", train, total)
    if train is None:
        return
    searched = search.get("seconds")
    _row("  search (search.seconds)", searched, total)
    cvs = _call_seconds(run, "search: cross_val_score", "train")
    halving = sum(_call_seconds(run, "search: halving", "train"))
    folds = search.get("cv_folds", "?")
    if cvs:
        _row(f"    configured parameters, {folds}-fold CV", cvs[0], total)
    if halving:
        rounds = " -> ".join(str(n) for n in run["halving"].get("n_candidates", []))
        _row(f"    halving rounds ({rounds} candidates)", halving, total)
    if len(cvs) > 1:
        _row(f"    winner re-scored on the same {folds} folds", cvs[1], total)
    fit = run["fit_seconds"]
    _row("  final fit (fit_seconds)", fit, total)
    profile = sum(_call_seconds(run, "reference profile", "train"))
    _row("  reference profile", profile, total)
    rest = train - (searched or 0.0) - (fit or 0.0) - profile
    _row("  rest (skops file, holdout file, MLflow)", rest, total)


def _evaluate_rows(run: dict[str, Any], total: float) -> None:
    """The evaluate step: holdout scoring, the comprehensive tests (each), the rest."""
    evaluate = run["steps"].get("evaluate")
    _row("evaluate", evaluate, total)
    if evaluate is None:
        return
    parts = {
        label: sum(_call_seconds(run, label, "evaluate"))
        for label in ("load production model", "holdout scoring", "leakage check")
    }
    tests = sum(_call_seconds(run, "comprehensive tests", "evaluate"))
    _row("  holdout scoring (candidate + production)", parts["holdout scoring"], total)
    _row("  comprehensive tests (run_rebuild_tests)", tests, total)
    for label in ("cross-validation", "slices", "calibration", "robustness", "latency and size"):
        _row(f"    {label}", sum(_call_seconds(run, label, "evaluate")), total)
    _row("  load production model", parts["load production model"], total)
    _row("  leakage check (single_feature_accuracy)", parts["leakage check"], total)
    rest = evaluate - tests - sum(parts.values())
    _row("  rest (reading frames, gate, report, MLflow)", rest, total)


def report(run: dict[str, Any], workers: int) -> dict[str, Any]:
    """Print the rebuild's per-step table, the search's figures and the tests; return them."""
    total = run["total"]
    search = run["record"]["search"] or {}
    print("\n  -- the full rebuild, per step (wall s, share of the run)")
    for step in [*STEPS, "reject", "finish"]:
        if step == "train":
            _train_rows(run, total)
        elif step == "evaluate":
            _evaluate_rows(run, total)
        elif step in run["steps"]:
            peak = run["step_peak_rss_mb"].get(step, 0.0)
            _row(step, run["steps"][step], total, f"peak RSS {peak:.0f} MB" if peak else "")
    print(
        f"  {'whole run (run_pipeline)':<46} {total:9.2f}   CPU {run['cpu']:.1f} s"
        f"{' (main process only)' if workers != 1 else ''}; record "
        f"training_duration_minutes {run['record']['training_duration_minutes']}"
    )
    share = search.get("seconds", 0.0) / total
    print(f"  share of the run in the search: {share:.1%}")
    if search:
        print(
            f"  search: {search['method']}, {search['candidates']} candidates, {search['fits']} "
            f"fits, {search['cv_folds']} folds, scoring {search['scoring']}: best CV "
            f"{search['best_score']:.4f} vs configured {search['configured_score']:.4f} "
            f"({search['improvement']:+.4f}); best {search['best_params']}; chosen: "
            f"{search['chosen']}"
        )
    halving = run["halving"]
    for i, (n, rows) in enumerate(
        zip(halving.get("n_candidates", []), halving.get("n_resources", []), strict=True)
    ):
        fit_sum = sum(
            t * search.get("cv_folds", 1)
            for it, t in zip(halving["iter"], halving["mean_fit_time"], strict=True)
            if it == i
        )
        print(
            f"    round {i}: {n:3d} candidates on {rows:,} rows each, "
            f"sum of fit times {fit_sum:.1f} s"
        )
    tests = run["record"]["rebuild_tests"] or {}
    for item in tests.get("items", []):
        verdict = "passed" if item["passed"] else "FAILED"
        print(f"    test {item['name']}: {verdict}: {item['detail']}")
    for reason in tests.get("not_run", []):
        print(f"    not run: {reason}")
    metrics = run["record"]["metrics"] or {}
    base = run["record"]["baseline_metrics"] or {}
    print(
        f"  holdout accuracy: candidate {metrics.get('accuracy', float('nan')):.4f}, production "
        f"{base.get('accuracy', float('nan')):.4f}; {run['train_rows']:,} training rows, "
        f"{run['holdout_rows']:,} holdout rows; status {run['record']['status']}"
    )
    peak = run["peak_run_mb"]
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in run["step_peak_rss_mb"].items())
    print(
        f"  peak RSS: run {peak:.0f} MB (per step, MB: {peaks}); the process after imports "
        f"{run['rss_after_imports_mb']:.0f} MB"
    )
    print(f"  load average (1 min) during the run: {min(run['loads']):.2f}-{max(run['loads']):.2f}")
    return {"total": total, "search_seconds": search.get("seconds"), "search_share": share}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows the rebuild extracts")
    parser.add_argument("--budget", type=int, default=20, help="candidates of the search")
    parser.add_argument("--cv-folds", type=int, default=3, help="folds scoring each candidate")
    parser.add_argument("--n-jobs", type=int, default=1, help="the search's parallel fits")
    parser.add_argument(
        "--encoding",
        choices=["onehot", "native"],
        default="onehot",
        help="model.categorical_encoding (default: onehot, the config default)",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rebuild-bench"))
    parser.add_argument("--url", help="an MLflow server to use (default: start a throw-away one)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.result).write_text(json.dumps(_child(args), default=str))
        return 0

    from tools.mlflow_server import MlflowServer

    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / f"events_{args.rows}.parquet"
    print(f"writing {WEEKS} weeks of {args.rows // WEEKS:,} rows to {data}", flush=True)
    write_data(args.rows, WEEKS, data)
    server = None
    url = args.url
    if url is None:
        root = Path(tempfile.mkdtemp(prefix="mlflow-", dir=args.workdir))
        server = MlflowServer(root=root, env=ENV).start()
        url = server.url
    name = f"bench-rebuild-{args.rows}-{uuid.uuid4().hex[:6]}"
    config = config_dict(data, args.workdir / f"work_{args.rows}", url, name, args.encoding)
    config["model"]["search"] = {
        "method": "halving_random",
        "space": SPACE,
        "budget": args.budget,
        "cv_folds": args.cv_folds,
        "n_jobs": args.n_jobs,
    }
    me = [sys.executable, str(Path(__file__).resolve()), "--config", json.dumps(config)]
    print(
        f"\n== full rebuild of {args.rows:,} rows x 25 features ({args.encoding} encoding): "
        f"halving_random, {args.budget} candidates, {args.cv_folds}-fold CV, n_jobs "
        f"{args.n_jobs}; load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results: dict[str, Any] = {"rows": args.rows, "encoding": args.encoding, "args": vars(args)}
    try:
        for mode, label, as_of in (
            ("weekly", "weekly", START + 3 * WEEK),
            ("full_rebuild", "rebuild", START + WEEKS * WEEK),
        ):
            argv = [*me, "--child", label, "--mode", mode, "--as-of", as_of.isoformat()]
            results[label] = run_child(argv)
            _summarise_run(label, results[label])
    finally:
        if server is not None:
            server.stop()
    results["summary"] = report(results["rebuild"], args.n_jobs)
    out = args.workdir / f"results-rebuild-{args.rows}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {out}")
    return 0 if results["rebuild"]["error"] is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
