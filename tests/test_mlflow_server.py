"""The local MLflow server helper: start, health, stop the whole process group, reuse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.mlflow_server import (
    MlflowServer,
    MlflowServerError,
    free_port,
    is_healthy,
    wait_healthy,
)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class TestMlflowServer:
    def test_session_server_is_healthy_and_local(self, mlflow_server: MlflowServer) -> None:
        assert mlflow_server.url.startswith("http://127.0.0.1:")
        assert is_healthy(mlflow_server.url)
        assert (mlflow_server.root / "mlflow.db").exists()
        assert "--workers" in mlflow_server.command(1)

    @pytest.mark.slow
    def test_context_manager_starts_and_stops_the_whole_process_group(self, tmp_path: Path) -> None:
        with MlflowServer(root=tmp_path) as server:
            pgid = server.pid
            assert pgid is not None and is_healthy(server.url)
            assert os.getpgid(pgid) == pgid  # its own session / process group
            url = server.url

        assert not group_alive(pgid)
        assert not is_healthy(url)
        assert "Uvicorn running" in (tmp_path / "mlflow-server.log").read_text()

    def test_attach_reuses_a_running_server_and_leaves_it_running(
        self, mlflow_server: MlflowServer
    ) -> None:
        attached = MlflowServer.attach(mlflow_server.url)

        attached.stop()

        assert attached.url == mlflow_server.url and attached.pid is None
        assert is_healthy(mlflow_server.url)

    def test_a_server_that_cannot_start_reports_its_log_tail(self, tmp_path: Path) -> None:
        server = MlflowServer(root=tmp_path, extra_args=["--no-such-option"], startup_timeout=60)

        with pytest.raises(MlflowServerError, match=r"did not start(.|\n)*no-such-option"):
            server.start()

        assert not server.running

    def test_a_start_up_timeout_stops_the_group_and_quotes_the_log(self, tmp_path: Path) -> None:
        server = MlflowServer(root=tmp_path, startup_timeout=0.5)

        with pytest.raises(MlflowServerError, match=r"not healthy after 0.5 s; last lines"):
            server.start()

        assert server.pid is None

    def test_wait_healthy_times_out_on_a_dead_port(self) -> None:
        started = time.monotonic()

        with pytest.raises(MlflowServerError, match=r"not healthy after 0\.3 s"):
            wait_healthy(f"http://127.0.0.1:{free_port()}", timeout=0.3)

        assert time.monotonic() - started < 3

    def test_url_before_start_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(MlflowServerError, match="not started"):
            _ = MlflowServer(root=tmp_path).url


class TestCommandLine:
    @pytest.mark.slow
    def test_runs_in_the_foreground_and_stops_cleanly_on_sigterm(self, tmp_path: Path) -> None:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.mlflow_server",
                "--dir",
                str(tmp_path),
                "--port",
                str(port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}", timeout=90)
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()

        assert process.returncode == 0
        assert "MLflow server stopped" in out
        assert not is_healthy(f"http://127.0.0.1:{port}")

    def test_reuses_a_server_already_running_on_the_port(self, mlflow_server: MlflowServer) -> None:
        port = mlflow_server.url.rsplit(":", 1)[1]

        result = subprocess.run(
            [sys.executable, "-m", "tools.mlflow_server", "--dir", "unused", "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert result.returncode == 0
        assert "already running" in result.stdout
