"""``retrain serve`` as a real process: alias moves under load, refusals over HTTP, SIGTERM under
load with every answered prediction logged (SQLite, and PostgreSQL with two workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrain.cli.main import build_parser
from retrain.cli.serve import TOKEN_ENV
from retrain.config import RetrainConfig
from retrain.serving.service import TOKEN_ENV as SERVICE_TOKEN_ENV
from tests.helpers import write_config
from tests.serving.conftest import Load, Served, count_rows, postgres_database, register_served
from tools.mlflow_server import free_port

TOKEN = "cli-serve-token-5f1e0c9a7b3d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REFRESH = 2.0


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrain.cli", "serve", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env if env is not None else {k: v for k, v in os.environ.items() if k != TOKEN_ENV},
    )


class TestRefusesToStart:
    def test_without_a_token(self, tmp_path: Path) -> None:
        result = run_serve("-c", str(tmp_path / "none.yaml"))
        assert result.returncode == 2
        assert f"set {TOKEN_ENV}" in result.stderr and "--insecure-no-auth" in result.stderr

    def test_no_auth_only_on_loopback(self, tmp_path: Path) -> None:
        result = run_serve(
            "-c", str(tmp_path / "x.yaml"), "--insecure-no-auth", "--host", "0.0.0.0"
        )
        assert result.returncode == 2 and "only allowed on a loopback address" in result.stderr

    def test_a_short_token(self, tmp_path: Path) -> None:
        env = {**os.environ, TOKEN_ENV: "short"}
        result = run_serve("-c", str(tmp_path / "x.yaml"), env=env)
        assert result.returncode == 2 and "at least 16 characters" in result.stderr

    def test_batch_rows_and_model_threads_out_of_range(self, tmp_path: Path) -> None:
        env = {**os.environ, TOKEN_ENV: TOKEN}
        bad = ("--max-batch-rows", "0", "--model-threads", "-1", "--batch-wait-ms", "-1")
        result = run_serve("-c", str(tmp_path / "x.yaml"), *bad, env=env)
        assert result.returncode == 2
        assert "--max-batch-rows must be at least 1" in result.stderr
        assert "--model-threads must be >= 0" in result.stderr
        assert "--batch-wait-ms must be >= 0" in result.stderr


class TestCommand:
    def test_registered_with_its_flags_and_lazy(self) -> None:
        args = build_parser().parse_args(["serve", "--workers", "3", "--prediction-log", "x://"])
        assert (args.workers, args.port, args.host, args.refresh_seconds) == (
            3,
            8000,
            "127.0.0.1",
            None,
        )
        tuning = ("max_batch_rows", "batch_wait_ms", "model_threads")
        assert [getattr(args, k) for k in tuning] == [None, None, None]  # from the config
        args = build_parser().parse_args(
            ["serve", "--max-batch-rows", "50", "--batch-wait-ms", "0.5", "--model-threads", "2"]
        )
        assert [getattr(args, k) for k in tuning] == [50, 0.5, 2]
        assert TOKEN_ENV == SERVICE_TOKEN_ENV
        code = (
            "import sys, retrain.cli.main, retrain.serving; "
            "print([m for m in ('fastapi', 'uvicorn', 'sqlalchemy', 'mlflow') if m in sys.modules])"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"


class Server:
    """A ``retrain serve`` process on a free port; output in ``log``."""

    def __init__(self, config: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("w")
        command = [sys.executable, "-m", "retrain.cli", "serve", "-c", str(config)]
        command += ["--port", str(self.port), "--refresh-seconds", str(REFRESH), *extra]
        self.process = subprocess.Popen(
            command,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, TOKEN_ENV: TOKEN},
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"retrain serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"retrain serve not ready:\n{self.log.read_text()[-3000:]}")

    def terminate(self, timeout: float = 60.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._out.close()
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._out.close()


@pytest.fixture
def served(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> Served:
    """Production v1, canary v2; the prediction log under ``tmp_path``."""
    return register_served(make_config(storage={"work_dir": str(tmp_path / "work")}))


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def make(config: Path, *extra: str) -> Server:
        server = Server(config, tmp_path / f"serve-{len(servers)}.log", *extra)
        servers.append(server)
        server.wait_ready()
        return server

    yield make
    for server in servers:
        server.stop()


def scorer(url: str, path: str = "/invocations") -> Any:
    client = httpx.Client(base_url=url, headers=AUTH, timeout=30)

    def send(i: int) -> dict[str, Any]:
        row = {"x1": 0.1 * (i % 9), "x2": -0.3, "segment": "abc"[i % 3]}
        response = client.post(path, json={"instances": [row], "entity_ids": [f"e{i}"]})
        if response.status_code != 200:
            raise AssertionError(f"{response.status_code}: {response.text}")
        answer: dict[str, Any] = response.json()["retrain"][0]
        return answer

    return send


def answered(*loads: Load) -> int:
    return sum(len(load.results) for load in loads)


BAD = [
    ({"instances": [{"x1": 1, "x2": 2, "segment": "a", "age": 3}]}, AUTH, 400, "'age'"),
    ({"instances": [{"x1": 1, "segment": "a"}]}, AUTH, 400, "missing column(s) 'x2'"),
    ({"instances": [{"x1": "1", "x2": 2, "segment": "a"}]}, AUTH, 400, "column 'x1' takes"),
    ({"instances": [{"x1": 1, "x2": 2, "segment": "a"}] * 11}, AUTH, 413, "at most 10"),
    (b"[1,", AUTH, 400, "bad JSON"),
    ({"instances": [{"x1": 1, "x2": 2, "segment": "a"}]}, {}, 401, "missing bearer token"),
]


@pytest.mark.slow
class TestServing:
    def test_alias_move_under_load_refusals_and_sigterm_drain(
        self, served: Served, tmp_path: Path, start: Any
    ) -> None:
        config = write_config(served.config, tmp_path / "model.yaml")
        db = f"sqlite:///{Path(served.config.storage.work_dir) / 'serving' / 'predictions.db'}"
        server = start(config, "--max-rows", "10")
        registry = served.fleet.registry

        # 1. an alias move under continuous load
        with Load(scorer(server.url)) as move_load:
            time.sleep(1.0)
            moved = time.monotonic()
            registry.promote(served.canary, "production", reason="canary healthy")
            call = time.monotonic() - moved
            delay = move_load.first_after(
                moved,
                lambda r: r["arm"] == "production" and r["version"] == served.canary,
                timeout=REFRESH + call + 5,
            )
            time.sleep(0.5)
        during = sum(1 for at, _ in move_load.results if moved <= at <= moved + call + delay)
        print(
            f"\nalias move followed in {delay:.2f} s (promote call {call:.2f} s); "
            f"{len(move_load.results)} requests, {during} during the move, "
            f"{len(move_load.failures)} failed"
        )
        assert move_load.failures == []
        assert delay <= REFRESH + call

        # 2. refusals: a 4xx naming the problem, nothing logged
        time.sleep(0.5)
        before = count_rows(db)
        assert before == answered(move_load)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for body, headers, status, message in BAD:
                content = (
                    body
                    if isinstance(body, bytes)
                    else httpx.Request("POST", "/", json=body).content
                )
                response = client.post(
                    "/invocations",
                    content=content,
                    headers={**headers, "Content-Type": "application/json"},
                )
                assert response.status_code == status, response.text
                assert message in response.json()["message"]
        time.sleep(0.5)
        assert count_rows(db) == before

        # 3. SIGTERM under load: every answered request logged
        with Load(scorer(server.url)) as stop_load:
            time.sleep(1.5)
            code = server.terminate()
        output = server.log.read_text()
        print(f"SIGTERM: exit {code}; {len(stop_load.results)} answered while stopping")
        assert code in (0, -signal.SIGTERM), output[-3000:]
        assert count_rows(db) == answered(move_load, stop_load)
        assert len(stop_load.results) > 0
        assert TOKEN not in output

    def test_two_workers_on_postgresql_log_every_answer_through_sigterm(
        self, served: Served, tmp_path: Path, start: Any
    ) -> None:
        config = write_config(served.config, tmp_path / "model.yaml")
        with postgres_database() as db:
            server = start(config, "--workers", "2", "--prediction-log", db)
            with Load(scorer(server.url)) as a, Load(scorer(server.url)) as b:
                time.sleep(3.0)
                code = server.terminate()
            output = server.log.read_text()
            rows = count_rows(db)
            versions = {r["version"] for _, r in a.results + b.results}
        print(f"\ntwo workers: {answered(a, b)} answered, {rows} rows; exit {code}")
        assert code in (0, -signal.SIGTERM), output[-3000:]
        assert rows == answered(a, b) > 0
        assert versions == {served.production, served.canary}
        assert TOKEN not in output
