"""Benchmark: how long Airflow takes to parse each of the four DAG files of ``dags/`` when
``RETRAIN_CONFIG`` names a directory of 1, 10 or 50 models (goal: < 0.5 s per file at 50).

    .venv/bin/python benchmarks/parse_time.py [--models 1 10 50] [--repeat 3] [--profile]
        [--workdir /tmp/parse-bench]

The config directory is generated from ``config/retraining.yaml``: ``defaults.yaml`` is that file
without ``model.name``, and each model file sets only ``model.name`` (``churn-000``, ...). The
data path need not exist: parsing reads the YAML files only.

Each measurement is a fresh child process, as the DAG processor's is:

* **warm** (what the processor does): the child first imports ``airflow.dag_processing.manager``
  and the ``airflow.*`` modules the DAG file names (the processor's parent has the first loaded
  and pre-imports the others, ``parsing_pre_import_modules``, before it forks a child per file:
  our DAG files name the ``@task`` decorators' module for that), then times
  ``DagBag(dag_folder=<file>)``: importing the DAG file, the factories and everything they import,
  building the DAGs and bagging them. This is the figure judged against the goal. The child then
  times what the processor does next with the same bag, ``DagSerialization.to_dict`` of every
  DAG (shown, not judged: it runs inside ``dag_file_processor_timeout`` too).
* **cold**: a fresh interpreter that times ``import airflow.sdk``, importing ``DagBag`` and
  ``DagBag(dag_folder=<file>)`` from its first statement (interpreter start-up excluded).

Every figure is the median of ``--repeat`` children (min and max shown). Bytecode is cached in
the work directory (``PYTHONPYCACHEPREFIX``; one untimed child per file fills it), so nothing
is written into the work tree and no timed child compiles source. ``AIRFLOW_HOME`` is a private
directory, examples off, logging at WARNING. ``--profile`` runs cProfile in a warm child for
each file that misses the goal at the largest size, around the DagBag and around the
serialisation, and prints the top calls (cProfile inflates Python-heavy code: use it to
attribute, not to time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
FILES = ("retrain_pipeline", "retrain_monitor", "retrain_rollback", "retrain_promote")
GOAL = 0.5  # seconds per DAG file (warm DagBag) at the largest size

# --- children ---------------------------------------------------------------------------------

WARM = """
import json, sys, time
import importlib
import airflow.dag_processing.manager  # loaded in the DAG processor's parent before it forks
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.utils.file import iter_airflow_imports

# what the processor's parent does before it forks the child (parsing_pre_import_modules)
for module in iter_airflow_imports(sys.argv[1]):
    importlib.import_module(module)
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
bagged = time.perf_counter()
for dag in bag.dags.values():
    DagSerialization.to_dict(dag)
serialized = time.perf_counter()
print(json.dumps({
    "dagbag": bagged - started,
    "stats": sum(s.duration.total_seconds() for s in bag.dagbag_stats),
    "serialize": serialized - bagged,
    "dags": len(bag.dags),
    "tasks": sum(len(d.tasks) for d in bag.dags.values()),
    "errors": {str(k): str(v)[-300:] for k, v in bag.import_errors.items()},
}))
"""

COLD = """
import time
started = time.perf_counter()
import json, sys
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
done = time.perf_counter()
print(json.dumps({"cold": done - started, "imports": imported - started, "dags": len(bag.dags),
                  "errors": {str(k): str(v)[-300:] for k, v in bag.import_errors.items()}}))
"""

PROFILE = """
import cProfile, io, pstats, sys
import airflow.dag_processing.manager
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization

def top(profile, title, limit):
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(limit)
        body = out.getvalue()
        body = body[body.index("ncalls"):] if "ncalls" in body else body
        print(f"--- {title}, by {key}")
        print(body.replace(sys.prefix + "/lib/python3.11/site-packages/", "")
                  .replace(sys.argv[2] + "/", "").strip(), end="\\n\\n")

profile = cProfile.Profile()
profile.enable()
bag = DagBag(dag_folder=sys.argv[1])
profile.disable()
top(profile, "DagBag", int(sys.argv[3]))
profile = cProfile.Profile()
profile.enable()
for dag in bag.dags.values():
    DagSerialization.to_dict(dag)
profile.disable()
top(profile, "DagSerialization.to_dict of every DAG", int(sys.argv[3]))
"""


def write_configs(folder: Path, models: int) -> Path:
    """``folder`` with ``defaults.yaml`` (the repo config without ``model.name``) and
    ``models`` model files that set only their name."""
    folder.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((ROOT / "config" / "retraining.yaml").read_text())
    model = {key: value for key, value in base.pop("model").items() if key != "name"}
    (folder / "defaults.yaml").write_text(yaml.safe_dump({**base, "model": model}))
    for i in range(models):
        (folder / f"churn-{i:03d}.yaml").write_text(
            yaml.safe_dump({"model": {"name": f"churn-{i:03d}"}})
        )
    return folder


def child_env(workdir: Path, config: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "RETRAIN_")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    env |= {
        "RETRAIN_CONFIG": str(config),
        "AIRFLOW_HOME": str(workdir / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
    }
    return env


def run_child(code: str, args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"child failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def measure(code: str, file: Path, env: dict[str, str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(run_child(code, [str(file)], env).strip().splitlines()[-1])
    if report["errors"]:
        raise RuntimeError(f"{file.name}: import errors {report['errors']}")
    return report


# --- parent -----------------------------------------------------------------------------------


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.3f} s ({min(values):.3f}-{max(values):.3f})"


def bench(sizes: list[int], repeat: int, workdir: Path) -> dict[tuple[int, str], dict[str, Any]]:
    results: dict[tuple[int, str], dict[str, Any]] = {}
    for models in sizes:
        config = write_configs(workdir / f"config-{models}", models)
        env = child_env(workdir, config)
        if models == sizes[0]:  # fill the bytecode cache (untimed)
            for name in FILES:
                measure(WARM, DAGS / f"{name}.py", env)
        for name in FILES:
            file = DAGS / f"{name}.py"
            warm = [measure(WARM, file, env) for _ in range(repeat)]
            cold = [measure(COLD, file, env) for _ in range(repeat)]
            assert {w["dags"] for w in warm} == {models}, (name, models, warm)
            results[(models, name)] = {
                "dagbag": [w["dagbag"] for w in warm],
                "stats": [w["stats"] for w in warm],
                "serialize": [w["serialize"] for w in warm],
                "tasks": warm[0]["tasks"],
                "cold": [c["cold"] for c in cold],
                "cold_imports": [c["imports"] for c in cold],
            }
            row = results[(models, name)]
            print(
                f"  {models:>3} models  {name:<17} DagBag {_spread(row['dagbag'])}  "
                f"serialize {statistics.median(row['serialize']):.3f} s  "
                f"cold {statistics.median(row['cold']):.3f} s",
                flush=True,
            )
    return results


def table(results: dict[tuple[int, str], dict[str, Any]], largest: int) -> list[str]:
    lines = [
        "| models | DAG file | DAGs / tasks | warm DagBag, median (min-max) | dagbag_stats "
        "| + serialise (processor) | cold (import airflow.sdk + DagBag) | goal < 0.5 s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (models, name), row in results.items():
        median = statistics.median(row["dagbag"])
        verdict = ""
        if models == largest:
            verdict = "met" if median < GOAL else "**missed**"
        lines.append(
            f"| {models} | `{name}.py` | {models} / {row['tasks']} "
            f"| {median:.3f} s ({min(row['dagbag']):.3f}-{max(row['dagbag']):.3f}) "
            f"| {statistics.median(row['stats']):.3f} s "
            f"| {statistics.median(row['serialize']):.3f} s "
            f"| {statistics.median(row['cold']):.3f} s "
            f"(imports {statistics.median(row['cold_imports']):.3f} s) | {verdict} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the files that miss")
    parser.add_argument("--top", type=int, default=25, help="rows per cProfile listing")
    parser.add_argument("--workdir", type=Path, help="keep configs and bytecode here")
    args = parser.parse_args(argv)
    sizes = sorted(args.models)

    with tempfile.TemporaryDirectory(prefix="retrain-parse-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
            f"load {os.getloadavg()[0]:.2f} at start",
            flush=True,
        )
        started = time.perf_counter()
        results = bench(sizes, args.repeat, workdir)
        print(f"\nload {os.getloadavg()[0]:.2f} at end, {time.perf_counter() - started:.0f} s\n")
        print("\n".join(table(results, sizes[-1])))
        missed = [
            name
            for (models, name), row in results.items()
            if models == sizes[-1] and statistics.median(row["dagbag"]) >= GOAL
        ]
        if len(sizes) > 1:
            print("\nper added model (slope between the smallest and the largest size):")
            for name in FILES:
                small, large = results[(sizes[0], name)], results[(sizes[-1], name)]
                per = {
                    key: (statistics.median(large[key]) - statistics.median(small[key]))
                    / (sizes[-1] - sizes[0])
                    for key in ("dagbag", "serialize")
                }
                print(
                    f"  {name:<17} DagBag {per['dagbag'] * 1000:6.1f} ms, "
                    f"serialise {per['serialize'] * 1000:6.1f} ms"
                )
        print(
            f"\ngoal (< {GOAL} s per DAG file at {sizes[-1]} models, warm DagBag): "
            + (f"missed by {', '.join(missed)}" if missed else "met by every file")
        )
        if args.profile:
            env = child_env(workdir, workdir / f"config-{sizes[-1]}")
            for name in missed:
                print(f"\n=== cProfile: {name}.py at {sizes[-1]} models")
                print(
                    run_child(PROFILE, [str(DAGS / f"{name}.py"), str(ROOT), str(args.top)], env),
                    end="",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
