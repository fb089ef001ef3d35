"""``make airflow``: Airflow standalone + an MLflow server on local SQLite, with the retrain DAGs.

::

    python -m tools.standalone start  [--state DIR] [--port 8080] [--mlflow-port 5000]
    python -m tools.standalone status [--state DIR]
    python -m tools.standalone stop   [--state DIR]

``start`` runs both servers in the background, each in its own process group, and returns once
they are healthy. The state directory (default ``.state/demo`` when ``make demo`` left one, else
``.state/airflow``) holds everything::

    airflow/    AIRFLOW_HOME: airflow.db (SQLite), logs/, passwords.json (the admin password)
    mlflow/     mlflow.db (SQLite), mlartifacts/, mlflow-server.log
    data/events the event stream (parquet); a small synthetic one is written when empty
    work/       retrain's per-run files (extracts, models, reports)
    standalone.json, airflow-standalone.log   pids, URLs and Airflow's output

On the demo's state the config is ``config/demo.yaml``, so both UIs show what the demo did;
elsewhere ``config/retraining.yaml`` (or ``--config``: a file, or a directory of model files such
as ``config/models``, which gives each model its own DAGs). The admin password is random, made on
the first start and kept in ``airflow/passwords.json``. Every DAG is unpaused (``--keep-paused``
leaves the flags alone): a paused DAG's REST-triggered run would stay queued, and the scheduled
DAGs (monitor, pipeline) start their latest slot at once, which checks the rules and retrains only
if one fires. The one-slot registry pool of each
model (``retrain_registry``, or ``retrain_registry__<model>``) is created (the pipeline's deploy
task never runs without it). ``stop`` ends both process
groups and waits for them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tools.mlflow_server import MlflowServer, MlflowServerError, is_healthy

__all__ = ["Settings", "default_state", "main", "start", "status", "stop"]

REPO = Path(__file__).resolve().parents[1]
DEMO_STATE = REPO / ".state" / "demo"
HOST = "127.0.0.1"
ADMIN = "admin"
COMPONENTS = ("scheduler", "dag_processor", "triggerer")
STARTUP_TIMEOUT = 240.0
PRELOAD = "airflow,airflow.executors.local_executor,retrain_airflow.preload"


class StandaloneError(RuntimeError):
    """Airflow or MLflow did not start or stop as expected."""


def default_state() -> Path:
    """The demo's state when ``make demo`` left one, else ``.state/airflow``."""
    return DEMO_STATE if DEMO_STATE.is_dir() else REPO / ".state" / "airflow"


@dataclass(frozen=True)
class Settings:
    """Where the state lives and which ports and config to use."""

    state: Path
    port: int = 8080
    mlflow_port: int = 5000
    config: Path | None = None
    unpause: bool = True

    @property
    def config_path(self) -> Path:
        if self.config is not None:
            return self.config.resolve()
        demo = self.state.resolve() == DEMO_STATE.resolve()
        return REPO / "config" / ("demo.yaml" if demo else "retraining.yaml")

    @property
    def airflow_home(self) -> Path:
        return self.state / "airflow"

    @property
    def data_dir(self) -> Path:
        return self.state / "data" / "events"

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "passwords.json"

    @property
    def record_file(self) -> Path:
        return self.state / "standalone.json"

    @property
    def airflow_log(self) -> Path:
        return self.state / "airflow-standalone.log"

    @property
    def airflow_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"


# --- processes ------------------------------------------------------------------------------


def alive(pgid: int | None) -> bool:
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists but is not ours
        return True
    return True


def stop_group(pgid: int, timeout: float) -> None:
    """SIGTERM the process group, wait up to ``timeout``, then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while alive(pgid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(-pgid, os.WNOHANG)  # reap our own child, if it is one
            time.sleep(0.2)
        if not alive(pgid):
            return
    raise StandaloneError(f"process group {pgid} survived SIGKILL")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _read_record(settings: Settings) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(settings.record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# --- Airflow REST -----------------------------------------------------------------------------


def _request(url: str, *, method: str = "GET", body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def health(url: str) -> dict[str, str]:
    """Status per Airflow component (``metadatabase``, ``scheduler``, ...); empty when down."""
    try:
        answer = _request(f"{url}/api/v2/monitor/health")
    except (OSError, ValueError):
        return {}
    return {name: str((part or {}).get("status")) for name, part in answer.items()}


def token(url: str, password: str) -> str:
    answer = _request(
        f"{url}/auth/token", method="POST", body={"username": ADMIN, "password": password}
    )
    return str(answer["access_token"])


def ensure_pools(url: str, token: str, config: Path) -> str:
    """The one-slot registry pool of every model of ``config`` (created or reset to 1 slot)."""
    from retrain_airflow.dags import pools

    said = []
    for name, spec in pools(config).items():
        body = {"name": name, "slots": 1, "description": spec["description"]}
        try:
            pool = _request(f"{url}/api/v2/pools/{name}", token=token)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            _request(f"{url}/api/v2/pools", method="POST", body=body, token=token)
            said.append(f"pool {name} created (1 slot)")
            continue
        if pool["slots"] != 1:
            _request(f"{url}/api/v2/pools/{name}", method="PATCH", body=body, token=token)
            said.append(f"pool {name} reset to 1 slot")
        else:
            said.append(f"pool {name} exists (1 slot)")
    return "; ".join(said)


def dags(url: str, token: str) -> dict[str, bool]:
    """``dag_id -> is_paused`` of the DAGs Airflow knows."""
    answer = _request(f"{url}/api/v2/dags?limit=100", token=token)
    return {d["dag_id"]: bool(d["is_paused"]) for d in answer["dags"]}


def unpause(url: str, token: str, dags: dict[str, bool]) -> dict[str, bool]:
    """Unpause every DAG (a paused DAG's REST-triggered run would stay queued)."""
    for dag_id, paused in dags.items():
        if paused:
            _request(
                f"{url}/api/v2/dags/{dag_id}",
                method="PATCH",
                body={"is_paused": False},
                token=token,
            )
    return dict.fromkeys(dags, False)


def import_errors(url: str, token: str) -> list[str]:
    answer = _request(f"{url}/api/v2/importErrors", token=token)
    return [
        f"{e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}"
        for e in answer["import_errors"]
    ]


# --- state ------------------------------------------------------------------------------------


def admin_password(settings: Settings) -> str:
    """The admin password: read from the passwords file, or made (random) on the first start."""
    try:
        return str(json.loads(settings.passwords_file.read_text(encoding="utf-8"))[ADMIN])
    except (OSError, ValueError, KeyError):
        pass
    password = secrets.token_urlsafe(12)
    settings.passwords_file.parent.mkdir(parents=True, exist_ok=True)
    settings.passwords_file.write_text(json.dumps({ADMIN: password}), encoding="utf-8")
    settings.passwords_file.chmod(0o600)
    return password


def ensure_data(settings: Settings) -> str:
    """A small synthetic event stream (four weeks up to today) when the data path is empty."""
    if any(settings.data_dir.rglob("*.parquet")):
        return f"data: {settings.data_dir}"
    from tools.synthetic import StreamSpec, write_stream

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday())
    spec = StreamSpec(
        start=monday - timedelta(weeks=4), weeks=4, rows_per_week=3000, drift_week=None
    )
    files = write_stream(settings.data_dir, spec)
    return f"data: {settings.data_dir} (synthetic, {len(files)} weeks written)"


def airflow_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of ``airflow standalone`` (its tasks inherit it), over ``base``
    (default: this process's environment)."""
    bin_dir = str(Path(sys.executable).parent)
    inherited = dict(os.environ if base is None else base)
    return {
        **inherited,
        "PATH": f"{bin_dir}{os.pathsep}{inherited.get('PATH', '')}",
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(settings.port),
        "AIRFLOW__API__BASE_URL": settings.airflow_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.airflow_url}/execution/",
        # Airflow's defaults (8793/8794) for port 8080, shifted along with other ports.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.port + 713),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.port + 714),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        # Task processes fork from executor workers that a forkserver started with MLflow,
        # scikit-learn, skops, pandas and the steps imported (retrain_airflow.preload).
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": PRELOAD,
        # The scheduler may start a task before the API server listens (a run queued while
        # stopped); the default 5 retries give up after ~11 s and cost a task retry (10 min).
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "8",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(settings.passwords_file),
        "RETRAIN_CONFIG": str(settings.config_path),
        "RETRAIN_DATA_PATH": str(settings.data_dir),
        "RETRAIN_WORK_DIR": str(settings.state / "work"),
        "RETRAIN_TRACKING_URI": settings.mlflow_url,
        "MLFLOW_TRACKING_URI": settings.mlflow_url,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    }


# --- commands ---------------------------------------------------------------------------------


def _wait_airflow(settings: Settings, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        state = health(settings.airflow_url)
        if state and all(state.get(name) == "healthy" for name in COMPONENTS):
            return
        if process.poll() is not None:
            raise StandaloneError(f"airflow standalone exited:\n{tail(settings.airflow_log)}")
        time.sleep(1.0)
    raise StandaloneError(
        f"Airflow not healthy after {STARTUP_TIMEOUT:g} s:\n{tail(settings.airflow_log)}"
    )


def wait_dags(settings: Settings, token: str, timeout: float = 120.0) -> dict[str, bool]:
    """Wait until the DAG processor has parsed every file in ``dags/`` (or reported errors)."""
    files = sorted(p.stem for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
    deadline = time.monotonic() + timeout
    while True:
        known = dags(settings.airflow_url, token)
        if set(files) <= set(known) or import_errors(settings.airflow_url, token):
            return known
        if time.monotonic() >= deadline:
            return known
        time.sleep(2.0)


def start(settings: Settings) -> int:
    """Start MLflow and Airflow in the background; print URLs and credentials once healthy."""
    began = time.monotonic()
    record = _read_record(settings)
    if alive(record.get("airflow", {}).get("pid")):
        print(f"already running (state {settings.state}); `stop` first to restart")
        return status(settings)
    if alive(record.get("mlflow", {}).get("pid")):
        stop(settings)  # a leftover MLflow from a start that failed half-way
    for port in (settings.port, settings.port + 713, settings.port + 714, settings.mlflow_port):
        if not port_free(port):
            raise StandaloneError(f"port {port} on {HOST} is in use; pass --port / --mlflow-port")
    settings.state.mkdir(parents=True, exist_ok=True)
    print(ensure_data(settings))
    password = admin_password(settings)

    mlflow = MlflowServer(
        root=settings.state / "mlflow",
        port=settings.mlflow_port,
        host=HOST,
        env={"MLFLOW_DISABLE_TELEMETRY": "true"},
    ).start()
    print(f"MLflow {mlflow.url} ready after {time.monotonic() - began:.0f} s")
    record = {"mlflow": {"pid": mlflow.pid, "url": mlflow.url, "log": str(mlflow.log_path)}}
    with settings.airflow_log.open("ab") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "standalone"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=airflow_env(settings),
            cwd=settings.state,
            start_new_session=True,
        )
    record["airflow"] = {
        "pid": process.pid,
        "url": settings.airflow_url,
        "log": str(settings.airflow_log),
    }
    settings.record_file.write_text(json.dumps(record, indent=2), encoding="utf-8")
    try:
        _wait_airflow(settings, process)
        auth = token(settings.airflow_url, password)
        pool = ensure_pools(settings.airflow_url, auth, settings.config_path)
        known = wait_dags(settings, auth)
        if settings.unpause:
            known = unpause(settings.airflow_url, auth, known)
        errors = import_errors(settings.airflow_url, auth)
    except (StandaloneError, OSError, ValueError, KeyError):
        stop(settings)
        raise
    print(f"Airflow {settings.airflow_url} ready after {time.monotonic() - began:.0f} s; {pool}")
    for dag_id, paused in sorted(known.items()):
        print(f"  DAG {dag_id:<24} {'paused' if paused else 'active'}")
    for error in errors:
        print(f"  IMPORT ERROR {error}")
    print(
        f"\nAirflow UI  {settings.airflow_url}  user {ADMIN}  password {password}\n"
        f"MLflow UI   {mlflow.url}\n"
        f"config      {settings.config_path}\n"
        f"state       {settings.state}  (Airflow log: {settings.airflow_log})\n"
        f"Trigger a run: DAG retrain_pipeline -> Trigger. Stop: {_stop_command(settings)}"
    )
    return 1 if errors else 0


def _stop_command(settings: Settings) -> str:
    """The command that stops this deployment."""
    if settings.state.resolve() == default_state().resolve():
        return "make airflow-stop"
    return f".venv/bin/python -m tools.standalone stop --state {settings.state}"


def stop(settings: Settings) -> int:
    """Stop Airflow's and MLflow's process groups and wait for them."""
    record = _read_record(settings)
    for name, timeout in (("airflow", 60.0), ("mlflow", 15.0)):
        pid = record.get(name, {}).get("pid")
        if alive(pid):
            began = time.monotonic()
            stop_group(int(pid), timeout)
            print(f"{name} stopped (process group {pid}, {time.monotonic() - began:.0f} s)")
        else:
            print(f"{name} not running")
    settings.record_file.unlink(missing_ok=True)
    return 0


def status(settings: Settings) -> int:
    """Whether both are running and healthy; the URLs and the admin password."""
    record = _read_record(settings)
    running = True
    for name in ("airflow", "mlflow"):
        entry = record.get(name, {})
        running_now = alive(entry.get("pid"))
        url = entry.get("url") or (
            settings.airflow_url if name == "airflow" else settings.mlflow_url
        )
        if name == "airflow":
            state = health(url) if running_now else {}
            detail = ", ".join(f"{k} {v}" for k, v in state.items()) or "not answering"
        else:
            detail = "healthy" if running_now and is_healthy(url) else "not answering"
        shown = detail if running_now else ""
        print(f"{name:<8} {'running' if running_now else 'stopped'}  {url}  {shown}")
        running = running and running_now
    if running and settings.passwords_file.exists():
        print(f"login    {ADMIN} / {admin_password(settings)}")
    print(f"state    {settings.state}")
    return 0 if running else 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.standalone",
        description="Run Airflow standalone + MLflow locally (SQLite) with the retrain DAGs.",
    )
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="state directory (default: .state/demo if it exists, else .state/airflow)",
    )
    parser.add_argument("--port", type=int, default=8080, help="Airflow UI/API port")
    parser.add_argument("--mlflow-port", type=int, default=5000, help="MLflow server port")
    parser.add_argument(
        "--keep-paused",
        action="store_true",
        help="leave the DAGs' paused flags as they are (default: unpause every DAG)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="retrain config (default: config/demo.yaml on the demo state, else retraining.yaml)",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        state=(args.state or default_state()).resolve(),
        port=args.port,
        mlflow_port=args.mlflow_port,
        config=args.config,
        unpause=not args.keep_paused,
    )
    commands = {"start": start, "stop": stop, "status": status}
    try:
        return commands[args.command](settings)
    except (StandaloneError, MlflowServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
