"""Benchmark: check a 10M-row parquet file against a stored profile in bounded memory.

    .venv/bin/python benchmarks/drift_bigfile.py [--rows 10000000] [--chunk 1000000]
        [--batch-rows 262144] [--workdir /tmp/drift-bigfile]

Writes the current side of the 25-feature benchmark (``benchmarks/drift_data.py``) chunk by
chunk into one parquet file (never more than one chunk in memory), builds and saves a profile
from a 1M-row reference, then checks the file in a fresh child process that streams record
batches. Reports wall time, the child's peak RSS (``os.wait4`` rusage), the in-memory size the
file's data would have, and whether exactly the 5 real drifts were found. Goal: peak RSS < 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024


def child(workdir: Path, batch_rows: int) -> dict[str, Any]:
    """Runs in a fresh process: load the profile, stream-check the big file."""
    from retrain.config import DriftSettings
    from retrain.drift import ReferenceProfile, check_drift

    settings = DriftSettings()
    profile = ReferenceProfile.load(workdir / "profile.json")
    t0, c0 = time.perf_counter(), time.process_time()
    report = check_drift(
        profile, workdir / "current.parquet", settings=settings, batch_rows=batch_rows
    )
    return {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "n_cur": report.n_cur,
        "drifted": sorted(f.name for f in report.drifted),
        "by_severity": {k: len(v) for k, v in report.by_severity.items()},
    }


def write_file(workdir: Path, rows: int, chunk: int) -> float:
    """Write the big current file chunk by chunk; return the data's in-memory size in MB."""
    import pyarrow.parquet as pq

    from benchmarks.drift_data import make_drift_table

    path, stamp = workdir / "current.parquet", workdir / "rows.json"
    if stamp.exists() and json.loads(stamp.read_text())["rows"] == rows and path.exists():
        return float(json.loads(stamp.read_text())["memory_mb"])
    memory = 0.0
    writer = None
    for i, start in enumerate(range(0, rows, chunk)):
        table = make_drift_table(min(chunk, rows - start), current=True, seed=100 + i)
        memory += table.to_pandas().memory_usage(deep=True).sum() / MB
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        print(f"  wrote {start + table.num_rows:,} rows", flush=True)
    assert writer is not None
    writer.close()
    stamp.write_text(json.dumps({"rows": rows, "memory_mb": memory}))
    return memory


def write_profile(workdir: Path) -> None:
    from benchmarks.drift_data import CATEGORICAL, NUMERIC, make_drift_table
    from retrain.config import DriftSettings
    from retrain.drift import build_profile

    reference = make_drift_table(1_000_000, current=False).to_pandas()
    profile = build_profile(
        reference, numeric=NUMERIC, categorical=CATEGORICAL, settings=DriftSettings()
    )
    profile.save(workdir / "profile.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=262_144)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/drift-bigfile"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.workdir, args.batch_rows)))
        return 0

    from benchmarks.drift_data import EXPECTED

    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"writing {args.rows:,} rows to {args.workdir / 'current.parquet'} ...", flush=True)
    memory_mb = write_file(args.workdir, args.rows, args.chunk)
    write_profile(args.workdir)
    size_mb = (args.workdir / "current.parquet").stat().st_size / MB
    argv = [sys.executable, str(Path(__file__).resolve()), "--child",
            "--workdir", str(args.workdir), "--batch-rows", str(args.batch_rows)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the check failed")
    result = json.loads(output.decode().strip().splitlines()[-1])
    peak_mb = usage.ru_maxrss / 1024
    expected = sorted(k for k, v in EXPECTED.items() if v == "drift")
    print(
        f"checked {result['n_cur']:,} rows x 25 features streamed in batches of "
        f"{args.batch_rows:,}: {result['wall']:.2f} s wall ({result['cpu']:.2f} s cpu)\n"
        f"file {size_mb:.0f} MB on disk, {memory_mb:.0f} MB if loaded into pandas; "
        f"peak RSS of the checking process {peak_mb:.0f} MB (goal < 1024 MB: "
        f"{'met' if peak_mb < 1024 else 'NOT met'})\n"
        f"severities {result['by_severity']}; exactly the 5 real drifts: "
        f"{result['drifted'] == expected}"
    )
    return 0 if peak_mb < 1024 and result["drifted"] == expected else 1


if __name__ == "__main__":
    raise SystemExit(main())
