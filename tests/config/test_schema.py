"""The schema: defaults of every section and the rules a config must satisfy.

Each bad config is loaded from a file, so each refusal is also checked to name the file and key.
"""

from __future__ import annotations

import itertools
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from retrain.config import load_config, parse_config
from retrain.config.schema import ParamRange
from retrain.errors import ConfigError
from tests.config.helpers import DELETE, MINIMAL, mutate, write


class TestDefaults:
    def test_only_model_data_registry_are_required(self) -> None:
        config = parse_config(MINIMAL)
        assert set(config.retraining_rules) == {
            "performance_based",
            "scheduled",
            "data_based",
            "drift_based",
        }
        assert config.schedule.retries == 2 and config.schedule.retry_delay_minutes == 10
        assert config.experiment_name == "retrain/churn-classifier"
        assert config.drift.thresholds["psi"].high == 0.25

    def test_any_number_of_named_rules(self) -> None:
        rules = {
            f"rule_{i}": {"trigger": f"t{i}", "condition": f"new_samples > {i}", "action": "notify"}
            for i in range(6)
        }
        config = parse_config(mutate("retraining_rules", rules))
        assert len(config.retraining_rules) == 6

    def test_sql_source_with_connection_id(self) -> None:
        source = {
            "kind": "sql",
            "conn_id": "warehouse",
            "table": "events",
            "event_time_column": "ts",
        }
        config = parse_config(mutate("data.source", source))
        assert config.data.source.kind == "sql"

    def test_per_feature_drift_override_keeps_other_defaults(self) -> None:
        drift = {
            "thresholds": {"psi": {"low": 0.05, "medium": 0.2, "high": 0.4}},
            "features": {"tenure": {"enabled": False}},
        }
        config = parse_config(mutate("drift", drift))
        assert config.drift.thresholds["psi"].high == 0.4
        assert config.drift.thresholds["js"].high == 0.12
        assert config.drift.features["tenure"].enabled is False

    def test_config_is_immutable(self) -> None:
        config = parse_config(MINIMAL)
        with pytest.raises(Exception, match="frozen"):
            config.model.name = "other"  # type: ignore[misc]


BAD_CONFIGS = [
    pytest.param(mutate("model", DELETE), "model: required key is missing", id="missing model"),
    pytest.param(
        mutate("registry.tracking_uri", DELETE),
        "registry.tracking_uri: required key",
        id="missing tracking uri",
    ),
    pytest.param(
        mutate("model.target", ["a"]),
        "model.target: Input should be a valid string",
        id="target of the wrong type",
    ),
    pytest.param(
        mutate("model.features.numerc", ["x"]),
        "model.features.numerc: unknown key",
        id="misspelled key",
    ),
    pytest.param(mutate("model.colour", "red"), "model.colour: unknown key", id="unknown key"),
    pytest.param(
        mutate("retraining_rules", {"p": {"trigger": "t", "condition": "acuracy < 0.8"}}),
        "retraining_rules.p.condition: unknown signal 'acuracy'",
        id="unknown signal",
    ),
    pytest.param(
        mutate("retraining_rules", {"p": {"trigger": "t", "condition": "accuracy => 0.8"}}),
        "retraining_rules.p.condition: unexpected character",
        id="bad operator",
    ),
    pytest.param(
        mutate(
            "retraining_rules",
            {"p": {"trigger": "t", "condition": "__import__('os').system('id')"}},
        ),
        "retraining_rules.p.condition: unexpected character",
        id="injection attempt",
    ),
    pytest.param(
        mutate("retraining_rules", {"p": {"trigger": "t", "condition": "new_samples > -10"}}),
        "retraining_rules.p.condition: new_samples: threshold -10 is out of range",
        id="negative threshold in a condition",
    ),
    pytest.param(
        mutate(
            "retraining_rules",
            {"p": {"trigger": "t", "condition": "accuracy < 0.8", "action": "panic"}},
        ),
        "retraining_rules.p.action: Input should be",
        id="unknown action",
    ),
    pytest.param(
        mutate("retraining_rules", {"bad name!": {"trigger": "t", "condition": "accuracy < 0.8"}}),
        "retraining_rules.bad name!",
        id="rule name not an identifier",
    ),
    pytest.param(
        mutate("triggers.cooldown_hours", -1),
        "triggers.cooldown_hours: Input should be greater than or equal to 0",
        id="negative cooldown",
    ),
    pytest.param(
        mutate("evaluation.thresholds", {"accuracy": 1.5}),
        "evaluation.thresholds.accuracy: Input should be less than or equal to 1",
        id="gate threshold above one",
    ),
    pytest.param(
        mutate("evaluation.thresholds", {"auc": 0.7}),
        "evaluation.thresholds.auc",
        id="gate on an unknown metric",
    ),
    pytest.param(
        mutate("data.holdout_fraction", 0.9),
        "data.holdout_fraction: Input should be less than or equal to 0.5",
        id="holdout too large",
    ),
    pytest.param(
        mutate("data.training_window_days", 0), "data.training_window_days", id="zero-day window"
    ),
    pytest.param(
        mutate("data.source.kind", "csv"), "data.source: Input tag 'csv'", id="unknown source kind"
    ),
    pytest.param(
        mutate("data.source", {"kind": "sql", "table": "t", "event_time_column": "ts"}),
        "data.source: give exactly one of 'url' or 'conn_id'",
        id="sql without url",
    ),
    pytest.param(
        mutate("model.features.categorical", ["tenure"]),
        "model.features: feature 'tenure' is listed twice",
        id="feature listed twice",
    ),
    pytest.param(
        mutate("model.target", "tenure"),
        "model: target 'tenure' must not also be",
        id="target is a feature",
    ),
    pytest.param(
        mutate("model.estimator", {"class": "os.system; rm", "params": {}}),
        "model.estimator.class: String should match pattern",
        id="estimator not dotted",
    ),
    pytest.param(
        mutate("model.name", "bad name/with slash"),
        "model.name: String should match",
        id="model name with a slash",
    ),
    pytest.param(
        mutate("drift.features", {"nope": {"enabled": False}}),
        "drift.features names unknown features: nope",
        id="drift override for unknown feature",
    ),
    pytest.param(
        mutate("drift.thresholds", {"psi": {"low": 0.3, "medium": 0.2, "high": 0.1}}),
        "drift.thresholds.psi: cut points must satisfy",
        id="unordered drift cuts",
    ),
    pytest.param(
        mutate("cadence", {"critical_accuracy": 0.9, "degraded_accuracy": 0.8}),
        "cadence: critical_accuracy must be <= degraded_accuracy",
        id="cadence thresholds reversed",
    ),
    pytest.param(
        mutate("notifications", {"kind": "slack"}),
        "notifications: kind 'slack' needs slack_webhook_url",
        id="slack without url",
    ),
    pytest.param(
        mutate("schedule.retries", "two"),
        "schedule.retries: Input should be a valid integer",
        id="retries as text",
    ),
    pytest.param(
        mutate("retraining_rules", {}),
        "retraining_rules must define at least one rule",
        id="no rules at all",
    ),
    pytest.param(
        mutate("retraining_rules", {"bad name!": {"trigger": "t", "condition": "accuracy < 0.8"}}),
        "retraining_rules.bad name!: invalid key: String should match",
        id="a bad key is named as the key",
    ),
    pytest.param(
        mutate("model.estimator", {"allowed_modules": ["xgboost"]}),
        "model.estimator.class: 'sklearn.ensemble.HistGradientBoostingClassifier' is not in an "
        "allowed module (model.estimator.allowed_modules: xgboost)",
        id="the default estimator is checked against the allowed modules too",
    ),
    pytest.param(
        mutate("model.estimator.allowed_modules", []),
        "model.estimator.allowed_modules: List should have at least 1 item",
        id="no allowed module at all",
    ),
    pytest.param(
        mutate("cadence.monthly_days", 1e6),
        "cadence.monthly_days: Input should be less than or equal to 3650",
        id="a cadence of a million days",
    ),
    pytest.param(
        mutate("drift.thresholds", {"psi": {"low": 0.1, "medium": 0.2, "high": float("inf")}}),
        "drift.thresholds.psi.high: Input should be a finite number",
        id="an infinite drift cut",
    ),
]


class TestBadConfigs:
    @pytest.mark.parametrize(("data", "fragment"), BAD_CONFIGS)
    def test_error_names_file_and_key(self, tmp_path: Path, data: Any, fragment: str) -> None:
        path = write(tmp_path, data)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
        assert str(path) in message
        assert fragment in message, message


class TestEstimatorModules:
    @pytest.mark.parametrize(
        ("allowed", "class_path"),
        [
            pytest.param(["sklearn"], "sklearn.linear_model.LogisticRegression", id="default"),
            pytest.param(["sklearn."], "sklearn.svm.SVC", id="written with a trailing dot"),
            pytest.param(["sklearn", "xgboost"], "xgboost.XGBClassifier", id="added module"),
            pytest.param(["lightgbm.sklearn"], "lightgbm.sklearn.LGBMClassifier", id="submodule"),
        ],
    )
    def test_a_class_in_an_allowed_module_loads_without_importing_it(
        self, allowed: list[str], class_path: str
    ) -> None:
        estimator = {"allowed_modules": allowed, "class": class_path}
        config = parse_config(mutate("model.estimator", estimator))
        assert config.model.estimator.class_path == class_path
        assert "xgboost" not in sys.modules and "lightgbm" not in sys.modules


class TestSchedules:
    """A cron the config accepts is one Airflow's CronTriggerTimetable runs: the DAG file is never
    the first to find a bad cron or time zone."""

    ACCEPTED = [
        "@hourly",
        "@weekly",
        "@quarterly",
        "*/15 * * * *",
        "0 6 * * MON-FRI",
        "30 2 1,15 * *",
        "0 0 L * *",
        "0 0 29 2 *",
        "0 20 * * 0#1",
        "0 20 * * sun#1",
    ]
    REFUSED = [
        ("61 * * * *", "not a valid cron expression"),
        ("* * * *", "has 4 fields"),
        ("0 0 * * * *", "has 6 fields"),
        ("0 0 30 2 *", "never fires"),
        ("H * * * *", "not a valid cron expression"),
        ("@once", "unknown preset '@once'"),
        ("@midnight", "unknown preset"),
        ("every monday", "has 2 fields"),
    ]

    @pytest.mark.parametrize("cron", ACCEPTED)
    @pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
    def test_what_the_config_accepts_airflow_runs(self, cron: str, zone: str) -> None:
        import pendulum
        from airflow.timetables.base import TimeRestriction
        from airflow.timetables.trigger import CronTriggerTimetable

        schedule = {"weekly": cron, "full_rebuild": cron, "timezone": zone}
        config = parse_config(mutate("schedule", schedule))
        for cron_of_mode in (config.schedule.weekly, config.schedule.full_rebuild):
            timetable = CronTriggerTimetable(cron_of_mode, timezone=config.schedule.timezone)
            timetable.validate()
            since = TimeRestriction(
                earliest=pendulum.datetime(2026, 1, 1), latest=None, catchup=True
            )
            run = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=since)
            assert run is not None and timetable.description

    @pytest.mark.parametrize("key", ["monitor", "weekly", "full_rebuild", "retrain"])
    @pytest.mark.parametrize(("cron", "fragment"), REFUSED)
    def test_a_bad_cron_is_a_config_error(self, cron: str, fragment: str, key: str) -> None:
        with pytest.raises(ConfigError, match=rf"schedule\.{key}: .*{re.escape(fragment)}") as e:
            parse_config(mutate(f"schedule.{key}", cron))
        assert len(e.value.problems) == 1, e.value.problems

    @pytest.mark.parametrize("zone", ["Mars/Olympus", "utc+1", "", "Europe", "/etc/localtime"])
    def test_a_bad_time_zone_is_a_config_error(self, zone: str) -> None:
        with pytest.raises(ConfigError, match=r"schedule\.timezone: unknown time zone"):
            parse_config(mutate("schedule.timezone", zone))


def airflow_fires(cron: str, zone: str, count: int, after: datetime) -> list[datetime]:
    """The next ``count`` runs of Airflow's own ``CronTriggerTimetable`` (what the scheduler
    creates) after ``after``, as aware times in ``zone``."""
    import pendulum
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    timetable = CronTriggerTimetable(cron, timezone=zone)
    since = TimeRestriction(earliest=pendulum.instance(after), latest=None, catchup=True)
    last, fires = None, []
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=since)
        assert info is not None
        fires.append(info.run_after.astimezone(ZoneInfo(zone)))
        last = info.data_interval
    return fires


class TestTwoSchedules:
    """``schedule.weekly`` (Monday 06:00) and ``schedule.full_rebuild`` (the first Sunday of each
    month, 20:00), in ``schedule.timezone``: what ``retrain config validate`` shows is what
    Airflow's timetable runs, across a DST change."""

    AFTER = datetime(2026, 1, 1, tzinfo=UTC)

    def test_the_defaults(self) -> None:
        schedule = parse_config(MINIMAL).schedule
        assert (schedule.weekly, schedule.full_rebuild) == ("0 6 * * 1", "0 20 * * 0#1")
        assert schedule.deprecations == []

    @pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "UTC"])
    def test_the_next_12_weekly_fires_are_mondays_at_six_local_as_airflow_runs_them(
        self, zone: str
    ) -> None:
        schedule = parse_config(mutate("schedule.timezone", zone)).schedule
        fires = schedule.next_fires("weekly", after=self.AFTER, count=12)
        assert [f.isoformat() for f in fires] == [
            f.isoformat() for f in airflow_fires(schedule.weekly, zone, 12, self.AFTER)
        ]
        assert all((f.weekday(), f.hour, f.minute) == (0, 6, 0) for f in fires)
        assert all((b - a).days in (6, 7) for a, b in itertools.pairwise(fires))
        assert fires[0].date().isoformat() == "2026-01-05"

    @pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "UTC"])
    def test_the_next_12_full_rebuilds_are_first_sundays_at_twenty_local_as_airflow_runs_them(
        self, zone: str
    ) -> None:
        schedule = parse_config(mutate("schedule.timezone", zone)).schedule
        fires = schedule.next_fires("full_rebuild", after=self.AFTER, count=12)
        assert fires == airflow_fires(schedule.full_rebuild, zone, 12, self.AFTER)
        assert [f.date().isoformat() for f in fires] == [
            "2026-01-04",
            "2026-02-01",
            "2026-03-01",
            "2026-04-05",
            "2026-05-03",
            "2026-06-07",
            "2026-07-05",
            "2026-08-02",
            "2026-09-06",
            "2026-10-04",
            "2026-11-01",
            "2026-12-06",
        ]
        assert all(f.weekday() == 6 and f.day <= 7 for f in fires), "first Sunday of the month"
        assert all((f.hour, f.minute) == (20, 0) for f in fires)

    def test_a_dst_change_keeps_the_local_time_and_moves_the_utc_offset(self) -> None:
        """Berlin: CET (+01:00) until 2026-03-29, CEST (+02:00) until 2026-10-25."""
        schedule = parse_config(mutate("schedule.timezone", "Europe/Berlin")).schedule
        weekly = schedule.next_fires("weekly", after=datetime(2026, 3, 20, tzinfo=UTC), count=3)
        assert [f.isoformat() for f in weekly] == [
            "2026-03-23T06:00:00+01:00",
            "2026-03-30T06:00:00+02:00",
            "2026-04-06T06:00:00+02:00",
        ]
        assert [f.astimezone(UTC).hour for f in weekly] == [5, 4, 4]
        monthly = schedule.next_fires("full_rebuild", after=self.AFTER, count=12)
        offsets = [f.isoformat()[-6:] for f in monthly]
        assert offsets == ["+01:00"] * 3 + ["+02:00"] * 7 + ["+01:00"] * 2
        for cron, fires in (("0 6 * * 1", weekly), ("0 20 * * 0#1", monthly)):
            after = fires[0] - timedelta(minutes=1)
            assert airflow_fires(cron, "Europe/Berlin", len(fires), after) == fires

    def test_day_of_month_with_day_of_week_is_either_not_both_in_airflow_too(self) -> None:
        """Why the default is ``0#1``: ``1-7 * 0`` fires on days 1-7 OR on Sundays."""
        fires = airflow_fires("0 20 1-7 * 0", "UTC", 8, self.AFTER)
        assert any(f.weekday() != 6 for f in fires)
        assert any(f.day > 7 for f in fires)

    def test_retrain_is_a_deprecated_alias_of_weekly(self, tmp_path: Path) -> None:
        config = load_config(write(tmp_path, mutate("schedule.retrain", "0 3 * * 1")))
        assert config.schedule.weekly == "0 3 * * 1"
        assert config.schedule.retrain == "0 3 * * 1", "old readers see the weekly schedule"
        assert config.schedule.full_rebuild == "0 20 * * 0#1"
        [note] = config.schedule.deprecations
        assert "schedule.retrain" in note and "schedule.weekly" in note
        assert "rename the key to weekly" in note

    @pytest.mark.parametrize(
        ("retrain", "weekly"), [("0 3 * * 1", "0 3  * * 1"), ("@weekly", "0 0 * * 0")]
    )
    def test_retrain_and_weekly_alike_load(self, retrain: str, weekly: str) -> None:
        config = parse_config(mutate("schedule", {"retrain": retrain, "weekly": weekly}))
        assert config.schedule.weekly == weekly and config.schedule.deprecations

    def test_retrain_and_weekly_that_differ_is_an_error_naming_both(self, tmp_path: Path) -> None:
        path = write(tmp_path, mutate("schedule", {"retrain": "@weekly", "weekly": "0 6 * * 1"}))
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        [problem] = caught.value.problems
        assert "schedule.retrain ('@weekly')" in problem
        assert "schedule.weekly ('0 6 * * 1')" in problem
        assert str(path) in str(caught.value)

    def test_a_config_written_back_reads_the_same(self, tmp_path: Path) -> None:
        config = parse_config(mutate("schedule.retrain", "0 3 * * 1"))
        data = config.model_dump(mode="json", by_alias=True, exclude={"source_path"})
        assert data["schedule"]["retrain"] == data["schedule"]["weekly"] == "0 3 * * 1"
        again = load_config(write(tmp_path, data))
        assert again.schedule == config.schedule


class TestBounds:
    @pytest.mark.parametrize(
        ("path", "value"),
        [
            pytest.param("model.random_state", 2**32 - 1, id="the largest seed"),
            pytest.param("registry.request_timeout_seconds", 300, id="a five-minute timeout"),
            pytest.param("ab_test.n_bootstrap", 100_000, id="the most resamples"),
            pytest.param("data.training_window_days", 3650, id="a ten-year window"),
            pytest.param("triggers.cooldown_hours", 24 * 366, id="a cooldown of a year"),
        ],
    )
    def test_the_bounds_themselves_are_allowed(self, path: str, value: float) -> None:
        parse_config(mutate(path, value))

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            pytest.param("model.random_state", 2**32, id="a seed of 2**32"),
            pytest.param("registry.request_timeout_seconds", 301, id="a timeout over 300 s"),
            pytest.param("ab_test.n_bootstrap", 100_001, id="too many resamples"),
            pytest.param("schedule.retry_delay_minutes", 1e12, id="a retry delay of ages"),
            pytest.param("drift.max_categories", 10**9, id="a billion categories"),
        ],
    )
    def test_just_beyond_a_bound_is_refused(self, path: str, value: float) -> None:
        with pytest.raises(
            ConfigError, match=rf"{re.escape(path)}: Input should be less than or eq"
        ):
            parse_config(mutate(path, value))


def _range(distribution: str, low: float, high: float) -> dict[str, Any]:
    return {"distribution": distribution, "low": low, "high": high}


BAD_SEARCH_AND_REBUILD = [
    pytest.param(
        mutate("model.search", {"method": "grid", "space": {"C": _range("uniform", 0.1, 1)}}),
        "model.search: method grid takes lists of values only; C given as ranges",
        id="grid with a range",
    ),
    pytest.param(
        mutate(
            "model.search",
            {
                "method": "grid",
                "space": {
                    "tol": [1e-4],
                    "C": _range("uniform", 0.1, 1),
                    "alpha": _range("loguniform", 0.1, 1),
                },
            },
        ),
        "model.search: method grid takes lists of values only; C, alpha given as ranges",
        id="grid with two ranges, both named",
    ),
    pytest.param(
        mutate(
            "model.search",
            {"method": "grid", "space": {"C": [0.1, 1, 10], "tol": [1e-4, 1e-3]}, "budget": 5},
        ),
        "model.search: the grid has 6 combinations, more than budget 5",
        id="grid larger than the budget",
    ),
    pytest.param(
        mutate("model.search", {"method": "grid", "space": {"C": list(range(1, 22))}}),
        "model.search: the grid has 21 combinations, more than budget 20",
        id="grid larger than the default budget",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": _range("loguniform", 0, 1)}}),
        "model.search.space.C: loguniform needs low > 0, got 0",
        id="loguniform from zero",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": _range("loguniform", -1, 1)}}),
        "model.search.space.C: loguniform needs low > 0, got -1",
        id="loguniform from below zero",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": _range("uniform", 1, 1)}}),
        "model.search.space.C: low (1) must be below high (1)",
        id="low equal to high",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": _range("uniform", 2, 1)}}),
        "model.search.space.C: low (2) must be below high (1)",
        id="low above high",
    ),
    pytest.param(
        mutate("model.search", {"space": {"max_depth": _range("randint", 1.5, 4)}}),
        "model.search.space.max_depth: randint needs whole-number low and high",
        id="randint from a fraction",
    ),
    pytest.param(
        mutate("model.search", {"space": {"max_depth": _range("randint", 1, 4.5)}}),
        "model.search.space.max_depth: randint needs whole-number low and high",
        id="randint to a fraction",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": _range("normal", 0, 1)}}),
        "model.search.space.C.distribution: Input should be 'uniform', 'loguniform' or 'randint'",
        id="unknown distribution",
    ),
    pytest.param(
        mutate("model.search", {"method": "bayes", "space": {"C": [1]}}),
        "model.search.method: Input should be 'halving_random', 'random' or 'grid'",
        id="unknown search method",
    ),
    pytest.param(
        mutate("model.search", {"method": "random"}),
        "model.search.space: required key is missing",
        id="search without a space",
    ),
    pytest.param(
        mutate("model.search", {"space": {}}),
        "model.search.space: Dictionary should have at least 1 item",
        id="empty space",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": [1]}, "cv_folds": 1}),
        "model.search.cv_folds: Input should be greater than or equal to 2",
        id="one fold",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": [1]}, "budget": 0}),
        "model.search.budget: Input should be greater than or equal to 1",
        id="no budget",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": [1]}, "scoring": "auc"}),
        "model.search.scoring: Input should be 'accuracy', 'precision', 'recall', 'f1' or",
        id="unknown scoring metric",
    ),
    pytest.param(
        mutate("model.search", {"space": {"C": [1]}, "patience": 3}),
        "model.search.patience: unknown key",
        id="unknown search key",
    ),
    pytest.param(
        mutate("full_rebuild.max_rows", 99),
        "full_rebuild.max_rows: Input should be greater than or equal to 100",
        id="max_rows below 100",
    ),
    pytest.param(
        mutate("full_rebuild.max_rows", 10**10 + 1),
        "full_rebuild.max_rows: Input should be less than or equal to 10000000000",
        id="max_rows above ten billion",
    ),
    pytest.param(
        mutate("full_rebuild.max_rows", 1000.5),
        "full_rebuild.max_rows: Input should be a valid integer",
        id="max_rows a fraction",
    ),
    pytest.param(
        mutate("full_rebuild.checks", {"slice_features": ["contract", "region"]}),
        "full_rebuild.checks.slice_features names unknown features: region",
        id="slicing by an unknown feature",
    ),
    pytest.param(
        mutate("full_rebuild.checks", {"slice_features": ["churned"]}),
        "full_rebuild.checks.slice_features names unknown features: churned",
        id="slicing by the target",
    ),
    pytest.param(
        mutate("full_rebuild.checks", {"slice_features": ["ts"]}),
        "full_rebuild.checks.slice_features names unknown features: ts",
        id="slicing by the event time",
    ),
    pytest.param(
        mutate("full_rebuild.checks", {"cv_folds": 1}),
        "full_rebuild.checks.cv_folds: Input should be greater than or equal to 2",
        id="rebuild checks with one fold",
    ),
    pytest.param(
        mutate("full_rebuild.sample", 100),
        "full_rebuild.sample: unknown key",
        id="unknown full_rebuild key",
    ),
]


class TestSearchAndRebuildSettings:
    def test_the_defaults(self) -> None:
        config = parse_config(MINIMAL)
        assert config.model.search is None, "no search unless asked for"
        assert config.full_rebuild.max_rows is None, "every row unless capped"
        checks = config.full_rebuild.checks
        assert checks.enabled is True
        assert checks.slice_features is None
        assert (checks.cv_folds, checks.confidence) == (5, 0.95)

    def test_search_defaults(self) -> None:
        config = parse_config(mutate("model.search", {"space": {"C": [0.1, 1.0]}}))
        search = config.model.search
        assert search is not None
        assert (search.method, search.budget, search.cv_folds) == ("halving_random", 20, 3)
        assert (search.scoring, search.n_jobs) == ("accuracy", None)

    def test_a_valid_search_with_lists_and_ranges(self) -> None:
        space = {
            "learning_rate": _range("loguniform", 0.01, 0.3),
            "max_depth": _range("randint", 2, 8),
            "l2_regularization": _range("uniform", 0, 1),
            "max_leaf_nodes": [15, 31, None],
        }
        config = parse_config(mutate("model.search", {"method": "random", "space": space}))
        search = config.model.search
        assert search is not None
        rate = search.space["learning_rate"]
        assert isinstance(rate, ParamRange)
        assert (rate.distribution, rate.low, rate.high) == ("loguniform", 0.01, 0.3)
        assert search.space["max_leaf_nodes"] == [15, 31, None]

    def test_a_grid_as_large_as_the_budget_is_allowed(self) -> None:
        search = {"method": "grid", "space": {"C": [0.1, 1, 10], "tol": [1e-4, 1e-3]}, "budget": 6}
        config = parse_config(mutate("model.search", search))
        assert config.model.search is not None and config.model.search.budget == 6

    def test_the_smallest_max_rows_and_known_slice_features_are_allowed(self) -> None:
        rebuild = {"max_rows": 100, "checks": {"slice_features": ["contract", "tenure"]}}
        config = parse_config(mutate("full_rebuild", rebuild))
        assert config.full_rebuild.max_rows == 100
        assert config.full_rebuild.checks.slice_features == ["contract", "tenure"]

    def test_a_search_written_back_reads_the_same(self, tmp_path: Path) -> None:
        search = {"method": "random", "space": {"C": _range("loguniform", 0.01, 10)}}
        config = parse_config(mutate("model.search", search))
        data = config.model_dump(mode="json", by_alias=True, exclude={"source_path"})
        again = load_config(write(tmp_path, data))
        assert again.model.search == config.model.search

    @pytest.mark.parametrize(("data", "fragment"), BAD_SEARCH_AND_REBUILD)
    def test_error_names_file_and_key(self, tmp_path: Path, data: Any, fragment: str) -> None:
        path = write(tmp_path, data)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
        assert str(path) in message
        assert fragment in message, message
