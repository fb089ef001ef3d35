"""The retraining log's local spool: appends that survive a torn line, reads that skip and report
a bad line (naming the spool and the line), and a flush that keeps bad lines for a human."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from retrain.config import RegistrySettings
from retrain.log import LogStore, RetrainingRecord
from retrain.tracking import find_run
from tests.reliability.test_faults import hung_uri  # a fixture

__all__ = ["hung_uri"]

DEAD = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused


def _record(n: int, **fields: object) -> RetrainingRecord:
    return RetrainingRecord(
        retraining_id=f"retrain_20260101_{n:03d}",
        trigger="manual",
        start_time=f"2026-01-01T00:0{n}:00+00:00",
        status=str(fields.pop("status", "failed")),
        **fields,  # type: ignore[arg-type]
    )


def _store(tmp_path: Path, uri: str = DEAD) -> LogStore:
    settings = RegistrySettings(tracking_uri=uri, request_timeout_seconds=1, max_retries=0)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return LogStore(client, "retrain/t/log", tmp_path, settings=settings)


def _torn(store: LogStore) -> None:
    """A record, then a record cut short mid-line (a crash or a full disk during an append)."""
    whole = json.dumps(_record(1).to_dict())
    store.spool.parent.mkdir(parents=True, exist_ok=True)
    store.spool.write_text(whole + "\n" + whole[:37], encoding="utf-8")


class TestSpool:
    def test_mlflow_down_spools_the_record(self, tmp_path: Path) -> None:
        store = _store(tmp_path)
        where = store.write(_record(1))
        assert where == f"spool:{store.spool}"
        assert [r.retraining_id for r in store.spooled()] == ["retrain_20260101_001"]

    def test_a_torn_last_line_is_skipped_and_reported_with_path_and_line(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = _store(tmp_path)
        _torn(store)
        with caplog.at_level(logging.WARNING):
            records = store.spooled()
        assert [r.retraining_id for r in records] == ["retrain_20260101_001"]
        assert store.problems and f"{store.spool}:2" in store.problems[0]
        assert f"{store.spool}:2" in caplog.text

    def test_an_append_after_a_torn_line_starts_a_new_line(self, tmp_path: Path) -> None:
        store = _store(tmp_path)
        _torn(store)
        store.write(_record(2))
        ids = sorted(r.retraining_id for r in store.spooled())
        assert ids == ["retrain_20260101_001", "retrain_20260101_002"]
        assert store.spool.read_text(encoding="utf-8").endswith("\n")

    def test_a_line_that_is_json_but_no_record_is_reported(self, tmp_path: Path) -> None:
        store = _store(tmp_path)
        store.spool.write_text('{"retraining_id": 3}\n[1, 2]\n', encoding="utf-8")
        assert store.spooled() == []
        assert [p.split(": ", 1)[0] for p in store.problems] == [
            f"{store.spool}:1",
            f"{store.spool}:2",
        ]

    def test_spooled_records_name_the_spool_in_what_is_logged(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        store = _store(tmp_path)
        with caplog.at_level(logging.ERROR):
            store.write(_record(1))
        assert str(store.spool) in caplog.text

    def test_a_record_that_cannot_be_spooled_either_is_an_error_naming_the_spool(
        self, tmp_path: Path
    ) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        store = _store(blocker / "sub")
        with pytest.raises(Exception, match=r"retraining_log\.spool\.jsonl") as caught:
            store.write(_record(1))
        assert "retrain_20260101_001" in str(caught.value)

    def test_the_log_store_is_bounded_when_mlflow_is_hung(
        self, tmp_path: Path, hung_uri: str
    ) -> None:
        """Every MLflow call of the log store honours registry.request_timeout_seconds and
        max_retries (here 1 s, 0 retries), and after one unanswered call the store stops asking."""
        store = _store(tmp_path, hung_uri)
        started = time.monotonic()
        where = store.write(_record(1))
        assert where.startswith("spool:")
        assert time.monotonic() - started < 1 + 10


class TestFlush:
    def test_flush_keeps_bad_lines_in_a_bad_file_and_writes_the_rest(
        self, tmp_path: Path, make_config: object
    ) -> None:
        from tests.reliability.test_faults import log_store  # the session server's store

        store = log_store(make_config, tmp_path)  # type: ignore[arg-type]
        _torn(store)
        assert store.flush() == 1
        assert not store.spool.exists()
        bad = Path(f"{store.spool}.bad")
        assert bad.exists() and "line 2" in bad.read_text(encoding="utf-8")
        assert [r.retraining_id for r in store.records()] == ["retrain_20260101_001"]

    def test_flush_closes_the_run_a_spooled_record_left_open(
        self, tmp_path: Path, make_config: object
    ) -> None:
        from tests.reliability.test_faults import log_store

        store = log_store(make_config, tmp_path)  # type: ignore[arg-type]
        experiment = store.client.create_experiment(f"open-{tmp_path.name}")
        run = store.client.create_run(experiment)
        record = _record(1, mlflow_run_id=run.info.run_id, unclosed_run=run.info.run_id)
        store.spool.parent.mkdir(parents=True, exist_ok=True)
        store.spool.write_text(json.dumps(record.to_dict()) + "\n", encoding="utf-8")
        assert store.flush() == 1
        assert store.client.get_run(run.info.run_id).info.status == "FAILED"
        written = store.records()[0]
        assert written.unclosed_run is None


class TestFindRun:
    @pytest.mark.parametrize(
        "value", ["it's", "x' OR tags.`retrain.retraining_id` != '", 'a"b', "a'b\"c"]
    )
    def test_a_quote_in_the_value_neither_breaks_nor_widens_the_query(
        self, tmp_path: Path, make_config: object, value: str
    ) -> None:
        from tests.reliability.test_faults import log_store

        store = log_store(make_config, tmp_path)  # type: ignore[arg-type]
        store.write(_record(1))
        experiment_id = store.client.get_experiment_by_name(store.experiment_name).experiment_id
        assert find_run(store.client, experiment_id, "retrain.retraining_id", value) is None


class TestActor:
    def test_the_actor_survives_the_round_trip_through_mlflow(
        self, tmp_path: Path, make_config: object
    ) -> None:
        from tests.reliability.test_faults import log_store

        store = log_store(make_config, tmp_path)  # type: ignore[arg-type]
        store.write(_record(1, status="deployed", actor="alice"))
        [written] = store.records()
        assert written.actor == "alice"
