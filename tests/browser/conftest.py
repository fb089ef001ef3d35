"""The browser test's Airflow: the demo's state under ``airflow standalone``, as ``make airflow``
shows it, but in a temporary directory and on free ports.

``demo_airflow`` (module scope) runs ``python -m tools.demo --dir <tmp>/demo`` as a subprocess
(~2-3 min on 2 cores: production ends at v1 after v1 -> v2 -> canary v3 rolled back -> operator
rollback to v1), then ``tools.standalone.start`` on that state with ``config/demo.yaml`` (what
``make airflow`` picks for the demo's state; the data, work and MLflow paths follow the state
through :func:`tools.standalone.airflow_env`), every DAG left paused but ``retrain_rollback``
(unpaused over REST: a paused DAG's run would stay queued). Teardown always stops both process
groups and then checks that no process still uses the state directory (any left are killed by
pid and reported as an error).

Debian's chromium (``/usr/bin/chromium``, ``make browser`` installs it as root) is required: the
tests skip without it, except under CI (``$CI`` set), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from retrain.config import RetrainConfig, load_config
from tools import standalone
from tools.airflow_rest import Deployment
from tools.airflow_rest import free_port as airflow_port
from tools.mlflow_server import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
DEMO_CONFIG = REPO / "config" / "demo.yaml"
ROLLBACK_DAG = "retrain_rollback"  # config/demo.yaml is one file: no ``__<model>`` suffix
#: Ports someone else may be using (``make airflow``, MLflow's default, Airflow's log servers).
RESERVED_PORTS = frozenset({8080, 5000, 8793, 8794})
DEMO_TIMEOUT = 900.0
#: Set by the test session (tests/conftest.py, tests/airflow_harness.py) and not overridden by
#: ``standalone.airflow_env``: left out so the servers run as under ``make airflow``.
SESSION_ONLY_ENV = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "AIRFLOW__LOGGING__LOGGING_LEVEL",
    "RETRAIN_TEST_AIRFLOW_HOME",
)


@dataclass(frozen=True)
class DemoAirflow:
    """A running standalone on the demo's state."""

    settings: standalone.Settings
    password: str
    rest: Deployment
    config: RetrainConfig
    screenshots: Path
    timings: dict[str, float]

    @property
    def url(self) -> str:
        return self.settings.airflow_url


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium: skipped without it (failed under CI)."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing: run `sudo make browser` (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def screenshot_dir(default: Path) -> Path:
    """``$RETRAIN_SCREENSHOTS`` (relative to the current directory) if set, else ``default``."""
    chosen = os.environ.get("RETRAIN_SCREENSHOTS", "").strip()
    out = Path(chosen).resolve() if chosen else default
    out.mkdir(parents=True, exist_ok=True)
    return out


def _ports() -> tuple[int, int]:
    """A free Airflow port (its log-server neighbours +713/+714 free too) and an MLflow port,
    none of them one of :data:`RESERVED_PORTS`."""
    for _ in range(20):
        port, mlflow = airflow_port(), free_port()
        used = {port, port + 713, port + 714}
        if not (used | {mlflow}) & RESERVED_PORTS and mlflow not in used:
            return port, mlflow
    raise RuntimeError("no free ports")


@contextlib.contextmanager
def _server_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for key in SESSION_ONLY_ENV:
            patch.delenv(key, raising=False)
        yield


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _stop_demo(process: subprocess.Popen[bytes]) -> None:
    """Interrupt the demo (its ``finally`` stops its MLflow server and ``retrain serve``), then
    kill its process group if it is still there after a minute."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def run_demo(state: Path, log: Path) -> float:
    """``python -m tools.demo --dir state`` (output in ``log``); its wall time in seconds."""
    env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY_ENV}
    began = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.demo", "--dir", str(state)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=DEMO_TIMEOUT)
        except BaseException:
            _stop_demo(process)
            raise
    if code != 0:
        pytest.fail(f"`python -m tools.demo` exited {code}; its output ends:\n{_tail(log)}")
    return time.monotonic() - began


def processes_using(root: Path) -> dict[int, str]:
    """Processes (pid -> command line) whose working directory, command line or environment
    names ``root``: what the demo or the standalone could have left behind."""
    needle = str(root)
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:  # gone, a kernel thread, or not ours to read
            continue
        if needle in cmdline or cwd.startswith(needle) or needle in environ:
            found[int(entry.name)] = cmdline.strip()[:200]
    return found


def _kill_leftovers(root: Path) -> dict[int, str]:
    """Kill (by pid) whatever still uses ``root`` after the stop; what was found."""
    left = processes_using(root)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.fixture(scope="module")
def demo_airflow(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoAirflow]:
    """The demo's state under a running ``airflow standalone`` + MLflow (stopped at the end)."""
    root = tmp_path_factory.mktemp("retraining-view")
    shots = screenshot_dir(root / "screenshots")
    state = root / "demo"
    timings: dict[str, float] = {}
    settings: standalone.Settings | None = None
    try:
        timings["demo"] = run_demo(state, root / "demo.log")
        port, mlflow_port = _ports()  # after the demo's minutes: still free at the start
        settings = standalone.Settings(
            state=state, port=port, mlflow_port=mlflow_port, config=DEMO_CONFIG, unpause=False
        )
        began = time.monotonic()
        with _server_env():
            if standalone.start(settings) != 0:
                raise standalone.StandaloneError("DAG import errors (see the output above)")
        timings["standalone"] = time.monotonic() - began
        password = standalone.admin_password(settings)
        rest = Deployment(settings, standalone.token(settings.airflow_url, password))
        rest.call(f"/api/v2/dags/{ROLLBACK_DAG}", method="PATCH", body={"is_paused": False})
        config = load_config(DEMO_CONFIG, env=standalone.airflow_env(settings))
        yield DemoAirflow(settings, password, rest, config, shots, timings)
    finally:
        if settings is not None:
            stopped = time.monotonic()
            standalone.stop(settings)  # "not running" for what never started
            timings["stop"] = time.monotonic() - stopped
        print(f"timings (s): {', '.join(f'{k} {v:.0f}' for k, v in timings.items())}")
        left = _kill_leftovers(state)
        if left:
            raise AssertionError(f"processes left after the stop (killed now): {left}")
