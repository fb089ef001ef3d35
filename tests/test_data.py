from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from retrain.config import RetrainConfig
from retrain.data import (
    content_hash,
    count_rows,
    extract,
    read_frame,
    read_source,
    row_hashes,
    sample_rows,
    select_columns,
    write_frame,
)
from retrain.errors import DataError
from retrain.handoff import shared_outputs
from tests.helpers import churn_config, postgres_database
from tools.synthetic import StreamSpec, generate_week, write_stream

SPEC = StreamSpec(weeks=4, rows_per_week=500, drift_week=None)
WEEK = timedelta(weeks=1)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream") / "events"
    write_stream(root, SPEC)
    return root


class TestExtractParquet:
    def test_reads_everything_up_to_as_of(self, stream: Path, tmp_path: Path) -> None:
        result = extract(churn_config(stream), out_dir=tmp_path, as_of=SPEC.start + 2 * WEEK)
        assert result.rows == 1000
        assert result.new_samples == 1000, "no watermark: every row is new"
        frame = read_frame(result.path)
        assert frame["event_time"].max() <= pd.Timestamp(SPEC.start + 2 * WEEK)

    def test_new_samples_after_watermark(self, stream: Path, tmp_path: Path) -> None:
        result = extract(
            churn_config(stream),
            out_dir=tmp_path,
            as_of=SPEC.start + 3 * WEEK,
            watermark=SPEC.start + 2 * WEEK,
        )
        assert result.rows == 1500
        assert result.new_samples == 500

    def test_training_window_limits_history(self, stream: Path, tmp_path: Path) -> None:
        config = churn_config(stream, data={"training_window_days": 14})
        result = extract(config, out_dir=tmp_path, as_of=SPEC.start + 4 * WEEK)
        assert result.rows == 1000
        assert result.window_start == (SPEC.start + 2 * WEEK).isoformat()

    def test_window_override_beats_config(self, stream: Path, tmp_path: Path) -> None:
        config = churn_config(stream, data={"training_window_days": 14})
        result = extract(config, out_dir=tmp_path, as_of=SPEC.start + 4 * WEEK, window_days=7)
        assert result.rows == 500

    def test_data_version_is_deterministic_and_content_based(
        self, stream: Path, tmp_path: Path
    ) -> None:
        config = churn_config(stream)
        a = extract(config, out_dir=tmp_path / "a", as_of=SPEC.start + 2 * WEEK)
        b = extract(config, out_dir=tmp_path / "b", as_of=SPEC.start + 2 * WEEK)
        c = extract(config, out_dir=tmp_path / "c", as_of=SPEC.start + 3 * WEEK)
        assert a.data_version == b.data_version
        assert a.content_hash != c.content_hash
        assert a.data_version.endswith(a.content_hash[:12])

    def test_empty_window_is_not_an_error_here(self, stream: Path, tmp_path: Path) -> None:
        result = extract(churn_config(stream), out_dir=tmp_path, as_of=SPEC.start - WEEK)
        assert result.rows == 0 and result.first_event is None

    def test_missing_path_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(DataError, match=r"data source path does not exist: .*nowhere"):
            extract(churn_config(tmp_path / "nowhere"), out_dir=tmp_path, as_of=SPEC.start)

    def test_missing_time_column_is_named(self, tmp_path: Path) -> None:
        frame = generate_week(SPEC, 0).drop(columns=["event_time"])
        frame.to_parquet(tmp_path / "x.parquet")
        with pytest.raises(DataError, match="event time column 'event_time' not found"):
            extract(churn_config(tmp_path / "x.parquet"), out_dir=tmp_path, as_of=SPEC.start)

    def test_missing_feature_column_is_left_for_validation(self, tmp_path: Path) -> None:
        frame = generate_week(SPEC, 0).drop(columns=["tenure"])
        frame.to_parquet(tmp_path / "x.parquet")
        result = extract(
            churn_config(tmp_path / "x.parquet"), out_dir=tmp_path / "o", as_of=SPEC.start + WEEK
        )
        assert "tenure" not in result.columns and result.rows == 500


class TestContentHash:
    FRAME = pd.DataFrame(
        {
            "a": [1.0, float("nan"), 3.0, 1.0],
            "b": ["x", None, "z", "x"],
            "t": pd.to_datetime(["2026-01-01", "2026-01-02", None, "2026-01-01"], utc=True),
        }
    )

    def test_row_and_column_order_do_not_matter(self) -> None:
        shuffled = self.FRAME.sample(frac=1, random_state=3)[["t", "b", "a"]]
        assert content_hash(shuffled) == content_hash(self.FRAME)
        assert content_hash(shuffled.reset_index(drop=True)) == content_hash(self.FRAME)

    def test_row_hashes_are_pandas_hashes_of_the_columns_in_name_order(self) -> None:
        frame = self.FRAME[["t", "b", "a"]].set_axis([10, 11, 12, 13])
        expected = pd.util.hash_pandas_object(self.FRAME[["a", "b", "t"]], index=False)
        assert row_hashes(frame).tolist() == expected.tolist()
        assert frame.columns.tolist() == ["t", "b", "a"], "the caller's frame is left alone"

    def test_any_change_of_content_changes_it(self) -> None:
        base = content_hash(self.FRAME)
        changed = self.FRAME.copy()
        changed.loc[2, "a"] = 3.5
        assert content_hash(changed) != base
        assert content_hash(self.FRAME.iloc[:3]) != base, "a duplicate row dropped"
        assert content_hash(self.FRAME.rename(columns={"b": "c"})) != base
        swapped = self.FRAME.assign(a=self.FRAME["a"].iloc[::-1].to_numpy())
        assert content_hash(swapped) != base, "same column values, other rows"


class TestSelectColumns:
    def test_the_named_columns_in_order_sharing_their_values(self) -> None:
        # one float block: ``frame[names]`` copies it, select_columns does not
        frame = pd.DataFrame(np.arange(12.0).reshape(3, 4), columns=["a", "b", "c", "d"])
        rows = frame.iloc[1:]
        picked = select_columns(rows, ["d", "a", "b"])
        pd.testing.assert_frame_equal(picked, rows[["d", "a", "b"]])
        for name in ("d", "a", "b"):
            assert np.shares_memory(picked[name].to_numpy(), frame[name].to_numpy())

    def test_a_name_given_twice_is_refused(self) -> None:
        frame = pd.DataFrame({"a": [1.0]})
        with pytest.raises(ValueError, match="named twice"):
            select_columns(frame, ["a", "a"])

    def test_a_change_on_either_side_stays_there(self) -> None:
        frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [7, 8, 9]})
        picked = select_columns(frame, ["a"])
        picked.loc[0, "a"] = 100.0
        frame.loc[1, "a"] = -1.0
        assert frame["a"].tolist() == [1.0, -1.0, 3.0]
        assert picked["a"].tolist() == [100.0, 2.0, 3.0]


class TestHandoff:
    def test_extract_hands_the_same_frame_the_file_holds(
        self, stream: Path, tmp_path: Path
    ) -> None:
        config = churn_config(stream)
        with shared_outputs():
            result = extract(config, out_dir=tmp_path, as_of=SPEC.start + 2 * WEEK)
            shared = read_frame(result.path)
            again = read_frame(result.path)
            assert again is not shared and len(again) == 1000
            part = read_frame(result.path, columns=["tenure", "contract"])
        pd.testing.assert_frame_equal(shared, read_frame(result.path))
        pd.testing.assert_frame_equal(part, read_frame(result.path, columns=["tenure", "contract"]))

    def test_changes_to_a_handed_frame_stay_with_the_caller(self, tmp_path: Path) -> None:
        path = tmp_path / "f.parquet"
        frame = pd.DataFrame({"x": [1, 2, 3]}, index=[7, 8, 9])
        with shared_outputs():
            write_frame(frame, path)
            first = read_frame(path)
            first.loc[0, "x"] = 100
            assert read_frame(path)["x"].tolist() == [1, 2, 3]
            pd.testing.assert_frame_equal(read_frame(path), pd.read_parquet(path))


class TestCountRows:
    def test_counts_the_rows_in_the_time_range(self, stream: Path) -> None:
        config = churn_config(stream)
        start, end = SPEC.start + WEEK, SPEC.start + 3 * WEEK

        assert count_rows(config, start=start, end=end) == 1000
        assert count_rows(config, end=end) == read_source(config, end=end).num_rows == 1500


class TestExtractSql:
    def test_sqlite_table_with_time_filter(self, tmp_path: Path) -> None:
        db = tmp_path / "events.db"
        frame = pd.concat([generate_week(SPEC, 0), generate_week(SPEC, 1)])
        first = frame["event_time"].min()
        frame["event_time"] = frame["event_time"].dt.tz_convert(None).astype(str)
        with sqlite3.connect(db) as conn:
            frame.to_sql("events", conn, index=False)
        config = churn_config(
            tmp_path,
            data={
                "source": {
                    "kind": "sql",
                    "url": f"sqlite:///{db}",
                    "table": "events",
                    "event_time_column": "event_time",
                }
            },
        )
        result = extract(
            config, out_dir=tmp_path / "o", as_of=SPEC.start + 2 * WEEK, watermark=SPEC.start + WEEK
        )
        assert result.rows == 1000
        assert result.new_samples == 500
        times = pq.read_table(result.path).column("event_time")
        assert times.type.tz == "UTC"
        assert times[0].as_py() == first

    def test_conn_id_outside_airflow_is_explained(self, tmp_path: Path) -> None:
        config = churn_config(
            tmp_path,
            data={
                "source": {
                    "kind": "sql",
                    "conn_id": "warehouse",
                    "table": "events",
                    "event_time_column": "event_time",
                }
            },
        )
        with pytest.raises(DataError, match="conn_id 'warehouse' is resolved by Airflow"):
            extract(config, out_dir=tmp_path, as_of=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="module")
def events(postgres: str) -> str:
    frame = pd.concat([generate_week(SPEC, w) for w in range(SPEC.weeks)], ignore_index=True)
    frame = frame.rename(columns={"event_time": "EventTime"})
    engine = sa.create_engine(postgres)
    with engine.begin() as conn:
        frame.to_sql("events", conn, index=False)
        conn.exec_driver_sql("CREATE SCHEMA sales")
        frame.iloc[:10].to_sql("events", conn, schema="sales", index=False)
    engine.dispose()
    return postgres


class TestExtractPostgres:
    """``kind: sql`` on the real PostgreSQL: table or query, the time filter as bound parameters
    on a quoted column, in a read-only transaction."""

    def config(self, url: str, **source: str) -> RetrainConfig:
        base = {"kind": "sql", "url": url, "event_time_column": "EventTime", "table": "events"}
        data = {"source": {**base, **source}}
        return churn_config(Path("/unused"), data=data)

    def test_a_table_with_the_time_filter(self, events: str, tmp_path: Path) -> None:
        result = extract(
            self.config(events),
            out_dir=tmp_path,
            as_of=SPEC.start + 3 * WEEK,
            watermark=SPEC.start + 2 * WEEK,
            window_days=14,
        )
        assert (result.rows, result.new_samples) == (1000, 500)
        times = pq.read_table(result.path).column("EventTime")
        assert times.type.tz == "UTC"
        assert times[0].as_py() > SPEC.start + WEEK

    def test_a_query_as_a_subquery(self, events: str, tmp_path: Path) -> None:
        query = "SELECT * FROM events WHERE contract = 'two-year' AND \"EventTime\" IS NOT NULL;"
        config = self.config(events, table=None, query=query)  # type: ignore[arg-type]
        got = extract(config, out_dir=tmp_path, as_of=SPEC.start + 4 * WEEK)
        expected = sum((generate_week(SPEC, w)["contract"] == "two-year").sum() for w in range(4))
        assert got.rows == expected

    def test_a_schema_qualified_table(self, events: str) -> None:
        config = self.config(events, table="sales.events")
        assert count_rows(config, end=SPEC.start + 4 * WEEK) == 10

    def test_the_read_is_read_only(self, events: str) -> None:
        query = "SELECT *, nextval('seq') AS n FROM events"
        with sa.create_engine(events).begin() as conn:
            conn.exec_driver_sql("CREATE SEQUENCE IF NOT EXISTS seq")
        config = self.config(events, table=None, query=query)  # type: ignore[arg-type]
        with pytest.raises(DataError, match="read-only transaction"):
            count_rows(config, end=SPEC.start + 4 * WEEK)


class TestMissingEventTimes:
    def test_extract_keeps_them_for_the_contract_and_counts_none_as_new(
        self, tmp_path: Path
    ) -> None:
        frame = generate_week(SPEC, 0)
        frame.loc[:4, "event_time"] = pd.NaT
        frame.to_parquet(tmp_path / "x.parquet")
        config = churn_config(tmp_path / "x.parquet")
        kept = extract(config, out_dir=tmp_path / "k", as_of=SPEC.start + WEEK)
        assert (kept.rows, kept.new_samples) == (500, 495)
        assert count_rows(config, end=SPEC.start + WEEK) == 495
        assert read_frame(kept.path)["event_time"].isna().sum() == 5


class TestExtractSample:
    """``extract(max_rows=N)``, as a full rebuild with ``full_rebuild.max_rows`` extracts: a
    uniform sample of N rows of the window, in time order, drawn with ``model.random_state``."""

    AS_OF = SPEC.start + 2 * WEEK  # two weeks of the stream: 1000 rows

    def test_keeps_max_rows_of_the_window_in_time_order(self, stream: Path, tmp_path: Path) -> None:
        config = churn_config(stream)
        full = extract(config, out_dir=tmp_path / "full", as_of=self.AS_OF)
        sampled = extract(config, out_dir=tmp_path / "sampled", as_of=self.AS_OF, max_rows=300)

        assert full.sampled_from is None and full.rows == 1000
        assert (sampled.rows, sampled.sampled_from) == (300, 1000)
        assert sampled.new_samples == 1000, "new rows are counted before sampling"
        assert "300 rows sampled of 1000" in sampled.summary()
        assert "_300rows_" in sampled.data_version
        assert sampled.content_hash != full.content_hash

        frame = read_frame(sampled.path)
        assert len(frame) == 300
        assert frame["event_time"].is_monotonic_increasing
        assert list(frame.columns) == sampled.columns
        # a sample of the window's rows, each once: no row made up, none twice
        whole = set(row_hashes(read_frame(full.path)).tolist())
        picked = row_hashes(frame).tolist()
        assert len(set(picked)) == 300 and set(picked) <= whole
        # uniform over the window: each of its two weeks holds about half the sample
        first_week = int((frame["event_time"] < pd.Timestamp(SPEC.start + WEEK)).sum())
        assert 110 <= first_week <= 190, first_week

    def test_the_same_inputs_give_the_same_sample(self, stream: Path, tmp_path: Path) -> None:
        config = churn_config(stream)
        a = extract(config, out_dir=tmp_path / "a", as_of=self.AS_OF, max_rows=250)
        b = extract(config, out_dir=tmp_path / "b", as_of=self.AS_OF, max_rows=250)
        assert a.data_version == b.data_version and a.content_hash == b.content_hash
        pd.testing.assert_frame_equal(read_frame(a.path), read_frame(b.path))

        reseeded = churn_config(stream, model={"random_state": 7})
        c = extract(reseeded, out_dir=tmp_path / "c", as_of=self.AS_OF, max_rows=250)
        assert c.rows == 250 and c.sampled_from == 1000
        assert c.content_hash != a.content_hash, "model.random_state draws the sample"

    @pytest.mark.parametrize("max_rows", [1000, 5000])
    def test_a_window_no_larger_than_max_rows_is_not_sampled(
        self, stream: Path, tmp_path: Path, max_rows: int
    ) -> None:
        config = churn_config(stream)
        full = extract(config, out_dir=tmp_path / "full", as_of=self.AS_OF)
        capped = extract(config, out_dir=tmp_path / "capped", as_of=self.AS_OF, max_rows=max_rows)
        assert capped.sampled_from is None
        assert capped.rows == 1000
        assert capped.data_version == full.data_version
        assert "sampled" not in capped.summary()

    def test_sample_rows_is_seeded_distinct_and_in_table_order(self) -> None:
        table = pa.table({"i": np.arange(1000)})
        a = sample_rows(table, 100, seed=3).column("i").to_pylist()
        assert len(a) == len(set(a)) == 100
        assert a == sorted(a), "in table order"
        assert sample_rows(table, 100, seed=3).column("i").to_pylist() == a
        assert sample_rows(table, 100, seed=4).column("i").to_pylist() != a
        assert sample_rows(table, 1000, seed=3).column("i").to_pylist() == list(range(1000))
