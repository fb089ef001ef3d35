"""Benchmark: ``retrain.drift`` against Evidently 0.7 ``DataDriftPreset`` on the same data.

    .venv/bin/python benchmarks/drift_vs_evidently.py [--rows 100000 1000000] [--repeat 5]
        [--evidently-repeat 1] [--skip-evidently] [--evidently-venv /tmp/evidently-venv]
        [--workdir /tmp/drift-bench]

For every size the 25-feature benchmark of ``benchmarks/drift_data.py`` is written to parquet,
then each measurement runs in a fresh child process:

* ``build``: read the reference into a DataFrame, time ``build_profile``, save the profile JSON.
* ``check``: load the saved profile and the current data (DataFrame), time ``check_drift``.
* ``stream``: load the saved profile, time ``check_drift`` straight from the parquet file.
* ``evidently``: Evidently 0.7 ``Report([DataDriftPreset()])`` on the same two DataFrames, run with
  the interpreter of a throwaway venv (Evidently 0.7 needs pandas < 3; the venv is created with
  ``evidently==0.7.*`` and ``pandas<3`` when missing).

Reported per run: median wall time and CPU time, the child's peak RSS (``os.wait4`` rusage), the
RSS right after imports, the peak RSS *during* the timed calls (VmHWM reset after loading), the
in-memory size of the data, and which features each tool calls drifted.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024


# --- helpers shared by the children -------------------------------------------------------------


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> int:
    """Return memory the parquet reader's allocator kept to the OS, reset the peak-RSS counter
    (VmHWM) and return the current RSS in kB."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError):  # older kernels cannot reset it
        Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _timed(fn: Any, repeat: int) -> tuple[list[float], list[float], Any]:
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus, result


# --- our children ---------------------------------------------------------------------------------


def _child_ours(mode: str, workdir: Path, repeat: int) -> dict[str, Any]:
    import pandas as pd

    from benchmarks.drift_data import CATEGORICAL, NUMERIC
    from retrain.config import DriftSettings
    from retrain.drift import ReferenceProfile, build_profile, check_drift

    settings = DriftSettings()
    after_imports = _status_kb("VmRSS")
    out: dict[str, Any] = {"rss_after_imports_mb": after_imports / 1024}
    before = 0
    if mode == "build":
        ref = pd.read_parquet(workdir / "reference.parquet")
        out["data_mb"] = ref.memory_usage(deep=True).sum() / MB
        before = _reset_peak()
        walls, cpus, profile = _timed(
            lambda: build_profile(ref, numeric=NUMERIC, categorical=CATEGORICAL, settings=settings),
            repeat,
        )
        profile.save(workdir / "profile.json")
        out["profile_kb"] = (workdir / "profile.json").stat().st_size / 1024
    else:
        profile = ReferenceProfile.load(workdir / "profile.json")
        current: Any = workdir / "current.parquet"
        if mode == "check":
            current = pd.read_parquet(current)
            out["data_mb"] = current.memory_usage(deep=True).sum() / MB
        before = _reset_peak()
        walls, cpus, report = _timed(
            lambda: check_drift(profile, current, settings=settings), repeat
        )
        out["drifted"] = sorted(f.name for f in report.drifted)
    out.update(walls=walls, cpus=cpus, peak_during_mb=_status_kb("VmHWM") / 1024)
    out["rss_before_timed_mb"] = before / 1024
    return out


# --- Evidently child (runs in the Evidently venv; needs only pandas and evidently) ---------------

EVIDENTLY_CHILD = r"""
import json, sys, time
from pathlib import Path

def status_kb(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0

workdir, repeat = Path(sys.argv[1]), int(sys.argv[2])
numeric, categorical = json.loads(sys.argv[3])
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
after_imports = status_kb("VmRSS")
ref = pd.read_parquet(workdir / "reference.parquet")
cur = pd.read_parquet(workdir / "current.parquet")
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
data_mb = cur.memory_usage(deep=True).sum() / 2**20
import pyarrow as pa
pa.default_memory_pool().release_unused()
try:
    Path("/proc/self/clear_refs").write_text("5")
except OSError:
    pass
before = status_kb("VmRSS")
walls, cpus = [], []
for _ in range(repeat):
    t0, c0 = time.perf_counter(), time.process_time()
    result = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    walls.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
drifted = []
for metric in result.dict()["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        method, value, threshold = config["method"], metric["value"], config["threshold"]
        if (value < threshold) if "p_value" in method.lower() else (value >= threshold):
            drifted.append(config["column"])
print(json.dumps({"walls": walls, "cpus": cpus, "drifted": sorted(drifted), "data_mb": data_mb,
                  "rss_after_imports_mb": after_imports / 1024,
                  "rss_before_timed_mb": before / 1024,
                  "peak_during_mb": status_kb("VmHWM") / 1024}))
"""


def ensure_evidently(venv: Path) -> Path:
    """The venv's python, created with evidently 0.7 and pandas < 3 when missing."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import evidently.presets, pandas; assert pandas.__version__ < '3'"]
    if python.exists() and subprocess.run(probe, check=False, capture_output=True).returncode == 0:
        return python
    print(f"creating {venv} with evidently==0.7.* (pandas<3) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "evidently==0.7.*", "pandas<3", "pyarrow"],
        check=True,
    )  # fmt: skip
    subprocess.run(probe, check=True)
    return python


# --- parent ---------------------------------------------------------------------------------------


def run_child(argv: list[str]) -> dict[str, Any]:
    """Run a child, parse the JSON it prints and add its peak RSS from ``os.wait4``."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{argv[:4]} failed:\n{err.read().decode()[-3000:]}")
    result: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def write_data(n: int, workdir: Path) -> None:
    import pyarrow.parquet as pq

    from benchmarks.drift_data import make_drift_table

    workdir.mkdir(parents=True, exist_ok=True)
    stamp = workdir / "rows.txt"
    if stamp.exists() and stamp.read_text() == str(n):
        return
    for name, current in (("reference", False), ("current", True)):
        pq.write_table(make_drift_table(n, current=current), workdir / f"{name}.parquet")
    stamp.write_text(str(n))


def summarise(name: str, result: dict[str, Any]) -> str:
    wall, cpu = statistics.median(result["walls"]), statistics.median(result["cpus"])
    return (
        f"  {name:<16} median {wall:8.3f} s (cpu {cpu:7.3f} s, n={len(result['walls'])})  "
        f"peak RSS {result['peak_rss_mb']:5.0f} MB [imports {result['rss_after_imports_mb']:4.0f}"
        f" MB, before timed calls {result['rss_before_timed_mb']:5.0f} MB, peak during "
        f"{result['peak_during_mb']:5.0f} MB]"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of our check")
    parser.add_argument("--evidently-repeat", type=int, default=1)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--evidently-venv", type=Path, default=Path("/tmp/evidently-venv"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/drift-bench"))
    parser.add_argument("--child", choices=["build", "check", "stream"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child_ours(args.child, args.workdir, args.repeat)))
        return 0

    from benchmarks.drift_data import CATEGORICAL, EXPECTED, NUMERIC

    evidently = None if args.skip_evidently else ensure_evidently(args.evidently_venv)
    expected = sorted(k for k, v in EXPECTED.items() if v == "drift")
    results: dict[str, Any] = {}
    me = [sys.executable, str(Path(__file__).resolve())]
    for n in args.rows:
        workdir = args.workdir / f"{n}"
        write_data(n, workdir)
        print(f"\n== {n:,} rows per side x {len(NUMERIC) + len(CATEGORICAL)} features", flush=True)
        runs: dict[str, Any] = {}
        for mode in ("build", "check", "stream"):
            argv = [*me, "--child", mode, "--workdir", str(workdir), "--repeat", str(args.repeat)]
            runs[mode] = run_child(argv)
            print(summarise(f"ours: {mode}", runs[mode]), flush=True)
        if evidently is not None:
            features = json.dumps([NUMERIC, CATEGORICAL])
            argv = [str(evidently), "-c", EVIDENTLY_CHILD, str(workdir),
                    str(args.evidently_repeat), features]  # fmt: skip
            runs["evidently"] = run_child(argv)
            print(summarise("evidently", runs["evidently"]), flush=True)
        check = runs["check"]
        data_mb = check["data_mb"]
        extra = check["peak_during_mb"] - check["rss_before_timed_mb"]
        profile_kb = runs["build"]["profile_kb"]
        print(f"  current data in memory: {data_mb:.0f} MB; profile JSON {profile_kb:.0f} kB")
        print(
            f"  ours: peak RSS during check {check['peak_during_mb']:.0f} MB = "
            f"{check['peak_during_mb'] / data_mb:.2f}x data (whole process: interpreter, "
            f"libraries and data); added by the check {extra:.0f} MB = {extra / data_mb:.2f}x data"
        )
        if "evidently" in runs:
            speedup = statistics.median(runs["evidently"]["walls"]) / statistics.median(
                check["walls"]
            )
            print(f"  speed-up over Evidently (check vs DataDriftPreset): {speedup:.0f}x")
        for name, run in runs.items():
            if "drifted" in run:
                mark = "==" if run["drifted"] == expected else "!="
                print(f"  {name:<10} drifted {mark} expected: {run['drifted']}")
        results[str(n)] = runs
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\nexpected drifts: {expected}\nresults: {args.workdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
