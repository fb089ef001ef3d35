"""Start, stop or reuse a local ``mlflow server`` (SQLite backend, local artifacts).

One small API serves the tests, ``make demo`` and ``make airflow``::

    with MlflowServer(root=".state/mlflow") as server:   # free port, stopped on exit
        use(server.url)

    server = MlflowServer.attach("http://127.0.0.1:5000")  # reuse a running one; stop() is a no-op

The server runs in its own process group (``start_new_session=True``) so that ``stop()`` reaches
its workers too: SIGTERM to the group, then SIGKILL after a grace period. Job execution is
disabled (it spawns extra processes and doubles the start-up time). Output goes to
``<root>/mlflow-server.log``; a start-up failure quotes its tail.

Command line (foreground, stops cleanly on SIGTERM/SIGINT; reuses a healthy server on the port)::

    python -m tools.mlflow_server --dir .state/mlflow --port 5000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from retrain.errors import RetrainError

__all__ = [
    "MlflowServer",
    "MlflowServerError",
    "free_port",
    "is_healthy",
    "main",
    "wait_healthy",
]

LOG_NAME = "mlflow-server.log"
_BIND_RETRIES = 3


class MlflowServerError(RetrainError):
    """The local MLflow server could not be started or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def is_healthy(url: str, *, timeout: float = 1.0) -> bool:
    """Whether ``GET <url>/health`` answers ``OK``."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            body: bytes = response.read(64)
            return response.status == 200 and body.strip() == b"OK"
    except (OSError, urllib.error.URLError, ValueError):
        return False


def wait_healthy(url: str, *, timeout: float = 60.0, interval: float = 0.2) -> None:
    """Poll ``/health`` until it answers ``OK``; :class:`MlflowServerError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not is_healthy(url):
        if time.monotonic() >= deadline:
            raise MlflowServerError(f"MLflow server at {url} not healthy after {timeout:g} s")
        time.sleep(interval)


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(empty log)"


class MlflowServer:
    """A local ``mlflow server`` process, or a handle on one already running (:meth:`attach`)."""

    def __init__(
        self,
        *,
        root: str | os.PathLike[str],
        port: int | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 90.0,
        stop_timeout: float = 15.0,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        backend_store_uri: str | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        #: ``None``: SQLite in ``root``. Else e.g. ``postgresql+psycopg2://...``, passed in the
        #: environment (``MLFLOW_BACKEND_STORE_URI``), not argv, so a password stays out of ``ps``.
        self.backend_store_uri = backend_store_uri
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.log_path: Path | None = self.root / LOG_NAME
        self._process: subprocess.Popen[bytes] | None = None
        self._owned = True
        self._url: str | None = None

    @classmethod
    def attach(cls, url: str, *, timeout: float = 5.0) -> MlflowServer:
        """A handle on a server already running at ``url``; :meth:`stop` leaves it running."""
        wait_healthy(url, timeout=timeout)
        server = cls(root=".")
        server._owned = False
        server._url = url.rstrip("/")
        server.log_path = None
        return server

    # --- state --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://host:port`` of the server (known once started or attached)."""
        if self._url is None:
            raise MlflowServerError("the MLflow server is not started")
        return self._url

    @property
    def pid(self) -> int | None:
        """Process id (= process group id) of the server we started, else ``None``."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        if not self._owned:
            return self._url is not None and is_healthy(self._url)
        return self._process is not None and self._process.poll() is None

    def command(self, port: int) -> list[str]:
        """The ``mlflow server`` command line for ``port``."""
        backend = (
            []
            if self.backend_store_uri
            else ["--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}"]
        )
        return [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            *backend,
            "--artifacts-destination",
            str(self.root / "mlartifacts"),
            "--host",
            self.host,
            "--port",
            str(port),
            "--workers",
            "1",
            *self.extra_args,
        ]

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> MlflowServer:
        """Start the server and wait until ``/health`` answers; returns ``self``."""
        if not self._owned or self._process is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.port is not None else _BIND_RETRIES
        for attempt in range(1, attempts + 1):
            port = self.port if self.port is not None else free_port(self.host)
            if self._launch(port):
                return self
            if attempt == attempts or "address already in use" not in _tail(self.log_path).lower():
                break
        raise MlflowServerError(
            f"MLflow server in {self.root} did not start; last lines of {self.log_path}:\n"
            f"{_tail(self.log_path)}"
        )

    def _launch(self, port: int) -> bool:
        url = f"http://{self.host}:{port}"
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.env}
        if self.backend_store_uri:
            env["MLFLOW_BACKEND_STORE_URI"] = self.backend_store_uri
        assert self.log_path is not None
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if is_healthy(url):
                self._url = url
                return True
            if self._process.poll() is not None:
                self._process = None
                return False
            time.sleep(0.2)
        self.stop()
        raise MlflowServerError(
            f"MLflow server at {url} not healthy after {self.startup_timeout:g} s; "
            f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """SIGTERM the server's process group, wait, SIGKILL what is left after the grace period."""
        process, self._process = self._process, None
        if not self._owned or process is None:
            return
        pgid = process.pid
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and (process.poll() is None or _group_alive(pgid)):
            time.sleep(0.1)
        if process.poll() is None or _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
            process.wait(timeout=5)
        self._url = None

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._url or f"{self.host}:{self.port or '?'}"
        return f"MlflowServer({where}, owned={self._owned}, running={self.running})"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member we cannot signal still exists
        return True
    return True


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run a server in the foreground until SIGTERM/SIGINT (used by the Makefile)."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.mlflow_server", description="Run a local MLflow server."
    )
    parser.add_argument("--dir", required=True, help="state directory (mlflow.db, mlartifacts)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    url = f"http://{args.host}:{args.port}"
    if is_healthy(url):
        print(f"MLflow server already running at {url}; reusing it", flush=True)
        return 0
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = MlflowServer(root=args.dir, port=args.port, host=args.host)
    try:
        server.start()
        print(f"MLflow server at {server.url} (log: {server.log_path})", flush=True)
        while not stopping.wait(1.0):
            if not server.running:
                print(f"MLflow server exited; log:\n{_tail(server.log_path)}", file=sys.stderr)
                return 1
    except MlflowServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    print("MLflow server stopped", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
