"""Benchmark: ``retrain serve`` (prediction log on) next to ``mlflow models serve``.

    .venv/bin/python benchmarks/serving.py [--workdir DIR] [--workers 1 2] [--clients 4]
        [--batches 1 100] [--duration 20] [--warmup 3] [--calls 1000] [--profile]
        [--mlflow-omp-threads N] [--model-threads N] [--url http://127.0.0.1:5000]

Goals (issue 17): at least 2x MLflow's requests/s and a lower p99, for single rows and 100-row
batches, with matched worker counts; the router's overhead over a bare ``model.predict`` at most
1 ms p50 for a single row.

The model: the churn stream (``tools/synthetic.py``: 5 numeric + 3 categorical features), fitted
by retrain's own ``retrain.train.train`` with ``config/retraining.yaml``'s model section
(``HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1)`` behind the one-hot
``ColumnTransformer``). Two versions are registered through ``ModelRegistry``: v1 (weeks 0-3)
to ``production`` and v2 (weeks 1-4) to ``canary``; the router sends
``deployment.canary_traffic_percent`` (10%) of the rows to the canary. The requests are rows of
week 6 (never trained on), as ``dataframe_split`` bodies built once: ``--batches`` rows each
(1000 distinct single-row bodies, 40 distinct bodies of each larger size), the same bytes and
headers for both servers. They carry no ``entity_ids`` (MLflow refuses unknown keys), so the
router sends each body to one arm, by the first of the request ids it generates (10% of the
bodies to the canary).

Servers, each in its own process group with ``--workers W``: ``retrain serve -c <config>
--workers W`` (bearer token, prediction log: SQLite under the work directory) and ``mlflow models
serve -m models:/<name>@production --env-manager local --workers W``. Both are uvicorn + FastAPI
running the prediction in a worker thread; both get ``OMP_WAIT_POLICY=PASSIVE`` (retrain sets it
at import; MLflow would otherwise spin OpenMP threads on the shared cores). ``retrain serve``
calls its models with one OpenMP thread (``serving.model_threads``, its default); MLflow keeps
the library default (every core) unless ``--mlflow-omp-threads N`` sets ``OMP_NUM_THREADS`` for
its server, the fairness check of giving it the same setting by hand (``--model-threads N``:
``retrain serve --model-threads N``, ``0`` for the library default). If MLflow cannot
serve the version retrain registered (skops), the same fitted pipeline is logged again with
``mlflow.sklearn.log_model`` under ``<name>-mlflow`` and that one is served; the JSON says which.

Load: a separate process (stdlib only) per case, ``--clients`` threads with one persistent
``http.client`` connection each, sending back to back (closed loop) for ``--warmup`` seconds
(discarded) and ``--duration`` seconds (measured). Requests/s counts the requests answered 200
inside the window; p50/p99 are over their latencies; anything else is an error. Both servers run
at once and the cases alternate between them (retrain, MLflow, retrain, ...), so a change in the
machine's background load hits both alike. Also recorded per case: the server's CPU time per
request (every process of its group, from ``/proc``) and the load average before and after.

Router overhead (in this process, before the servers start): ``Router.predict`` on one row (the
frame ``parse_invocation`` builds from a request; prediction log on, to SQLite) against the bare
``model.predict`` of the same loaded production version, interleaved, p50 over ``--calls``
calls each, the bare call with one OpenMP thread (as the router calls it; ``bare_predict``: the
library default). Shown next to it: ``predict`` + ``predict_proba`` (what the router asked the model
before it took labels from ``predict_proba`` alone; ``/version`` says which calls each version
gets), and the whole request handler of each server without HTTP, one request at a time
(retrain: ``json.loads`` + ``parse_invocation`` + ``Router.predict`` + the answer as JSON;
MLflow: ``mlflow.pyfunc.scoring_server.invocations``). Over HTTP, ``retrain serve`` batches
concurrent requests (``Router.submit``), which no in-process figure here includes.
``--profile`` prints a cProfile of both handlers.

Writes ``serving.json`` in ``--workdir`` (default: a new directory under /tmp) and prints a table.
Exit 0 once everything ran (goals met or not), 1 if a server failed or a case had errors.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-serving-token-7d41c9e2a0f35b68"
GOALS = {"throughput_ratio": 2.0, "overhead_ms": 1.0}
SINGLE_BODIES = 1000
BATCH_BODIES = 40


# --- the load generator (a child process, stdlib only) -----------------------------------------


def load_child(spec_path: str) -> int:
    """Send the bodies of ``spec`` with ``clients`` threads; print the outcome as JSON."""
    import resource

    spec = json.loads(Path(spec_path).read_text())
    bodies = [line.encode() for line in Path(spec["bodies"]).read_text().splitlines() if line]
    url = urllib.parse.urlsplit(spec["url"])
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {spec['token']}"}
    clients = spec["clients"]
    start = time.perf_counter() + 0.2
    measure_from = start + spec["warmup"]
    until = measure_from + spec["duration"]
    outcomes: list[dict[str, Any]] = [
        {"latencies": [], "errors": 0, "total": 0, "samples": []} for _ in range(clients)
    ]

    def client(index: int) -> None:
        mine = outcomes[index]
        order = list(range(len(bodies)))
        random.Random(index).shuffle(order)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        while time.perf_counter() < start:
            time.sleep(0.001)
        i = 0
        while True:
            body = bodies[order[i % len(order)]]
            i += 1
            sent = time.perf_counter()
            if sent >= until:
                break
            try:
                conn.request("POST", "/invocations", body, headers)
                response = conn.getresponse()
                answer = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status, answer = 0, f"{type(exc).__name__}: {exc}".encode()
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
            done = time.perf_counter()
            mine["total"] += 1
            if not measure_from <= done < until:
                continue
            if status == 200:
                mine["latencies"].append((done - sent) * 1000)
            else:
                mine["errors"] += 1
                if len(mine["samples"]) < 3:
                    mine["samples"].append(f"{status}: {answer[:300].decode(errors='replace')}")
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = sorted(x for o in outcomes for x in o["latencies"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "ok": len(latencies),
                "errors": sum(o["errors"] for o in outcomes),
                "sent_total": sum(o["total"] for o in outcomes),
                "error_samples": [s for o in outcomes for s in o["samples"]][:3],
                "rps": len(latencies) / spec["duration"],
                "p50_ms": _quantile(latencies, 0.50),
                "p90_ms": _quantile(latencies, 0.90),
                "p99_ms": _quantile(latencies, 0.99),
                "max_ms": latencies[-1] if latencies else None,
                "client_cpu_s": usage.ru_utime + usage.ru_stime,
            }
        )
    )
    return 0


def _quantile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted values (nearest rank)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- processes ---------------------------------------------------------------------------------


def _free_port() -> int:
    from tools.mlflow_server import free_port

    return free_port()


class Server:
    """A server process in its own process group; output in ``log``."""

    def __init__(self, kind: str, command: list[str], port: int, env: dict[str, str], log: Path):
        self.kind = kind
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            command,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(ROOT),
            start_new_session=True,
        )

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = 240.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if _get(f"{self.url}/ping", timeout=2)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.25)
        return False

    def cpu_seconds(self) -> dict[int, float]:
        """User + system CPU seconds of each live process of the server's group."""
        tick = os.sysconf("SC_CLK_TCK")
        found: dict[int, float] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == self.process.pid:  # pgrp
                found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick
        return found

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM the group (retrain drains its prediction log), SIGKILL after ``timeout``."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        _signal_group(self.process.pid, signal.SIGKILL)  # stray workers, if any
        self._out.close()
        return self.process.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _get(url: str, timeout: float = 10.0, token: str | None = None) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", parts.path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _post(url: str, body: bytes) -> tuple[int, Any]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        conn.request("POST", parts.path, body, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def server_env(tracking_uri: str) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "OMP_WAIT_POLICY": "PASSIVE",
        "RETRAIN_SERVE_TOKEN": TOKEN,
        "PYTHONUNBUFFERED": "1",
    }


def start_retrain(
    config_file: Path,
    workers: int,
    env: dict[str, str],
    logs: Path,
    model_threads: int | None = None,
) -> Server:
    port = _free_port()
    command = [sys.executable, "-m", "retrain.cli", "serve", "-c", str(config_file)]
    command += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    if model_threads is not None:
        command += ["--model-threads", str(model_threads)]
    return Server("retrain", command, port, env, logs / f"retrain-serve-w{workers}.log")


def start_mlflow(
    model_uri: str, workers: int, env: dict[str, str], logs: Path, omp_threads: int | None = None
) -> Server:
    port = _free_port()
    if omp_threads is not None:
        env = {**env, "OMP_NUM_THREADS": str(omp_threads)}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", "-p", str(port), "--workers", str(workers)]
    return Server("mlflow", command, port, env, logs / f"mlflow-serve-w{workers}.log")


def run_case(
    server: Server,
    bodies: Path,
    clients: int,
    args: argparse.Namespace,
    workdir: Path,
    *,
    log_db: str | None = None,
    rows: int = 1,
) -> dict[str, Any]:
    """One load run against ``server``: the load child's outcome plus CPU and load average;
    with ``log_db`` (retrain's prediction log) also the rows it logged for this case, counted
    once the writers are idle, against the rows answered (every request sent got a 200 when
    the case had no errors)."""
    logged_before = _settled_count(log_db) if log_db else 0
    spec = {
        "url": server.url,
        "bodies": str(bodies),
        "token": TOKEN,
        "clients": clients,
        "warmup": args.warmup,
        "duration": args.duration,
    }
    spec_path = workdir / "load-spec.json"
    spec_path.write_text(json.dumps(spec))
    load_before = os.getloadavg()
    cpu_before = server.cpu_seconds()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--load-child", str(spec_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=args.warmup + args.duration + 300,
    )
    cpu_after = server.cpu_seconds()
    by_process = sorted(
        (round(cpu_after[pid] - cpu_before.get(pid, 0.0), 2) for pid in cpu_after), reverse=True
    )
    cpu = sum(by_process)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["server_cpu_ms_per_request"] = (
        cpu * 1000 / result["sent_total"] if result["sent_total"] else None
    )
    result["server_cpu_s_by_process"] = by_process  # uneven with --workers 2: see the README
    result["loadavg_before"] = [round(x, 2) for x in load_before]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    if log_db:
        result["log_rows"] = _settled_count(log_db) - logged_before
        result["log_rows_expected"] = result["sent_total"] * rows
    return result


def _count_logged(url: str) -> int:
    return sum(_rows_by_arm(url).values())


def _settled_count(url: str, timeout: float = 60.0) -> int:
    """The row count once it stopped growing (the writers drained their buffers)."""
    deadline = time.monotonic() + timeout
    last = _count_logged(url)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _count_logged(url)
        if now == last:
            return now
        last = now
    return last


# --- model, data, registration -----------------------------------------------------------------


def make_config(tracking_uri: str, workdir: Path) -> Any:
    """``config/retraining.yaml``'s model section, a fresh model name, this work directory."""
    import uuid

    import yaml

    from retrain.config import parse_config

    shipped = yaml.safe_load((ROOT / "config" / "retraining.yaml").read_text())
    model = dict(shipped["model"], name=f"bench-serving-{uuid.uuid4().hex[:8]}")
    return parse_config(
        {
            "model": model,
            "data": {
                "source": {
                    "kind": "parquet",
                    "path": str(workdir / "data"),
                    "event_time_column": "event_time",
                },
                "holdout_fraction": 0.2,
            },
            "registry": {"tracking_uri": tracking_uri},
            "storage": {"work_dir": str(workdir / "work")},
            "evaluation": {"thresholds": {"accuracy": 0.5}},
        }
    )


def week_frames(weeks: range) -> Any:
    import pandas as pd

    from tools.synthetic import StreamSpec, generate_week

    spec = StreamSpec()
    return pd.concat([generate_week(spec, w) for w in weeks], ignore_index=True)


class _Quiet:
    def notify(self, notification: Any) -> None:
        pass


def train_and_register(config: Any, workdir: Path) -> dict[str, Any]:
    """Fit production (weeks 0-3) and canary (weeks 1-4) with ``retrain.train.train``; register
    v1 to production and v2 to canary. Returns the versions, models and fit times."""
    from retrain.registry import ModelRegistry
    from retrain.train import load_trained, train

    registry = ModelRegistry(config, actor="benchmark", notifier=_Quiet())
    features = config.model.features.all
    found: dict[str, Any] = {"models": {}}
    for arm, weeks in (("production", range(4)), ("canary", range(1, 5))):
        frame = week_frames(weeks)
        trained = train(config, frame, out_dir=workdir / "train" / arm)
        model = load_trained(trained)
        info = registry.register(
            model,
            input_example=frame[features].head(10),
            record={
                "algorithm": trained.algorithm,
                "training_data_version": f"weeks-{weeks.start}-{weeks.stop - 1}",
                "metrics": {"accuracy": 0.9},
                "features": list(features),
                "retraining_id": f"bench_serving_{arm}",
                "watermark": trained.train_end or "2026-01-01T00:00:00Z",
            },
            idempotency_key=f"{config.model.name}:{arm}",
            trusted_types=trained.trusted_types,
        )
        registry.promote(info.version, "canary", reason="serving benchmark")
        if arm == "production":
            registry.promote(info.version, "production", reason="serving benchmark")
        found[arm] = info.version
        found["models"][arm] = model
        found[f"{arm}_fit_s"] = trained.fit_seconds
        found[f"{arm}_train_rows"] = trained.train_rows
    return found


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def write_bodies(config: Any, workdir: Path, batches: list[int]) -> dict[int, Path]:
    """``dataframe_split`` bodies of week 6's rows, one file (a body per line) per batch size."""
    features = list(config.model.features.all)
    frame = week_frames(range(6, 8))[features]
    rows = [[_plain(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    paths: dict[int, Path] = {}
    for size in batches:
        count = SINGLE_BODIES if size == 1 else BATCH_BODIES
        if count * size > len(rows):
            raise SystemExit(f"--batches {size}: at most {len(rows) // count} rows per body")
        lines = [
            json.dumps(
                {"dataframe_split": {"columns": features, "data": rows[i * size : (i + 1) * size]}},
                separators=(",", ":"),
            )
            for i in range(count)
        ]
        paths[size] = workdir / f"bodies-{size}.jsonl"
        paths[size].write_text("\n".join(lines) + "\n")
    return paths


def write_config(config: Any, path: Path) -> Path:
    import yaml

    data = config.model_dump(mode="json", by_alias=True, exclude={"source_path"})
    path.write_text(yaml.safe_dump(data))
    return path


def mlflow_model_uri(config: Any, model: Any, example: Any) -> tuple[str, str]:
    """The model MLflow's scoring server serves: retrain's ``@production`` if MLflow loads it,
    else the same fitted pipeline logged with ``mlflow.sklearn.log_model`` (and why)."""
    import mlflow

    uri = f"models:/{config.model.name}@production"
    try:
        loaded = mlflow.pyfunc.load_model(uri)
        loaded.predict(example)
        return uri, "retrain's registered version"
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    name = f"{config.model.name}-mlflow"
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=example, registered_model_name=name
        )
    version = info.registered_model_version
    mlflow.MlflowClient().set_registered_model_alias(name, "production", version)
    return f"models:/{name}@production", f"re-logged with mlflow.sklearn.log_model ({reason})"


# --- in-process: router overhead and the two handlers ------------------------------------------


def measure_in_process(
    config: Any, bodies: dict[int, Path], mlflow_uri: str, calls: int, profile: bool
) -> dict[str, Any]:
    """p50 (ms) of the bare model, the router and each server's handler, interleaved."""
    from mlflow.pyfunc import load_model
    from mlflow.pyfunc.scoring_server import invocations

    from retrain.serving.app import _answer
    from retrain.serving.inputs import Limits, parse_invocation
    from retrain.serving.router import Router

    limits = Limits()
    features = config.model.features
    log_url = f"sqlite:///{Path(config.storage.work_dir) / 'overhead-predictions.db'}"
    pyfunc = load_model(mlflow_uri)
    schema = pyfunc.metadata.get_input_schema()
    results: dict[str, Any] = {}
    with Router(config, prediction_log_url=log_url, start=False) as router:
        model = router._pair.production.model
        for size, path in bodies.items():
            texts = path.read_text().splitlines()
            frames = [parse_invocation(json.loads(t), features, limits).frame for t in texts]

            def handler(i: int, texts: list[str] = texts) -> Any:
                return json.dumps(_answer(router, json.loads(texts[i]), limits))

            cases = {
                "bare_predict": lambda i, f=frames: model.predict(f[i]),
                "bare_predict_1_thread": lambda i, f=frames: _one_thread(model.predict, f[i]),
                "bare_predict_and_proba": lambda i, f=frames: (
                    model.predict(f[i]),
                    model.predict_proba(f[i]),
                ),
                "router_predict": lambda i, f=frames: router.predict(f[i]),
                "retrain_handler": handler,
                "mlflow_handler": lambda i, t=texts: invocations(
                    t[i].encode(), "application/json", pyfunc, schema
                ),
            }
            n = calls if size == 1 else max(50, calls // 10)
            results[str(size)] = _interleaved(cases, n, len(texts))
            if profile:
                _profile(cases, len(texts), size)
        results["log"] = router.log.stats()
    one = results.get("1")
    if one:
        one["router_overhead_ms"] = one["router_predict"] - one["bare_predict_1_thread"]
        one["router_code_ms"] = one["router_predict"] - one["bare_predict_and_proba"]
    return results


_OPENMP: list[Any] = []


def _one_thread(call: Any, frame: Any) -> Any:
    """``call(frame)`` with one OpenMP thread, as the router calls its models (the same
    threadpoolctl limit, found once)."""
    if not _OPENMP:
        from threadpoolctl import ThreadpoolController

        _OPENMP.append(ThreadpoolController().select(user_api="openmp"))
    with _OPENMP[0].limit(limits=1):
        return call(frame)


def _interleaved(cases: dict[str, Any], calls: int, distinct: int) -> dict[str, float]:
    """Median milliseconds of each case, the cases taking turns call by call."""
    names = list(cases)
    times: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        for i in range(5):
            cases[name](i % distinct)
    for i in range(calls):
        turn = names[i % len(names) :] + names[: i % len(names)]
        for name in turn:
            started = time.perf_counter()
            cases[name](i % distinct)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 4) for name, values in times.items()}


def _profile(cases: dict[str, Any], distinct: int, size: int) -> None:
    import cProfile
    import io
    import pstats

    for name in ("retrain_handler", "mlflow_handler"):
        profiler = cProfile.Profile()
        calls = 300 if size == 1 else 30
        profiler.enable()
        for i in range(calls):
            cases[name](i % distinct)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        stats.print_stats(22)
        print(f"\n--- cProfile: {name}, {size}-row requests, {calls} calls ---")
        print("\n".join(out.getvalue().splitlines()[:60]))


# --- the HTTP comparison -----------------------------------------------------------------------


def sanity_check(retrain: Server, mlflow: Server, body: Path) -> dict[str, Any]:
    """The same 100-row body to both: do the rows production answers agree? A body without
    entity ids goes to one arm as a whole, so it is sent to retrain (new request ids each
    time) until production answers it, at most 30 times."""
    text = body.read_text().splitlines()[0].encode()
    status_m, theirs = _post(f"{mlflow.url}/invocations", text)
    if status_m != 200:
        return {"ok": False, "mlflow": [status_m, theirs]}
    canary_answers = 0
    for _ in range(30):
        status_r, ours = _post(f"{retrain.url}/invocations", text)
        if status_r != 200:
            return {"ok": False, "retrain": [status_r, ours]}
        arms = {r["arm"] for r in ours["retrain"]}
        if arms == {"canary"}:
            canary_answers += 1
            continue
        same = [
            a == b
            for a, b, row in zip(
                ours["predictions"], theirs["predictions"], ours["retrain"], strict=True
            )
            if row["arm"] == "production"
        ]
        return {
            "ok": bool(same) and all(same),
            "rows": len(same),
            "production_rows_agreeing": sum(same),
            "answered_by_the_canary_first": canary_answers,
        }
    return {"ok": False, "answered_by_the_canary_first": canary_answers}


def compare_servers(
    args: argparse.Namespace,
    *,
    config_file: Path,
    mlflow_uri: str,
    bodies: dict[int, Path],
    env: dict[str, str],
    workdir: Path,
    log_db: str,
) -> list[dict[str, Any]]:
    """For each worker count: start both servers, alternate the cases, stop both."""
    rows: list[dict[str, Any]] = []
    for workers in args.workers:
        started = time.monotonic()
        servers = {
            "retrain": start_retrain(config_file, workers, env, workdir, args.model_threads),
            "mlflow": start_mlflow(mlflow_uri, workers, env, workdir, args.mlflow_omp_threads),
        }
        try:
            for server in servers.values():
                if not server.wait_ready():
                    raise RuntimeError(f"{server.kind} did not start:\n{server.tail()}")
            print(f"workers={workers}: both servers up in {time.monotonic() - started:.1f} s")
            check = sanity_check(servers["retrain"], servers["mlflow"], bodies[max(bodies)])
            print(f"  same body to both: {check}")
            for clients in args.clients:
                for size in args.batches:
                    for kind in ("retrain", "mlflow"):
                        result = run_case(
                            servers[kind],
                            bodies[size],
                            clients,
                            args,
                            workdir,
                            log_db=log_db if kind == "retrain" else None,
                            rows=size,
                        )
                        result.update(server=kind, workers=workers, clients=clients, rows=size)
                        rows.append(result)
                        print("  " + _line(result), flush=True)
            status, version = _get(f"{servers['retrain'].url}/version", token=TOKEN)
            rows.append({"server": "retrain-status", "workers": workers, "check": check})
            rows[-1]["version"] = json.loads(version) if status == 200 else version.decode()
        finally:
            for server in servers.values():
                code = server.stop()
                if server.kind == "retrain" and code not in (0, -signal.SIGTERM, None):
                    print(f"  retrain serve exited {code}:\n{server.tail(1500)}")
    return rows


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['server']:8} w={r['workers']} c={r['clients']} rows={r['rows']:<4} "
        f"{r['rps']:8.1f} req/s  p50 {_ms(r['p50_ms'])}  p99 {_ms(r['p99_ms'])}  "
        f"errors {r['errors']}  server CPU {_ms(r['server_cpu_ms_per_request'])}/req "
        f"{r['server_cpu_s_by_process']} s  "
        f"load {r['loadavg_before'][0]:.2f}->{r['loadavg_after'][0]:.2f}"
        f"{_logged(r)}"
    )


def _logged(r: dict[str, Any]) -> str:
    """`` logged 99.8%`` of the rows answered (retrain only)."""
    if not r.get("log_rows_expected"):
        return ""
    return f"  logged {100 * r['log_rows'] / r['log_rows_expected']:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:7.2f} ms"


def logged_rows(config: Any) -> dict[str, int]:
    """Rows in the server's prediction log by arm (after the servers stopped)."""
    from retrain.serving.tables import log_url

    return _rows_by_arm(log_url(config))


def _rows_by_arm(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT arm, COUNT(*) FROM retrain_predictions GROUP BY arm"
            )
            return {str(arm): int(n) for arm, n in found}
    finally:
        engine.dispose()


# --- report ------------------------------------------------------------------------------------


def judge(cases: list[dict[str, Any]], overhead: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (workers, clients, rows): the throughput ratio and p99s against the goals."""
    verdicts = []
    pairs: dict[tuple[int, int, int], dict[str, dict[str, Any]]] = {}
    for case in cases:
        if case["server"] in ("retrain", "mlflow"):
            key = (case["workers"], case["clients"], case["rows"])
            pairs.setdefault(key, {})[case["server"]] = case
    for (workers, clients, rows), pair in sorted(pairs.items()):
        ours, theirs = pair.get("retrain"), pair.get("mlflow")
        if not ours or not theirs or not theirs["rps"]:
            continue
        ratio = ours["rps"] / theirs["rps"]
        p99_lower = (ours["p99_ms"] or 1e9) < (theirs["p99_ms"] or 0)
        verdicts.append(
            {
                "workers": workers,
                "clients": clients,
                "rows": rows,
                "throughput_ratio": round(ratio, 3),
                "throughput_goal_met": ratio >= GOALS["throughput_ratio"],
                "p99_lower": p99_lower,
            }
        )
    one = overhead.get("1", {})
    if "router_overhead_ms" in one:
        verdicts.append(
            {
                "router_overhead_ms": round(one["router_overhead_ms"], 4),
                "overhead_goal_met": one["router_overhead_ms"] <= GOALS["overhead_ms"],
            }
        )
    return verdicts


def print_report(results: dict[str, Any]) -> None:
    print("\n## HTTP: requests/s and latency (same model, same request bodies)\n")
    print(
        "| workers | clients | rows/request | server | req/s | p50 | p99 | errors | CPU/req "
        "| rows logged |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results["cases"]:
        if r["server"] not in ("retrain", "mlflow"):
            continue
        name = "`retrain serve`" if r["server"] == "retrain" else "`mlflow models serve`"
        print(
            f"| {r['workers']} | {r['clients']} | {r['rows']} | {name} | {r['rps']:.1f} | "
            f"{_ms(r['p50_ms']).strip()} | {_ms(r['p99_ms']).strip()} | {r['errors']} | "
            f"{_ms(r['server_cpu_ms_per_request']).strip()} | {_logged(r).strip() or '-'} |"
        )
    print("\n## In-process p50 (ms), no HTTP\n")
    print(
        "| rows | bare predict | bare predict, 1 thread | predict + proba | Router.predict "
        "| retrain handler | MLflow handler |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, found in results["in_process"].items():
        if size == "log":
            continue
        print(
            f"| {size} | {found['bare_predict']:.3f} | {found['bare_predict_1_thread']:.3f} | "
            f"{found['bare_predict_and_proba']:.3f} | "
            f"{found['router_predict']:.3f} | {found['retrain_handler']:.3f} | "
            f"{found['mlflow_handler']:.3f} |"
        )
    print("\n## Goals\n")
    for verdict in results["verdicts"]:
        print(f"* {verdict}")
    print(f"\nMLflow served: {results['mlflow_model']} ({results['mlflow_model_uri']})")
    print(f"Prediction log rows by arm: {results['logged_rows']}")
    print(f"Load average during the run: {results['loadavg']}")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where everything goes (default: a new /tmp dir)")
    parser.add_argument("--url", help="an MLflow server to use (default: a throw-away one)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="+", default=[4])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=3.0, help="discarded seconds per case")
    parser.add_argument("--calls", type=int, default=1000, help="in-process calls per case")
    parser.add_argument("--profile", action="store_true", help="cProfile both handlers")
    parser.add_argument(
        "--mlflow-omp-threads",
        type=int,
        help="OMP_NUM_THREADS for the MLflow server (default: unset, every core)",
    )
    parser.add_argument(
        "--model-threads",
        type=int,
        help="retrain serve --model-threads (default: serving.model_threads, 1)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--load-child":
        return load_child(sys.argv[2])
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="serving-bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {workdir}; load average {os.getloadavg()}")
    from tools.mlflow_server import MlflowServer

    began = time.monotonic()
    loads = [os.getloadavg()]
    if args.url:
        mlflow_server = MlflowServer.attach(args.url)
    else:
        mlflow_server = MlflowServer(root=workdir / "mlflow", env={"MLFLOW_DISABLE_TELEMETRY": "1"})
        mlflow_server.start()
    try:
        os.environ["MLFLOW_TRACKING_URI"] = mlflow_server.url
        results = run(args, mlflow_server.url, workdir, loads)
    finally:
        mlflow_server.stop()
    results["wall_s"] = round(time.monotonic() - began, 1)
    out = workdir / "serving.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print_report(results)
    print(f"\nwall {results['wall_s']} s; results: {out}")
    failed = any(c.get("errors") for c in results["cases"])
    return 1 if failed else 0


def run(
    args: argparse.Namespace, tracking_uri: str, workdir: Path, loads: list[Any]
) -> dict[str, Any]:
    from retrain.serving.tables import log_url

    config = make_config(tracking_uri, workdir)
    started = time.monotonic()
    registered = train_and_register(config, workdir)
    print(
        f"{config.model.name}: production v{registered['production']}, canary "
        f"v{registered['canary']} (fit {registered['production_fit_s']} s / "
        f"{registered['canary_fit_s']} s) in {time.monotonic() - started:.1f} s"
    )
    bodies = write_bodies(config, workdir, args.batches)
    example = week_frames(range(6, 7))[list(config.model.features.all)].head(10)
    mlflow_uri, mlflow_model = mlflow_model_uri(config, registered["models"]["production"], example)
    print(f"MLflow serves {mlflow_uri}: {mlflow_model}")
    loads.append(os.getloadavg())
    in_process = measure_in_process(config, bodies, mlflow_uri, args.calls, args.profile)
    print(f"in-process p50 (ms): {json.dumps(in_process)}")
    loads.append(os.getloadavg())
    config_file = write_config(config, workdir / "model.yaml")
    env = server_env(tracking_uri)
    cases = compare_servers(
        args,
        config_file=config_file,
        mlflow_uri=mlflow_uri,
        bodies=bodies,
        env=env,
        workdir=workdir,
        log_db=log_url(config),
    )
    loads.append(os.getloadavg())
    return {
        "model": config.model.name,
        "versions": {"production": registered["production"], "canary": registered["canary"]},
        "canary_traffic_percent": config.deployment.canary_traffic_percent,
        "train_rows": {
            "production": registered["production_train_rows"],
            "canary": registered["canary_train_rows"],
        },
        "mlflow_model_uri": mlflow_uri,
        "mlflow_model": mlflow_model,
        "settings": {k: v for k, v in vars(args).items() if k != "url"},
        "cpu_count": os.cpu_count(),
        "in_process": in_process,
        "cases": cases,
        "verdicts": judge(cases, in_process),
        "logged_rows": logged_rows(config),
        "loadavg": [[round(x, 2) for x in load] for load in loads],
    }


if __name__ == "__main__":
    sys.exit(main())
