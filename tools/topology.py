"""``make prod-up`` / ``make prod-down``: the production topology, natively (no Docker).

::

    python -m tools.topology up     [--state DIR] [--port 8080] [--mlflow-port 5000] [--config PATH]
    python -m tools.topology status [--state DIR]
    python -m tools.topology down   [--state DIR]

``up`` starts what ``docker-compose.yaml`` runs, as local processes, each in its own process
group: an MLflow server on PostgreSQL (artifacts under the state directory), and Airflow's
``api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two Celery workers on Redis,
with the metadata database on PostgreSQL. The Airflow settings come from
``deploy/airflow-celery.env``, the file the compose file reads too; only what differs per
deployment (URLs, secrets, ports) is made here. It returns once every component is healthy and
both workers answer a Celery ping, and prints the URLs and where the admin password is.

Databases: ``<prefix>_airflow`` and ``<prefix>_mlflow`` are created on the local PostgreSQL
(``--pg`` names the server; the OS user connects, as with ``psql``), or taken as they are from
``RETRAIN_PROD_AIRFLOW_DB_URL`` / ``RETRAIN_PROD_MLFLOW_DB_URL``. Broker: one Redis database
(``--redis-db``, default 11), which must be empty when ``up`` starts. ``down`` stops every
process group it started, drops the databases it created and empties its Redis database, so
nothing is left behind; the state directory keeps the logs.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from tools.mlflow_server import MlflowServer, MlflowServerError, is_healthy
from tools.standalone import (
    ADMIN,
    HOST,
    REPO,
    Settings,
    StandaloneError,
    admin_password,
    alive,
    ensure_data,
    ensure_pools,
    health,
    import_errors,
    port_free,
    stop_group,
    tail,
    token,
    unpause,
    wait_dags,
)
from tools.standalone import airflow_env as standalone_env

__all__ = [
    "COMPONENTS",
    "SETTINGS_FILE",
    "Topology",
    "TopologyError",
    "down",
    "main",
    "read_env_file",
    "status",
    "up",
]

#: The Airflow settings shared with docker-compose.yaml (its ``env_file``).
SETTINGS_FILE = REPO / "deploy" / "airflow-celery.env"
#: What ``/api/v2/monitor/health`` must report healthy.
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
STARTUP_TIMEOUT = 420.0
AIRFLOW_DB_ENV = "RETRAIN_PROD_AIRFLOW_DB_URL"
MLFLOW_DB_ENV = "RETRAIN_PROD_MLFLOW_DB_URL"
REDIS_ENV = "RETRAIN_PROD_REDIS_URL"


class TopologyError(StandaloneError):
    """A part of the topology did not start, answer or stop as expected."""


def read_env_file(path: Path = SETTINGS_FILE) -> dict[str, str]:
    """``KEY=VALUE`` lines of ``path`` (``#`` comments and blank lines skipped), in order.

    The subset of Compose's ``env_file`` format the settings file keeps to: no quotes, no
    interpolation, no ``export``; anything else is an error naming the line.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or any(c in value for c in "\"'$`"):
            raise TopologyError(f"{path}:{number}: expected KEY=VALUE without quotes or $: {raw!r}")
        if key in values:
            raise TopologyError(f"{path}:{number}: {key} is set twice")
        values[key] = value
    return values


def _redact(url: str) -> str:
    """``url`` without its password."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Topology:
    """Where the state lives, the ports, and which databases and Redis db to use."""

    state: Path
    port: int = 8080
    mlflow_port: int = 5000
    config: Path | None = None
    unpause: bool = True
    prefix: str = "retrain_prod"
    pg: str = f"{HOST}:5432"
    redis: str = f"redis://{HOST}:6379"
    redis_db: int = 11
    workers: int = 2
    #: Give each worker its own empty work directory (a private tmpfs at the same path, in a
    #: mount namespace: needs root and util-linux's ``unshare``), as on separate machines; the
    #: config must then hand files over through the artifact store (``storage.handoff``).
    private_work_dirs: bool = False
    #: Settings over the shared file's (tests shorten timeouts); recorded in the state file.
    overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def standalone(self) -> Settings:
        """The pieces shared with ``make airflow``: state layout, admin password, data."""
        return Settings(
            state=self.state,
            port=self.port,
            mlflow_port=self.mlflow_port,
            config=self.config,
            unpause=self.unpause,
        )

    @property
    def record_file(self) -> Path:
        return self.state / "topology.json"

    @property
    def secrets_file(self) -> Path:
        return self.state / "airflow" / "secrets.json"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    def database_url(self, which: str) -> tuple[str, bool]:
        """``(SQLAlchemy URL, created by us)`` of the ``airflow`` or ``mlflow`` database."""
        env = os.environ.get(AIRFLOW_DB_ENV if which == "airflow" else MLFLOW_DB_ENV)
        if env:
            return env, False
        return f"postgresql+psycopg2://{getpass.getuser()}@{self.pg}/{self.prefix}_{which}", True

    @property
    def broker_url(self) -> str:
        return f"{os.environ.get(REDIS_ENV, self.redis).rstrip('/')}/{self.redis_db}"

    def worker_names(self) -> list[str]:
        return [f"worker{i}@{HOST}" for i in range(1, self.workers + 1)]


# --- PostgreSQL and Redis -----------------------------------------------------------------------


def _admin_connection(url: str) -> Any:
    """An autocommit psycopg2 connection to the server of ``url``, database ``postgres``."""
    import psycopg2  # type: ignore[import-untyped]

    parts = urllib.parse.urlsplit(url)
    connection = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or getpass.getuser(),
        password=parts.password,
        dbname="postgres",
    )
    connection.autocommit = True
    return connection


def _database_name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def create_database(url: str) -> None:
    """Create the (absent) database of ``url``; an existing one is an error (not ours)."""
    from psycopg2 import sql

    name = _database_name(url)
    with contextlib.closing(_admin_connection(url)) as connection, connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone():
            raise TopologyError(
                f"database {name!r} already exists on {_redact(url)}: `down` a previous "
                "topology, drop it, or pick another --prefix"
            )
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> bool:
    """Drop the database of ``url`` (its sessions closed first); whether it existed."""
    from psycopg2 import sql

    name = _database_name(url)
    with contextlib.closing(_admin_connection(url)) as connection, connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if not cur.fetchone():
            return False
        cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    return True


def database_exists(url: str) -> bool:
    with contextlib.closing(_admin_connection(url)) as connection, connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_database_name(url),))
        return cur.fetchone() is not None


def redis_keys(url: str) -> int:
    """How many keys the Redis database of ``url`` holds."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return cast(int, client.dbsize())
    finally:
        client.close()


def flush_redis(url: str) -> int:
    """Empty the Redis database of ``url``; how many keys it held."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = cast(int, client.dbsize())
        client.flushdb()
        return keys
    finally:
        client.close()


def ping_workers(broker_url: str, timeout: float = 2.0) -> set[str]:
    """Names of the Celery workers that answer a ping on ``broker_url``."""
    from celery import Celery  # type: ignore[import-untyped]
    from redis.exceptions import RedisError

    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(timeout=timeout) or []
    except (OSError, RedisError):  # the broker is down or restarting: nobody answers
        replies = []
    finally:
        app.close()
    return {name for reply in replies for name in reply}


# --- the processes ------------------------------------------------------------------------------


def _secrets(topology: Topology) -> dict[str, str]:
    """Keys every Airflow process must share (made once, kept 0600 in the state)."""
    path = topology.secrets_file
    try:
        values: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return values
    except (OSError, ValueError):
        pass
    from cryptography.fernet import Fernet

    values = {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(values, f)
    return values


def ports(topology: Topology) -> dict[str, int]:
    """Every port the topology listens on (Airflow's defaults, shifted with ``--port``)."""
    base = topology.port
    listed = {
        "api-server": base,
        "mlflow": topology.mlflow_port,
        "triggerer-logs": base + 714,
        "scheduler-health": base + 894,
    }
    for i in range(1, topology.workers + 1):
        listed[f"worker{i}-logs"] = base + 713 + 2 * i  # 8795, 8797 next to 8793/8794
    return listed


def airflow_env(topology: Topology) -> dict[str, str]:
    """The environment every Airflow process of the topology runs with."""
    settings = topology.standalone
    # Nothing Airflow-specific from the caller (a test session's AIRFLOW_HOME or log level):
    # every setting of the topology is made here.
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env = standalone_env(settings, base)
    for key in ("AIRFLOW__SCHEDULER__MP_START_METHOD", "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"):
        env.pop(key)  # LocalExecutor settings of `make airflow`
    airflow_db, _ = topology.database_url("airflow")
    listening = ports(topology)
    env.update(read_env_file())
    env.update(_secrets(topology))
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
            "AIRFLOW__CELERY__BROKER_URL": topology.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(listening["triggerer-logs"]),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(
                listening["scheduler-health"]
            ),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": HOST,
            # Task instances name the worker that ran them (RETRAIN_HOSTNAME, set per worker).
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "retrain_airflow.hosts.hostname",
        }
    )
    env.update(topology.overrides)
    return env


def commands(topology: Topology) -> dict[str, tuple[list[str], dict[str, str]]]:
    """``name -> (argv, extra env)`` of every long-running Airflow process."""
    airflow = str(Path(sys.executable).parent / "airflow")
    listed: dict[str, tuple[list[str], dict[str, str]]] = {
        "api-server": ([airflow, "api-server", "--host", HOST, "--port", str(topology.port)], {}),
        "scheduler": ([airflow, "scheduler"], {}),
        "dag-processor": ([airflow, "dag-processor"], {}),
        "triggerer": ([airflow, "triggerer"], {}),
    }
    for i, name in enumerate(topology.worker_names(), start=1):
        port = str(ports(topology)[f"worker{i}-logs"])
        argv = argv_worker(airflow, name)
        if topology.private_work_dirs:
            work = str(topology.standalone.state / "work")
            Path(work).mkdir(parents=True, exist_ok=True)
            mount = 'mount -t tmpfs -o size=4g,mode=0700 tmpfs "$0" && exec "$@"'
            argv = ["unshare", "--mount", "--propagation", "private", "--"]
            argv += ["sh", "-c", mount, work, *argv_worker(airflow, name)]
        listed[f"worker{i}"] = (
            argv,
            {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": port, "RETRAIN_HOSTNAME": f"worker{i}"},
        )
    return listed


def argv_worker(airflow: str, name: str) -> list[str]:
    """``airflow celery worker`` named ``name`` (Celery's node name, unique per broker)."""
    return [airflow, "celery", "worker", "--celery-hostname", name, "--without-mingle"]


def spawn(
    topology: Topology, name: str, argv: list[str], env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start one process in its own process group, output appended to ``logs/<name>.log``."""
    topology.logs.mkdir(parents=True, exist_ok=True)
    with (topology.logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=topology.state,
            start_new_session=True,
        )


def start_process(topology: Topology, name: str) -> int:
    """(Re)start the Airflow process ``name`` (e.g. after a fault test killed it); its pid."""
    argv, extra = commands(topology)[name]
    process = spawn(topology, name, argv, {**airflow_env(topology), **extra})
    record = read_record(topology)
    record.setdefault("processes", {})[name] = {"pid": process.pid, "argv": argv[1:]}
    write_record(topology, record)
    return process.pid


def read_record(topology: Topology) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(topology.record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record


def write_record(topology: Topology, record: Mapping[str, Any]) -> None:
    topology.record_file.parent.mkdir(parents=True, exist_ok=True)
    topology.record_file.write_text(json.dumps(record, indent=2), encoding="utf-8")


def wait_healthy(topology: Topology, timeout: float = STARTUP_TIMEOUT) -> dict[str, str]:
    """Wait until the API reports every component healthy and every worker answers a ping."""
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{topology.port}"
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        record = read_record(topology)
        for name, entry in record.get("processes", {}).items():
            if not alive(entry.get("pid")):
                raise TopologyError(
                    f"{name} exited; last lines of {topology.logs / (name + '.log')}:\n"
                    f"{tail(topology.logs / (name + '.log'))}"
                )
        last = health(url)
        if last and all(last.get(c) == "healthy" for c in COMPONENTS):
            answering = ping_workers(topology.broker_url)
            last["workers"] = ", ".join(sorted(answering)) or "none"
            if set(topology.worker_names()) <= answering:
                return last
        time.sleep(1.0)
    raise TopologyError(f"topology not healthy after {timeout:g} s: {last or 'API not answering'}")


# --- a drill: data and config for tests/topology and benchmarks/topology.py -------------------

#: 29 February: no cron slot since the DAGs' start date.
NEVER = "0 0 29 2 *"


@dataclass(frozen=True)
class Drill:
    """A synthetic event stream and a config that runs it on the topology.

    Weeks ``0 .. drift_week - 1`` are written at once; the drifted weeks (``drift_week`` to the
    last) only by :meth:`drift`, so a first model trains on clean data and the monitor then
    sees the drift. The config hands files over through the artifact store (the workers may
    have their own disks), retries after 3 s, has no cooldown, gates at accuracy 0.6, and its
    weekly cron is ``weekly``.
    """

    state: Path
    weeks: int = 6
    drift_week: int = 4
    rows_per_week: int = 6000

    @property
    def config_file(self) -> Path:
        return self.state / "retraining.yaml"

    @property
    def data_dir(self) -> Path:
        """Where ``make prod-up`` (as ``make airflow``) reads the event stream in ``state``."""
        return Settings(state=self.state).data_dir

    def stream(self) -> Any:
        from datetime import UTC, datetime, timedelta

        from tools.synthetic import StreamSpec

        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        monday = today - timedelta(days=today.weekday())
        return StreamSpec(
            start=monday - timedelta(weeks=self.weeks),
            weeks=self.weeks,
            rows_per_week=self.rows_per_week,
            drift_week=self.drift_week,
        )

    def write(self, *, weekly: str = NEVER) -> Drill:
        """The clean weeks and the config (weekly cron ``weekly``)."""
        import yaml

        from tools.synthetic import write_stream

        write_stream(self.data_dir, self.stream(), weeks=range(self.drift_week))
        data = yaml.safe_load((REPO / "config" / "retraining.yaml").read_text(encoding="utf-8"))
        data["data"]["source"]["path"] = "${RETRAIN_DATA_PATH}"
        data["registry"]["tracking_uri"] = "${RETRAIN_TRACKING_URI}"
        # deterministic (no early-stopping split): an in-process run gives the same model
        data["model"]["estimator"]["params"] = {
            "max_iter": 300,
            "learning_rate": 0.1,
            "early_stopping": False,
        }
        data["storage"] = {"work_dir": "${RETRAIN_WORK_DIR}", "handoff": "artifacts"}
        data["triggers"] = {"cooldown_hours": 0}
        # the synthetic churn stream's models score ~0.73: a gate they can pass when they improve
        data["evaluation"] = {**data.get("evaluation", {}), "thresholds": {"accuracy": 0.6}}
        data["schedule"] = {
            "weekly": weekly,
            "full_rebuild": NEVER,
            "monitor": NEVER,
            "retries": 2,
            "retry_delay_minutes": 0.05,
        }
        self.set_config(data)
        return self

    def config(self) -> dict[str, Any]:
        import yaml

        data: dict[str, Any] = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        return data

    def set_config(self, data: Mapping[str, Any]) -> None:
        import yaml

        self.state.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")

    def drift(self) -> None:
        """The drifted weeks arrive."""
        from tools.synthetic import write_stream

        write_stream(self.data_dir, self.stream(), weeks=range(self.drift_week, self.weeks))

    def environ(self, topology: Topology) -> dict[str, str]:
        """What a process outside the topology needs to read the config."""
        return {
            "RETRAIN_DATA_PATH": str(self.data_dir),
            "RETRAIN_TRACKING_URI": f"http://{HOST}:{topology.mlflow_port}",
            "RETRAIN_WORK_DIR": str(self.state / "client-work"),
        }


# --- commands -----------------------------------------------------------------------------------


def up(topology: Topology) -> int:
    """Create the databases, start MLflow and Airflow, wait until all are healthy."""
    began = time.monotonic()
    record = read_record(topology)
    if any(alive(p.get("pid")) for p in record.get("processes", {}).values()):
        print(f"already running (state {topology.state}); `down` first to restart")
        return status(topology)
    busy = [f"{n} {p}" for n, p in ports(topology).items() if not port_free(p)]
    if busy:
        raise TopologyError(
            f"ports in use on {HOST}: {', '.join(busy)} (pass --port/--mlflow-port)"
        )
    keys = redis_keys(topology.broker_url)
    if keys:
        raise TopologyError(
            f"Redis database {_redact(topology.broker_url)} holds {keys} keys: not ours; "
            "pick another --redis-db (or empty it)"
        )
    topology.state.mkdir(parents=True, exist_ok=True)
    print(ensure_data(topology.standalone))
    password = admin_password(topology.standalone)
    record = {
        "processes": {},
        "databases": {},
        "redis": topology.broker_url,
        "overrides": dict(topology.overrides),
        "port": topology.port,
        "mlflow_port": topology.mlflow_port,
    }
    write_record(topology, record)
    try:
        for which in ("airflow", "mlflow"):
            url, ours = topology.database_url(which)
            if ours:
                create_database(url)
            record["databases"][which] = {"url": _redact(url), "created": ours}
            write_record(topology, record)
        _start_mlflow(topology, record)
        env = airflow_env(topology)
        migrate = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            env=env,
            cwd=topology.state,
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise TopologyError(f"airflow db migrate failed:\n{migrate.stderr[-3000:]}")
        for name in commands(topology):
            start_process(topology, name)
        answer = wait_healthy(topology)
        url = f"http://{HOST}:{topology.port}"
        auth = token(url, password)
        pools = ensure_pools(url, auth, topology.standalone.config_path)
        known = wait_dags(topology.standalone, auth)
        if topology.unpause:
            known = unpause(url, auth, known)
        errors = import_errors(url, auth)
    except BaseException:
        down(topology)
        raise
    print(f"topology healthy after {time.monotonic() - began:.0f} s; {pools}")
    print("  " + ", ".join(f"{k} {v}" for k, v in answer.items()))
    for dag_id, paused in sorted(known.items()):
        print(f"  DAG {dag_id:<28} {'paused' if paused else 'active'}")
    for error in errors:
        print(f"  IMPORT ERROR {error}")
    print(
        f"\nAirflow API/UI  {url}  user {ADMIN}; password in {topology.standalone.passwords_file}\n"
        f"MLflow          http://{HOST}:{topology.mlflow_port}  (PostgreSQL backend)\n"
        f"databases       {', '.join(d['url'] for d in record['databases'].values())}\n"
        f"broker          {_redact(topology.broker_url)}\n"
        f"logs            {topology.logs}\n"
        f"Stop: make prod-down"
    )
    return 1 if errors else 0


def _start_mlflow(topology: Topology, record: dict[str, Any]) -> None:
    mlflow_db, _ = topology.database_url("mlflow")
    server = MlflowServer(
        root=topology.state / "mlflow",
        port=topology.mlflow_port,
        host=HOST,
        env={"MLFLOW_DISABLE_TELEMETRY": "true"},
        backend_store_uri=mlflow_db,
    ).start()
    record["processes"]["mlflow"] = {"pid": server.pid, "url": server.url}
    write_record(topology, record)


def restart_mlflow(topology: Topology) -> int:
    """Start the MLflow server again on its port and database (a fault test stopped it)."""
    record = read_record(topology)
    _start_mlflow(topology, record)
    return int(record["processes"]["mlflow"]["pid"])


def down(topology: Topology) -> int:
    """Stop every process group, drop the databases we created, empty our Redis database.

    Every step runs even when an earlier one fails; what failed is listed at the end (and the
    record kept, so ``down`` can be run again)."""
    record = read_record(topology)
    processes: dict[str, Any] = record.get("processes", {})
    order = [n for n in processes if n.startswith("worker")] + [
        n for n in processes if not n.startswith("worker")
    ]
    steps: list[tuple[str, Callable[[], str | None]]] = []
    for name in order:
        pid = processes[name].get("pid")

        def stop(name: str = name, pid: Any = pid) -> str | None:
            if not alive(pid):
                return None
            stop_group(int(pid), 60.0 if name.startswith("worker") else 20.0)
            return f"{name} stopped (process group {pid})"

        steps.append((name, stop))
    for entry in (record.get("databases") or {}).values():
        if entry.get("created"):  # made by `up` as the OS user: the URL has no password
            url = entry["url"]

            def drop(url: str = url) -> str:
                done = "dropped" if drop_database(url) else "absent"
                return f"database {_database_name(url)} {done}"

            steps.append((f"database {_database_name(url)}", drop))
    if record.get("redis"):
        url = record["redis"]
        steps.append(("Redis", lambda: f"Redis {_redact(url)}: {flush_redis(url)} keys removed"))
    failed = []
    for what, step in steps:
        try:
            said = step()
        except Exception as exc:  # report it, go on with the rest
            failed.append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        if said:
            print(said)
    if failed:
        raise TopologyError("down left things behind:\n  " + "\n  ".join(failed))
    topology.record_file.unlink(missing_ok=True)
    return 0


def status(topology: Topology) -> int:
    """Which processes run, the API's health and the workers that answer."""
    record = read_record(topology)
    running = True
    for name, entry in record.get("processes", {}).items():
        is_alive = alive(entry.get("pid"))
        running = running and is_alive
        print(f"{name:<14} {'running' if is_alive else 'stopped'}  pid {entry.get('pid')}")
    if not record:
        print("not running")
        return 3
    url = f"http://{HOST}:{record.get('port', topology.port)}"
    print(f"airflow        {url}  " + ", ".join(f"{k} {v}" for k, v in health(url).items()))
    mlflow_url = f"http://{HOST}:{record.get('mlflow_port', topology.mlflow_port)}"
    print(
        f"mlflow         {mlflow_url}  {'healthy' if is_healthy(mlflow_url) else 'not answering'}"
    )
    if record.get("redis"):
        print(f"workers        {', '.join(sorted(ping_workers(record['redis']))) or 'none'}")
    return 0 if running else 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.topology",
        description="The production topology (CeleryExecutor, PostgreSQL, Redis, MLflow on "
        "PostgreSQL) as local processes.",
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state", type=Path, default=REPO / ".state" / "prod")
    parser.add_argument("--port", type=int, default=8080, help="Airflow API/UI port")
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--config", type=Path, default=None, help="retrain config file or folder")
    parser.add_argument("--prefix", default="retrain_prod", help="database name prefix")
    parser.add_argument("--pg", default=f"{HOST}:5432", help="PostgreSQL host:port")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--keep-paused", action="store_true", help="leave the DAGs paused")
    args = parser.parse_args(argv)
    topology = Topology(
        state=args.state.resolve(),
        port=args.port,
        mlflow_port=args.mlflow_port,
        config=args.config,
        unpause=not args.keep_paused,
        prefix=args.prefix,
        pg=args.pg,
        redis_db=args.redis_db,
    )
    commands_ = {"up": up, "down": down, "status": status}
    try:
        return commands_[args.command](topology)
    except (StandaloneError, MlflowServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
