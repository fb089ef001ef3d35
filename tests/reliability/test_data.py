"""Bad data, hostile SQL and hostile profiles: each refused with an error naming the file, key,
column or field, and nothing changed (no table dropped, no version, alias or audit entry).

The SQL cases run against the real local PostgreSQL, in a database made for this module and
dropped at its end (``tests.test_data.postgres_database``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from retrain.cli import main
from retrain.config import RetrainConfig, parse_config
from retrain.data import extract
from retrain.drift import ReferenceProfile, check_drift, load_reference
from retrain.errors import ConfigError, DataError
from retrain.validate import check_frame, validate
from tests.helpers import (
    LOGREG,
    churn_config,
    churn_config_dict,
    churn_sections,
    postgres_database,
    write_config,
)
from tests.reliability.harness import attempt, cli_attempt
from tools.synthetic import StreamSpec, generate_week

SPEC = StreamSpec(weeks=3, rows_per_week=300, drift_week=None)
WEEK = timedelta(weeks=1)
AS_OF = SPEC.start + 3 * WEEK
ROWS = SPEC.weeks * SPEC.rows_per_week


# --- SQL sources against the real PostgreSQL -----------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database (dropped at the end of the module)."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def events(pg: str) -> Iterator[sa.Engine]:
    """A table ``events`` with the synthetic stream (and the function ``wipe()`` that empties
    it), made anew for each case."""
    engine = sa.create_engine(pg)
    frame = pd.concat([generate_week(SPEC, w) for w in range(SPEC.weeks)], ignore_index=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS events CASCADE")
        frame.to_sql("events", conn, index=False)
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION wipe() RETURNS bigint LANGUAGE sql AS "
            "'DELETE FROM events; SELECT 1::bigint'"
        )
    try:
        yield engine
    finally:
        engine.dispose()


def surviving_rows(engine: sa.Engine) -> int | None:
    """Rows of ``events``, or ``None`` when the table is gone."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("events"):
            return None
        return int(conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one())


def sql_dict(url: str, **source: Any) -> dict[str, Any]:
    base = {"kind": "sql", "url": url, "event_time_column": "event_time"}
    if "query" not in source:
        base["table"] = "events"
    return churn_config_dict("/unused", data={"source": {**base, **source}})


DROP = "event_time IS NULL; DROP TABLE events; COMMIT; --"


class TestSqlInjection:
    """Config values that try to run more than a read: refused, the table intact."""

    @pytest.mark.parametrize(
        ("case", "source", "env", "expect"),
        [
            pytest.param(
                "an event_time_column that ends the statement and drops the table",
                {"event_time_column": DROP},
                {},
                "data.source.event_time_column",
                id="event time column ending the statement and dropping the table",
            ),
            pytest.param(
                "the same event_time_column through ${VAR}",
                {"event_time_column": "${TIME_COLUMN}"},
                {"TIME_COLUMN": DROP},
                "data.source.event_time_column",
                id="event time column from an environment variable",
            ),
            pytest.param(
                "an event_time_column closing the comparison with OR true",
                {"event_time_column": "event_time > now() OR true OR event_time"},
                {},
                "data.source.event_time_column",
                id="event time column widening the filter",
            ),
            pytest.param(
                "a query with a second statement",
                {"query": "SELECT * FROM events; DROP TABLE events; COMMIT"},
                {},
                ["data.source.query", "one statement"],
                id="query with a second statement",
            ),
            pytest.param(
                "a query that deletes",
                {"query": "DELETE FROM events RETURNING *"},
                {},
                ["data.source.query", "SELECT or WITH"],
                id="query that is a DELETE",
            ),
            pytest.param(
                "a WITH query hiding a DELETE",
                {"query": "WITH gone AS (DELETE FROM events RETURNING *) SELECT * FROM gone"},
                {},
                ["data.source.query", "DELETE"],
                id="WITH query hiding a DELETE",
            ),
            pytest.param(
                "a SELECT INTO that creates a table",
                {"query": "SELECT * INTO stolen FROM events"},
                {},
                ["data.source.query", "INTO"],
                id="SELECT INTO creating a table",
            ),
            pytest.param(
                "a table name with a second statement",
                {"table": "events; DROP TABLE events"},
                {},
                "data.source.table",
                id="table name with a second statement",
            ),
            pytest.param(
                "a schema-qualified table name with an empty part",
                {"table": "public..events"},
                {},
                "data.source.table",
                id="table name with an empty part",
            ),
        ],
    )
    def test_a_hostile_source_is_refused_and_the_table_survives(  # noqa: PLR0917 - fixtures and parameters
        self,
        events: sa.Engine,
        pg: str,
        tmp_path: Path,
        case: str,
        source: dict[str, Any],
        env: dict[str, str],
        expect: str | list[str],
    ) -> None:
        with attempt("security", case, None, expect=expect, error=(ConfigError, DataError)):
            config = parse_config(sql_dict(pg, **source), source="bad.yaml", env=env)
            extract(config, out_dir=tmp_path, as_of=AS_OF)
        assert surviving_rows(events) == ROWS

    @pytest.mark.parametrize(
        ("case", "source", "expect"),
        [
            pytest.param(
                "an unvalidated event_time_column is quoted, not run",
                {"event_time_column": DROP},
                ["data.source.event_time_column", "not a plain column name"],
                id="event time column past the config is still refused",
            ),
            pytest.param(
                "an unvalidated query with a second statement is not run",
                {"table": None, "query": "SELECT * FROM events; DROP TABLE events; COMMIT"},
                ["data.source.query", "one statement"],
                id="query past the config is still refused",
            ),
        ],
    )
    def test_a_source_that_skipped_the_config_check_is_refused_at_read_time(  # noqa: PLR0917 - fixtures and parameters
        self,
        events: sa.Engine,
        pg: str,
        tmp_path: Path,
        case: str,
        source: dict[str, Any],
        expect: list[str],
    ) -> None:
        config = parse_config(sql_dict(pg))
        hostile = config.data.source.model_copy(update=source)  # no validation
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"source": hostile})}
        )
        with attempt("security", case, None, expect=expect, error=(ConfigError, DataError)):
            extract(config, out_dir=tmp_path, as_of=AS_OF)
        assert surviving_rows(events) == ROWS

    def test_a_select_calling_a_writing_function_runs_read_only(
        self, events: sa.Engine, pg: str, tmp_path: Path
    ) -> None:
        config = parse_config(sql_dict(pg, query="SELECT e.* FROM events e WHERE wipe() > 0"))
        case = "a SELECT calling a function that deletes runs in a read-only transaction"
        with attempt("security", case, None, expect="read-only transaction", error=DataError):
            extract(config, out_dir=tmp_path, as_of=AS_OF)
        assert surviving_rows(events) == ROWS

    def test_the_legitimate_reads_still_work(
        self, events: sa.Engine, pg: str, tmp_path: Path
    ) -> None:
        by_table = extract(parse_config(sql_dict(pg)), out_dir=tmp_path / "t", as_of=AS_OF)
        query = "WITH recent AS (SELECT * FROM events) SELECT * FROM recent -- all of it\n;"
        config = parse_config(sql_dict(pg, query=query))
        by_query = extract(config, out_dir=tmp_path / "q", as_of=AS_OF, window_days=14)
        assert by_table.rows == ROWS
        assert by_query.rows == 2 * SPEC.rows_per_week
        assert surviving_rows(events) == ROWS


# --- parquet sources: the schema of every file ----------------------------------------------


def write_weeks(root: Path, change: Callable[[int, pd.DataFrame], pd.DataFrame]) -> Path:
    """The stream as weekly hive partitions under ``root``, each week through ``change``."""
    for week in range(SPEC.weeks):
        day = (SPEC.start + week * WEEK).date().isoformat()
        path = root / f"week={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        change(week, generate_week(SPEC, week)).to_parquet(path, index=False)
    return root


def first_week_lacks_tenure(week: int, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["tenure"]) if week == 0 else frame


def last_week_has_text_tenure(week: int, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(tenure="n/a") if week == SPEC.weeks - 1 else frame


def middle_week_lacks_event_times(week: int, frame: pd.DataFrame) -> pd.DataFrame:
    if week == 1:
        frame.loc[:9, "event_time"] = pd.NaT
    return frame


class TestParquetSchemas:
    @pytest.mark.parametrize(
        ("case", "change", "expect"),
        [
            pytest.param(
                "a column missing in the first partition only",
                first_week_lacks_tenure,
                ["column 'tenure'", "missing in 1 of 3 files", "week=2026-01-05"],
                id="column missing in the first file only",
            ),
            pytest.param(
                "a later partition with text in a numeric column",
                last_week_has_text_tenure,
                ["column 'tenure'", "week=2026-01-19", "string", "double"],
                id="bad type in a later partition",
            ),
        ],
    )
    def test_every_file_is_checked_and_the_odd_one_named(
        self, tmp_path: Path, case: str, change: Any, expect: list[str]
    ) -> None:
        root = write_weeks(tmp_path / "events", change)
        with attempt("data", case, None, expect=expect, error=DataError):
            extract(churn_config(root), out_dir=tmp_path / "out", as_of=AS_OF)

    def test_a_partition_outside_the_window_does_not_matter(self, tmp_path: Path) -> None:
        root = write_weeks(tmp_path / "events", first_week_lacks_tenure)
        result = extract(churn_config(root), out_dir=tmp_path / "out", as_of=AS_OF, window_days=14)
        assert result.rows == 2 * SPEC.rows_per_week and "tenure" in result.columns

    def test_an_empty_file_among_the_partitions_is_named(self, tmp_path: Path) -> None:
        root = write_weeks(tmp_path / "events", lambda _, f: f)
        (root / "week=2026-01-26").mkdir()
        (root / "week=2026-01-26" / "part-0.parquet").write_bytes(b"")
        with attempt(
            "data",
            "an empty file among the partitions",
            None,
            expect=["week=2026-01-26", "part-0.parquet"],
            error=DataError,
        ):
            extract(churn_config(root), out_dir=tmp_path / "out", as_of=AS_OF)

    @pytest.mark.parametrize(
        ("case", "frame", "expect"),
        [
            pytest.param(
                "no event time column",
                generate_week(SPEC, 0).drop(columns=["event_time"]),
                "event time column 'event_time' not found",
                id="no event time column",
            ),
            pytest.param(
                "event times as text",
                generate_week(SPEC, 0).assign(event_time="monday"),
                ["column 'event_time' must be a timestamp", "string"],
                id="event times as text",
            ),
        ],
    )
    def test_an_unusable_event_time_is_named(
        self, tmp_path: Path, case: str, frame: pd.DataFrame, expect: str | list[str]
    ) -> None:
        frame.to_parquet(tmp_path / "x.parquet")
        config = churn_config(tmp_path / "x.parquet")
        with attempt("data", case, None, expect=expect, error=DataError):
            extract(config, out_dir=tmp_path / "out", as_of=AS_OF)

    def test_a_missing_path_is_named(self, tmp_path: Path) -> None:
        with attempt(
            "data", "a data path that does not exist", None, expect="nowhere", error=DataError
        ):
            extract(churn_config(tmp_path / "nowhere"), out_dir=tmp_path / "o", as_of=AS_OF)


# --- the data contract ----------------------------------------------------------------------

CONFIG = churn_config(Path("/unused"))
FRAME = generate_week(StreamSpec(rows_per_week=1000, drift_week=None), 0)


def frame_with(**changes: Any) -> pd.DataFrame:
    frame = FRAME.copy()
    for column, value in changes.items():
        frame = frame.drop(columns=[column]) if value is None else frame.assign(**{column: value})
    return frame


FIRST_THREE = np.arange(1000) < 3


class TestContract:
    @pytest.mark.parametrize(
        ("case", "frame", "expect"),
        [
            pytest.param(
                "a feature column missing",
                frame_with(tenure=None),
                "column 'tenure': required but missing",
                id="missing column",
            ),
            pytest.param(
                "text in a numeric feature",
                frame_with(monthly_charges="cheap"),
                "column 'monthly_charges': expected numeric",
                id="wrong type",
            ),
            pytest.param(
                "NaN labels",
                frame_with(churned=np.where(FIRST_THREE, np.nan, FRAME["churned"])),
                "label 'churned': 3 missing values",
                id="NaN labels",
            ),
            pytest.param(
                "one class only",
                frame_with(churned=0),
                "label 'churned': only one class",
                id="one class",
            ),
            pytest.param(
                "an empty window",
                FRAME.iloc[:0],
                "rows: no rows in the training window",
                id="empty window",
            ),
            pytest.param(
                "a fifth of the rows duplicated",
                pd.concat([FRAME, FRAME.iloc[:200]]),
                "200 duplicate rows",
                id="duplicate rows",
            ),
            pytest.param(
                "infinite values",
                frame_with(tenure=np.where(FIRST_THREE, np.inf, FRAME["tenure"])),
                "column 'tenure': 3 infinite values",
                id="infinite values",
            ),
            pytest.param(
                "event times missing",
                frame_with(event_time=FRAME["event_time"].where(~FIRST_THREE)),
                "column 'event_time': 3 missing event times",
                id="NaT event times",
            ),
        ],
    )
    def test_a_broken_frame_fails_the_contract_naming_the_column(
        self, case: str, frame: pd.DataFrame, expect: str
    ) -> None:
        with attempt("data", case, None, expect=expect, error=DataError):
            validate(CONFIG, frame, source="window")

    def test_unseen_categories_can_block(self) -> None:
        config = churn_config(Path("/u"), data={"validation": {"unseen_categories": "error"}})
        known = {"internet_service": ["dsl", "fiber"]}
        with attempt(
            "data",
            "categories the production model never saw",
            None,
            expect=["column 'internet_service'", "never saw: 'none'"],
            error=DataError,
        ):
            validate(config, FRAME, known_categories=known)

    def test_nat_event_times_in_the_source_reach_the_contract(self, tmp_path: Path) -> None:
        root = write_weeks(tmp_path / "events", middle_week_lacks_event_times)
        with attempt(
            "data",
            "event times missing in the source (not dropped silently)",
            None,
            expect="column 'event_time': 10 missing event times",
            error=DataError,
        ):
            result = extract(churn_config(root), out_dir=tmp_path / "out", as_of=AS_OF)
            assert result.rows == ROWS
            validate(churn_config(root), pd.read_parquet(result.path))

    def test_nat_event_times_outside_every_window_still_count(self, tmp_path: Path) -> None:
        root = write_weeks(tmp_path / "events", middle_week_lacks_event_times)
        config = churn_config(root)
        result = extract(config, out_dir=tmp_path / "out", as_of=AS_OF, window_days=7)
        report = check_frame(config, pd.read_parquet(result.path))
        assert result.rows == SPEC.rows_per_week + 10
        assert report.problems == ["column 'event_time': 10 missing event times"]


# --- reference profiles: untrusted JSON -------------------------------------------------------


@pytest.fixture(scope="module")
def good_profile() -> dict[str, Any]:
    frame = pd.DataFrame(
        {"x": np.random.default_rng(1).normal(size=500), "c": ["a", "b", "c", "d", "e"] * 100}
    )
    profile = load_reference(frame, settings=CONFIG.drift)
    return dict(profile.to_dict())


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def hostile(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], str]:
    def text(good: dict[str, Any]) -> str:
        data = json.loads(json.dumps(good))
        result = change(data)
        return json.dumps(data if result is None else result)

    return text


def nan_edges(d: dict[str, Any]) -> None:
    d["features"]["x"]["edges"][3] = float("nan")


class TestHostileProfiles:
    @pytest.mark.parametrize(
        ("case", "text", "expect"),
        [
            pytest.param(
                "a profile nested 100,000 levels deep",
                lambda _: deep(100_000),
                "nested",
                id="deeply nested JSON",
            ),
            pytest.param(
                "a profile nested deep inside a feature",
                hostile(lambda d: d["features"]["x"].update(edges=json.loads(deep(500)))),
                "features.x.edges",
                id="deeply nested field",
            ),
            pytest.param(
                "a profile that is a JSON list",
                lambda _: "[1, 2, 3]",
                "expected a JSON object",
                id="not an object",
            ),
            pytest.param(
                "negative counts",
                hostile(lambda d: d["features"]["x"]["counts"].__setitem__(0, -5)),
                "features.x.counts[0]",
                id="negative counts",
            ),
            pytest.param(
                "a negative row count",
                hostile(lambda d: d["features"]["c"].update(n=-1)),
                "features.c.n",
                id="negative n",
            ),
            pytest.param(
                "NaN bin edges",
                hostile(nan_edges),
                "features.x.edges[3]",
                id="NaN edges",
            ),
            pytest.param(
                "a count given as text",
                hostile(lambda d: d["features"]["x"].update(n="many")),
                ["features.x.n", "expected an integer"],
                id="wrong type of a count",
            ),
            pytest.param(
                "a count given as true",
                hostile(lambda d: d["features"]["x"].update(n_missing=True)),
                "features.x.n_missing",
                id="boolean count",
            ),
            pytest.param(
                "a fractional count",
                hostile(lambda d: d["features"]["c"]["counts"].__setitem__(0, 1.5)),
                "features.c.counts[0]",
                id="fractional count",
            ),
            pytest.param(
                "a feature that is a number",
                hostile(lambda d: d["features"].update(x=5)),
                ["features.x", "expected an object"],
                id="feature not an object",
            ),
            pytest.param(
                "categories that are objects",
                hostile(lambda d: d["features"]["c"]["categories"].__setitem__(0, {"a": 1})),
                "features.c.categories[0]",
                id="category not a string",
            ),
            pytest.param(
                "counts that do not add up",
                hostile(lambda d: d["features"]["x"].update(n=10**12)),
                "features.x",
                id="inconsistent counts",
            ),
            pytest.param(
                "a million bin edges",
                hostile(lambda d: d["features"]["x"].update(edges=list(range(1_000_000)))),
                ["features.x.edges", "at most"],
                id="huge array",
            ),
            pytest.param(
                "a 40 MB profile",
                hostile(lambda d: d.update(padding="x" * 40_000_000)),
                ["bytes", "at most"],
                id="oversized file",
            ),
            pytest.param(
                "a count beyond 64 bits",
                hostile(lambda d: d.update(n_rows=10**40)),
                "n_rows",
                id="huge integer",
            ),
            pytest.param(
                "a profile that is not UTF-8",
                lambda _: '{"format_version": 1, "x": "\udcff"}',
                "not a profile JSON file",
                id="not UTF-8",
            ),
        ],
    )
    def test_a_hostile_profile_is_refused_naming_the_field(
        self,
        good_profile: dict[str, Any],
        tmp_path: Path,
        case: str,
        text: Callable[[dict[str, Any]], str],
        expect: str | list[str],
    ) -> None:
        path = tmp_path / "profile.json"
        path.write_bytes(text(good_profile).encode("utf-8", "surrogateescape"))
        frame = pd.DataFrame({"x": [0.0] * 200, "c": ["a"] * 200})
        fragments = [str(path), *([expect] if isinstance(expect, str) else expect)]
        with attempt("data", case, None, expect=fragments, error=DataError):
            check_drift(load_reference(path, settings=CONFIG.drift), frame, settings=CONFIG.drift)

    def test_a_hostile_profile_object_is_refused(self, good_profile: dict[str, Any]) -> None:
        data = json.loads(json.dumps(good_profile))
        data["features"]["x"]["edges"] = [[[[[[1.0]]]]]]
        with attempt(
            "data", "a profile object from the registry", None, expect="features.x.edges[0]"
        ):
            ReferenceProfile.from_dict(data, source="reference profile of v3")

    def test_the_good_profile_still_loads(self, good_profile: dict[str, Any]) -> None:
        again = ReferenceProfile.from_dict(json.loads(json.dumps(good_profile)))
        assert again.to_dict() == good_profile


# --- retrain drift on unreadable files ------------------------------------------------------


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    frame = pd.DataFrame({"a": np.arange(300.0), "b": ["x", "y", "z"] * 100})
    frame.to_parquet(tmp_path / "ref.parquet")
    return tmp_path / "ref.parquet"


def latin1_csv(path: Path) -> None:
    path.write_bytes(b"a,b\n1.0,caf\xe9\n2.0,y\n")


def ragged_csv(path: Path) -> None:
    path.write_text("a,b\n1.0,x\n2.0,y,3\n")


def empty_parquet(path: Path) -> None:
    path.write_bytes(b"")


def empty_parquet_in_directory(path: Path) -> None:
    path.mkdir()
    pd.DataFrame({"a": [1.0], "b": ["x"]}).to_parquet(path / "a.parquet")
    (path / "b.parquet").write_bytes(b"")


def no_parquet_in_directory(path: Path) -> None:
    path.mkdir()
    (path / "notes.txt").write_text("hello")


def empty_directory(path: Path) -> None:
    path.mkdir()


def later_file_with_other_types(path: Path) -> None:
    path.mkdir()
    pd.DataFrame({"a": [1.0], "b": ["x"]}).to_parquet(path / "a.parquet")
    pd.DataFrame({"a": ["one"], "b": ["x"]}).to_parquet(path / "b.parquet")


class TestDriftCommand:
    @pytest.mark.parametrize(
        ("case", "name", "make", "expect"),
        [
            pytest.param(
                "a CSV that is not UTF-8",
                "cur.csv",
                latin1_csv,
                ["cur.csv", "UTF-8"],
                id="non UTF-8 CSV",
            ),
            pytest.param(
                "a CSV with a ragged row", "cur.csv", ragged_csv, ["cur.csv", "Expected 2 columns"],
                id="ragged CSV",
            ),
            pytest.param(
                "an empty parquet file", "cur.parquet", empty_parquet, ["cur.parquet", "0 bytes"],
                id="empty parquet file",
            ),
            pytest.param(
                "an empty parquet file in a directory",
                "cur",
                empty_parquet_in_directory,
                ["b.parquet", "0 bytes"],
                id="empty parquet file in a directory",
            ),
            pytest.param(
                "a directory with no parquet files",
                "cur",
                no_parquet_in_directory,
                ["notes.txt", "not a parquet file"],
                id="directory with no parquet files",
            ),
            pytest.param(
                "an empty directory", "cur", empty_directory, ["cur", "no parquet files"],
                id="empty directory",
            ),
            pytest.param(
                "a later file with another type",
                "cur",
                later_file_with_other_types,
                ["column 'a'", "b.parquet", "string", "double"],
                id="later parquet file with another type",
            ),
        ],
    )  # fmt: skip
    def test_unreadable_current_data_exits_2_naming_the_file(  # noqa: PLR0917 - fixtures and parameters
        self,
        capsys: pytest.CaptureFixture[str],
        reference: Path,
        tmp_path: Path,
        case: str,
        name: str,
        make: Callable[[Path], None],
        expect: list[str],
    ) -> None:
        current = tmp_path / name
        make(current)
        argv = ["drift", "--reference", str(reference), "--current", str(current)]
        cli_attempt(capsys, "cli", case, None, argv, code=2, expect=expect)

    def test_a_reference_csv_that_is_not_utf8_exits_2(
        self, capsys: pytest.CaptureFixture[str], reference: Path, tmp_path: Path
    ) -> None:
        latin1_csv(tmp_path / "ref.csv")
        argv = ["drift", "--reference", str(tmp_path / "ref.csv"), "--current", str(reference)]
        expect = ["ref.csv", "UTF-8"]
        cli_attempt(
            capsys, "cli", "a reference CSV that is not UTF-8", None, argv, code=2, expect=expect
        )

    def test_a_hostile_profile_exits_2(
        self, capsys: pytest.CaptureFixture[str], reference: Path, tmp_path: Path
    ) -> None:
        (tmp_path / "p.json").write_text(deep(50_000))
        argv = ["drift", "--reference", str(tmp_path / "p.json"), "--current", str(reference)]
        cli_attempt(
            capsys,
            "cli",
            "a profile nested 50,000 levels deep",
            None,
            argv,
            code=2,
            expect="p.json",
        )


# --- whole runs -------------------------------------------------------------------------------


class TestRun:
    """``retrain run`` on bad data exits 2 naming the problem; it leaves a log record (that is its
    job) but no version, alias or audit entry."""

    @staticmethod
    def registry_state(config: RetrainConfig) -> dict[str, Any]:
        from tests.reliability.harness import snapshot

        state = snapshot(config)
        return {k: state[k] for k in ("versions", "aliases", "audit entries")}

    def test_a_bad_partition_fails_the_run_naming_the_file(
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        root = write_weeks(tmp_path / "events", last_week_has_text_tenure)
        config = make_config(
            **churn_sections(root, estimator=LOGREG, storage={"work_dir": str(tmp_path / "w")})
        )
        path = write_config(config, tmp_path / "retraining.yaml")
        before = self.registry_state(config)
        argv = ["run", "--config", str(path), "--trigger", "manual", "--as-of", AS_OF.isoformat()]
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, err
        assert "week=2026-01-19" in err and "column 'tenure'" in err
        assert "Traceback" not in err
        assert self.registry_state(config) == before

    def test_an_injected_event_time_column_fails_the_run_at_load(  # noqa: PLR0917 - fixtures and parameters
        self,
        make_config: Callable[..., RetrainConfig],
        tmp_path: Path,
        pg: str,
        events: sa.Engine,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        config = make_config(**churn_sections(tmp_path, estimator=LOGREG))
        path = write_config(config, tmp_path / "retraining.yaml")
        data = yaml.safe_load(path.read_text())
        data["data"]["source"] = {
            "kind": "sql",
            "url": pg,
            "table": "events",
            "event_time_column": "${TIME_COLUMN}",
        }
        path.write_text(yaml.safe_dump(data))
        monkeypatch.setenv("TIME_COLUMN", DROP)
        argv = ["run", "--config", str(path), "--trigger", "manual", "--as-of", AS_OF.isoformat()]
        cli_attempt(
            capsys,
            "security",
            "retrain run with an event_time_column that drops the table",
            config,
            argv,
            code=2,
            expect="data.source.event_time_column",
        )
        assert surviving_rows(events) == ROWS
