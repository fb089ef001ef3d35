"""Faults: MLflow stopped or hung at any point of a run, a torn spool, an unusable work dir, a
SIGTERM, a password in the tracking URI.

A run that meets a fault must still END, in time, with a record: within (retries + 1) x timeout
of the config plus 10 s from the moment the fault starts, with its log record in MLflow or in the
spool, no RUNNING MLflow run left once MLflow answers again (the spooled record says which run it
could not close; the next successful write closes it) and no version or alias moved by the fault.
Those are plain tests; a fault whose right outcome is a clear error goes through ``attempt``.

MLflow is reached through :class:`FaultProxy`, a TCP proxy in front of the session's real
``mlflow server`` that can forward, refuse (nothing listens: a stopped server) or hang (accept and
never answer) at any moment. The session's ``MLFLOW_HTTP_REQUEST_*`` overrides are removed for
these tests: what bounds the calls must be the config (``registry.request_timeout_seconds``,
``registry.max_retries``), not the test environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from retrain.config import RetrainConfig
from retrain.errors import ConfigError
from retrain.log import LogStore, RetrainingRecord
from retrain.pipeline import RunOptions, Services, run_pipeline, runner
from retrain.pipeline.steps.start import start
from retrain.registry import ModelRegistry
from retrain.tracking import mlflow_error
from tests.helpers import LOGREG, churn_sections, write_config
from tests.reliability.harness import attempt, cli_attempt, record_outcome
from tools.synthetic import StreamSpec, write_stream

SPEC = StreamSpec(weeks=5, rows_per_week=1500, drift_week=None)
TIMEOUT, RETRIES = 2.0, 1
#: What the issue's "Done when" allows after the fault starts.
BOUND = (RETRIES + 1) * TIMEOUT + 10
SECRET = "s3cr3t-pw-4711"


# --- a proxy that can refuse or hang ------------------------------------------------------------


class FaultProxy:
    """``127.0.0.1:<port>`` forwarding to ``upstream``; :meth:`refuse` and :meth:`hang` break
    it at once (pooled keep-alive connections included), :meth:`forward` mends it."""

    def __init__(self, upstream: str | None) -> None:
        self.upstream = upstream
        host_port = (upstream or "http://127.0.0.1:1").split("//", 1)[1]
        host, port = host_port.rsplit(":", 1)
        self._target = (host, int(port))
        self.port = _free_port()
        self.mode = "forward" if upstream else "hang"
        self.broke_at: float | None = None
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listen()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                conn.close()
                continue
            with self._lock:
                self._sockets.append(conn)
            if self.mode == "hang":
                continue  # accepted, never answered
            try:
                up = socket.create_connection(self._target, timeout=5)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._sockets.append(up)
            threading.Thread(target=self._pipe, args=(conn, up, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, conn, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if requests and self.mode == "hang":
                    continue  # the request is swallowed: no answer ever comes
                dst.sendall(data)

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def refuse(self) -> None:
        """A stopped server: nothing listens on the port, open connections are reset."""
        self.mode, self.broke_at = "refuse", self.broke_at or time.monotonic()
        self._stop_listening()
        self._close_all()

    def hang(self) -> None:
        """A hung server: connections are accepted (and kept) but nothing is ever answered."""
        self.mode, self.broke_at = "hang", self.broke_at or time.monotonic()

    def forward(self) -> None:
        self._close_all()
        self.mode, self.broke_at = "forward", None
        if self._listener is None:
            self._listen()

    def _stop_listening(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def close(self) -> None:
        self._stop_listening()
        self._close_all()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def proxy(mlflow_server: Any) -> Iterator[FaultProxy]:
    fault = FaultProxy(mlflow_server.url)
    yield fault
    fault.close()


@pytest.fixture
def hung_uri() -> Iterator[str]:
    """A TCP listener that accepts connections and never answers."""
    hung = FaultProxy(None)
    yield hung.url
    hung.close()


@pytest.fixture(autouse=True)
def _library_bounds_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own defaults (7 retries, 120 s) unless the library bounds a call itself."""
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)


# --- configs and checks -------------------------------------------------------------------------


def fault_config(
    make_config: Callable[..., RetrainConfig], tmp_path: Path, uri: str, **extra: Any
) -> RetrainConfig:
    events = tmp_path / "events"
    if not events.exists():
        write_stream(events, SPEC)
    sections = churn_sections(
        events,
        estimator=LOGREG,
        params={"max_iter": 200},
        storage={"work_dir": str(tmp_path / "work")},
        registry={"tracking_uri": uri, "request_timeout_seconds": TIMEOUT, "max_retries": RETRIES},
        **extra,
    )
    return make_config(**sections)


def log_store(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> LogStore:
    """The log store of a config on the session's server (used by tests/test_log.py too)."""
    config = make_config(storage={"work_dir": str(tmp_path / "work")})
    return Services.build(config).log


def running_runs(config: RetrainConfig, uri: str) -> list[str]:
    """MLflow runs of the model's experiments still RUNNING (training, log; not the lease's
    own bookkeeping, which has its own tests)."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = []
    for name in (config.experiment_name, config.log_experiment_name):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            continue
        runs = client.search_runs(
            [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
        )
        found += [f"{name}: {r.info.run_name} ({r.info.run_id})" for r in runs]
    return found


def model_state(config: RetrainConfig) -> tuple[dict[int, str], dict[str, int]]:
    registry = ModelRegistry(config)
    try:
        return (
            {v.version: v.status for v in registry.versions()},
            {a: v.version for a, v in registry.current().items()},
        )
    except Exception:
        return {}, {}


def spooled(config: RetrainConfig) -> list[dict[str, Any]]:
    spool = Path(config.storage.work_dir) / "retraining_log.spool.jsonl"
    if not spool.exists():
        return []
    return [json.loads(line) for line in spool.read_text().splitlines() if line.strip()]


def breaking_at(step: str, fault: Callable[[], None]) -> Callable[[str, str], None]:
    """A progress callback that breaks MLflow once ``step`` has reported (``start``: the run's
    first step is done, so the fault hits ``check``)."""

    def progress(name: str, text: str) -> None:
        if name == step:
            fault()

    return progress


# --- MLflow stopped or hung at any point of a run -------------------------------------------------

#: Seconds from the fault to the end of the run, by case (printed at the end of the module).
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _print_measured() -> Iterator[None]:
    yield
    if MEASURED:
        print(f"\nseconds from the fault to the end of the run (bound {BOUND:.0f} s):")
        for case, seconds in sorted(MEASURED.items()):
            print(f"  {case:30} {seconds:6.2f}")


#: Where the fault starts: before the run, after the step named (it hits the next one), or as
#: ``finish`` begins.
POINTS = {
    "before start": None,
    "during check": "start",
    "during train": "validate",
    "during deploy": "compare",
    "during finish": "finish",
}


class TestMlflowGoesAwayMidRun:
    @pytest.mark.parametrize("mode", ["refuse", "hang"])
    @pytest.mark.parametrize("point", list(POINTS))
    def test_the_run_ends_in_time_with_a_record_and_no_running_mlflow_run(
        self,
        *,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        proxy: FaultProxy,
        mlflow_server: Any,
        monkeypatch: pytest.MonkeyPatch,
        point: str,
        mode: str,
    ) -> None:
        config = fault_config(make_config, tmp_path, proxy.url)
        fault = proxy.refuse if mode == "refuse" else proxy.hang
        after = POINTS[point]
        if after is None:
            fault()
        elif after == "finish":
            real = runner.finish

            def finishing(*args: Any, **kwargs: Any) -> Any:
                fault()
                return real(*args, **kwargs)

            monkeypatch.setattr(runner, "finish", finishing)
            after = None
        options = RunOptions(trigger="manual", as_of=SPEC.start + timedelta(weeks=3))
        outcome = run_pipeline(
            config, options, progress=breaking_at(after, fault) if after else None
        )
        ended = time.monotonic()
        assert proxy.broke_at is not None, "the fault was never injected"
        took = ended - proxy.broke_at
        MEASURED[f"{mode} {point}"] = took
        assert took <= BOUND, f"{mode} {point}: the run took {took:.1f} s after the fault"
        assert outcome.error is not None or point == "during finish"
        record = outcome.record
        assert record.status == "failed" or point == "during finish"

        # the record is in the spool (MLflow was unreachable when finish wrote it)
        assert outcome.stored_in.startswith("spool:"), outcome.stored_in
        [line] = spooled(config)
        assert line["retraining_id"] == record.retraining_id
        if record.mlflow_run_id:
            # it says which MLflow run it could not close
            assert line["unclosed_run"] == record.mlflow_run_id
            assert "left RUNNING" in line["notes"]

        # MLflow answers again: the next write flushes the spool and closes the run
        proxy.forward()
        store = Services.build(config).log
        assert store.flush() == 1
        assert spooled(config) == []
        direct = config.model_copy(
            update={
                "registry": config.registry.model_copy(update={"tracking_uri": mlflow_server.url})
            }
        )
        assert running_runs(direct, mlflow_server.url) == []
        logged = {r.retraining_id: r for r in Services.build(direct).log.records()}
        assert logged[record.retraining_id].status == record.status
        assert logged[record.retraining_id].unclosed_run is None
        record_outcome(
            "faults",
            f"MLflow {'stopped' if mode == 'refuse' else 'hung'} {point}",
            f"run ended {took:.1f} s after the fault (bound {BOUND:.0f} s), record spooled then "
            f"flushed, no RUNNING run: {record.error or 'status ' + record.status}",
            took,
        )

    def test_mlflow_down_from_the_start_ends_in_seconds(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        config = fault_config(make_config, tmp_path, "http://127.0.0.1:9")
        started = time.monotonic()
        outcome = run_pipeline(config, trigger="manual")
        took = time.monotonic() - started
        assert took <= BOUND, f"{took:.1f} s"
        assert outcome.record.failed_step == "start"
        assert "unreachable" in str(outcome.error)
        assert [line["status"] for line in spooled(config)] == ["failed"]

    def test_a_hung_server_from_the_start_ends_within_the_bound(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path, hung_uri: str
    ) -> None:
        config = fault_config(make_config, tmp_path, hung_uri)
        started = time.monotonic()
        outcome = run_pipeline(config, trigger="manual")
        took = time.monotonic() - started
        assert took <= BOUND, f"{took:.1f} s"
        assert f"no answer within {TIMEOUT:g} s" in str(outcome.error)
        assert [line["failed_step"] for line in spooled(config)] == ["start"]

    def test_retrain_log_with_mlflow_hung_is_a_clear_error_in_time(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        hung_uri: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        config = fault_config(make_config, tmp_path, hung_uri)
        path = write_config(config, tmp_path / "retraining.yaml")
        started = time.monotonic()
        err = _cli(capsys, ["log", "--config", str(path)])
        assert time.monotonic() - started <= BOUND
        assert hung_uri in err and "unreachable" in err


def _cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    from retrain.cli import main

    capsys.readouterr()
    assert main(argv) == 1
    return capsys.readouterr().err


# --- the spool ----------------------------------------------------------------------------------


class TestTornSpool:
    def test_a_torn_spool_line_does_not_stop_the_next_runs(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A partial last line (a crash during an append): the next record is not glued onto
        the broken line, ``retrain log`` lists the rest and names the file and line, the next
        run's flush keeps the bad line in ``<spool>.bad`` and writes the good ones."""
        config = fault_config(make_config, tmp_path, proxy.url)
        spool = Path(config.storage.work_dir) / "retraining_log.spool.jsonl"
        spool.parent.mkdir(parents=True)
        whole = json.dumps(
            RetrainingRecord(
                "retrain_20260101_001", "manual", "2026-01-01T00:00:00+00:00"
            ).to_dict()
        )
        spool.write_text(whole + "\n" + whole[:40])
        proxy.refuse()
        outcome = run_pipeline(config, trigger="manual")
        assert outcome.record.failed_step == "start"  # MLflow is down, not the spool
        assert [line["retraining_id"] for line in _good_lines(spool)] == [
            "retrain_20260101_001",
            outcome.record.retraining_id,
        ]
        proxy.forward()
        from retrain.cli import main

        path = write_config(config, tmp_path / "retraining.yaml")
        capsys.readouterr()
        assert main(["log", "--config", str(path), "--json"]) == 0
        out, err = capsys.readouterr()
        assert len(json.loads(out)) == 2
        assert f"{spool}:2" in err
        # the next run flushes the spool first: the torn line is kept apart for a human
        again = run_pipeline(config, trigger="manual", as_of=SPEC.start + timedelta(weeks=3))
        assert again.error is None, again.error
        assert not spool.exists()
        assert "line 2" in Path(f"{spool}.bad").read_text()
        assert len(Services.build(config).log.records()) == 3

    def test_check_reads_the_log_past_a_torn_line(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        from retrain.signals import last_triggered_at

        store = log_store(make_config, tmp_path)
        whole = json.dumps(
            RetrainingRecord(
                "retrain_20260101_001", "manual", "2026-01-01T00:00:00+00:00", status="deployed"
            ).to_dict()
        )
        store.spool.parent.mkdir(parents=True)
        store.spool.write_text(whole + "\n" + whole[:40])
        assert last_triggered_at(store) is not None


def _good_lines(spool: Path) -> list[dict[str, Any]]:
    found = []
    for line in spool.read_text().splitlines():
        with contextlib.suppress(ValueError):
            found.append(json.loads(line))
    return found


# --- an unusable work directory -----------------------------------------------------------------


class TestWorkDir:
    @pytest.mark.parametrize(
        ("case", "layout"),
        [
            ("work dir is a file", lambda root: (root.write_text("x"), root)[1]),
            (
                "runs dir is a file",
                lambda root: (root.mkdir(), (root / "runs").write_text("x"), root)[2],
            ),
        ],
    )
    def test_an_unusable_work_dir_is_a_clear_error_and_leaves_no_running_run(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        mlflow_server: Any,
        case: str,
        layout: Callable[[Path], Path],
    ) -> None:
        config = fault_config(make_config, tmp_path, mlflow_server.url)
        layout(Path(config.storage.work_dir))
        with attempt(
            "faults", case, config, expect=[config.storage.work_dir, "work_dir"], error=ConfigError
        ):
            start(Services.build(config), RunOptions(trigger="manual"))
        assert running_runs(config, mlflow_server.url) == []

    def test_retrain_run_with_an_unusable_work_dir_names_it(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        mlflow_server: Any,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        config = fault_config(make_config, tmp_path, mlflow_server.url)
        Path(config.storage.work_dir).write_text("x")
        path = write_config(config, tmp_path / "retraining.yaml")
        from retrain.cli import main

        capsys.readouterr()
        code = main(["run", "--config", str(path)])
        err = capsys.readouterr().err
        assert code == 2
        assert config.storage.work_dir in err and "Traceback" not in err
        assert running_runs(config, mlflow_server.url) == []


# --- SIGTERM ------------------------------------------------------------------------------------


class TestSigterm:
    def test_sigterm_mid_run_writes_a_failed_record_and_closes_the_run(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path, mlflow_server: Any
    ) -> None:
        config = fault_config(
            make_config,
            tmp_path,
            mlflow_server.url,
            model={"estimator": {"class": LOGREG, "params": {"max_iter": 200}}},
        )
        path = write_config(config, tmp_path / "retraining.yaml")
        as_of = (SPEC.start + timedelta(weeks=3)).isoformat()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        child = subprocess.Popen(
            [sys.executable, "-m", "retrain.cli", "run", "-c", str(path), "--as-of", as_of],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert child.stderr is not None
        seen = ""
        for line in child.stderr:  # progress lines: wait until the run is under way
            seen += line
            if "validate" in line:
                break
        child.send_signal(signal.SIGTERM)
        started = time.monotonic()
        out, err = child.communicate(timeout=BOUND + 30)
        assert time.monotonic() - started <= BOUND
        assert child.returncode == 128 + signal.SIGTERM, seen + err
        assert "terminated by signal SIGTERM" in out + err
        records = Services.build(config).log.records()
        assert len(records) == 1, seen + err
        [record] = records
        assert record.status == "failed"
        assert "terminated by signal SIGTERM" in (record.error or "")
        assert running_runs(config, mlflow_server.url) == []
        assert model_state(config) == ({}, {})


# --- retrain log's arguments ---------------------------------------------------------------------


class TestLogCommand:
    @pytest.mark.parametrize(
        ("case", "args", "expect"),
        [
            ("retrain log --limit 100000", ["--limit", "100000"], ["--limit", "1000"]),
            ("retrain log --limit -5", ["--limit", "-5"], ["--limit", "1"]),
            ("retrain log --limit 0", ["--limit", "0"], ["--limit", "1"]),
            (
                "retrain log --id with a quote",
                ["--id", "x' OR tags.`retrain.retraining_id` != '"],
                ["--id", "retraining id"],
            ),
            ("retrain log --id empty", ["--id", ""], ["--id", "retraining id"]),
        ],
    )
    def test_bad_arguments_are_refused_with_exit_2(
        self,
        *,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        mlflow_server: Any,
        capsys: pytest.CaptureFixture[str],
        case: str,
        args: list[str],
        expect: list[str],
    ) -> None:
        config = fault_config(make_config, tmp_path, mlflow_server.url)
        Services.build(config).log.write(
            RetrainingRecord("retrain_20260101_001", "manual", "2026-01-01T00:00:00+00:00")
        )
        path = write_config(config, tmp_path / "retraining.yaml")
        cli_attempt(
            capsys,
            "cli",
            case,
            config,
            ["log", "--config", str(path), *args],
            code=2,
            expect=expect,
        )

    def test_an_id_with_a_quote_finds_nothing_rather_than_everything(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path, mlflow_server: Any
    ) -> None:
        config = fault_config(make_config, tmp_path, mlflow_server.url)
        store = Services.build(config).log
        store.write(RetrainingRecord("retrain_20260101_001", "manual", "2026-01-01T00:00:00+00:00"))
        assert store.get("x' OR tags.`retrain.retraining_id` != '") is None
        assert store.get("retrain_20260101_001") is not None


# --- secrets ------------------------------------------------------------------------------------


class TestSecrets:
    def test_mlflow_error_messages_mask_the_password(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        config = fault_config(make_config, tmp_path, f"http://retrain:{SECRET}@127.0.0.1:9")
        error = mlflow_error("reading", ConnectionError("connection refused"), config.registry)
        assert SECRET not in str(error)
        assert "retrain:***@127.0.0.1:9" in str(error)

    def test_records_and_tags_never_hold_the_password(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        proxy: FaultProxy,
        mlflow_server: Any,
    ) -> None:
        """The run fails with an error naming the tracking URI: the spooled record, and the
        MLflow record (tags and JSON artifact) it is flushed to, mask the password."""
        uri = proxy.url.replace("http://", f"http://retrain:{SECRET}@")
        config = fault_config(make_config, tmp_path, uri)
        outcome = run_pipeline(
            config,
            RunOptions(trigger="manual", as_of=SPEC.start + timedelta(weeks=3)),
            progress=breaking_at("validate", proxy.refuse),
        )
        assert "***" in (outcome.record.error or "")
        spool = Path(config.storage.work_dir) / "retraining_log.spool.jsonl"
        assert SECRET not in spool.read_text()
        proxy.forward()
        store = Services.build(config).log
        assert store.flush() == 1
        client = MlflowClient(tracking_uri=mlflow_server.url)
        experiment = client.get_experiment_by_name(config.log_experiment_name)
        [run] = client.search_runs([experiment.experiment_id])
        assert SECRET not in json.dumps(run.data.tags)
        full = store.get(outcome.record.retraining_id)
        assert full is not None and SECRET not in json.dumps(full.to_dict())

    def test_retrain_log_with_a_password_in_the_uri_masks_it(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        config = fault_config(make_config, tmp_path, f"http://retrain:{SECRET}@127.0.0.1:9")
        path = write_config(config, tmp_path / "retraining.yaml")
        err = cli_attempt(
            capsys,
            "security",
            "password in the tracking URI, MLflow down (retrain log)",
            None,
            ["log", "--config", str(path)],
            code=1,
            expect=["retrain:***@127.0.0.1:9", "unreachable"],
        )
        assert SECRET not in err
