"""The run context: options validated once, the baseline pinned by ``check`` and kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from retrain import pipeline
from retrain.config import RetrainConfig
from retrain.errors import DataError
from retrain.pipeline import RunOptions, Services
from retrain.registry import ModelRegistry
from tests.helpers import LOGREG, churn_sections, run_record
from tools.synthetic import StreamSpec, write_stream

SPEC = StreamSpec(weeks=6, rows_per_week=1500, drift_week=None)
WEEK = timedelta(weeks=1)


class TestRunOptions:
    @pytest.mark.parametrize(
        ("options", "fragment"),
        [
            pytest.param(
                {"as_of": "next tuesday"}, r"as_of \(--as-of\): not an ISO-8601 time", id="as_of"
            ),
            pytest.param(
                {"as_of": "9999-12-31T23:59:59-05:00"},
                "is out of range",
                id="an as_of that overflows in UTC",
            ),
            pytest.param(
                {"as_of": "1969-12-31T23:59:59Z"},
                "earlier than 1970-01-01",
                id="an as_of before the epoch",
            ),
            pytest.param(
                {"as_of": datetime.now(UTC) + timedelta(days=400)},
                "later than a year from now",
                id="an as_of more than a year ahead",
            ),
            pytest.param(
                {"window_days": -5}, r"window_days \(--window-days\): .* got -5", id="negative"
            ),
            pytest.param(
                {"window_days": 3651}, "expected a whole number of days 1-3650", id="too long"
            ),
            pytest.param({"window_days": 2.5}, "got 2.5", id="a fraction of a day"),
            pytest.param({"force": True}, "forced run needs a reason", id="force without reason"),
            pytest.param({"force": True, "force_reason": " "}, "needs a reason", id="blank"),
            pytest.param(
                {"window_days": 0},
                "got 0; 0 is not 'all history': leave it out to use data.training_window_days",
                id="zero-day window",
            ),
            pytest.param({"target_stage": "prod"}, "target_stage", id="unknown stage"),
            pytest.param({"trigger": "cron"}, "trigger: expected one of", id="unknown trigger"),
            pytest.param(
                {"mode": "monthly"},
                r"mode \(--mode\): expected one of weekly, full_rebuild, got 'monthly'",
                id="unknown mode",
            ),
            pytest.param(
                {"mode": "full_rebuild", "window_days": 7},
                "a full rebuild trains on all history up to as_of; leave the window out",
                id="a full rebuild with a training window",
            ),
        ],
    )
    def test_bad_options_are_refused_naming_the_option(
        self, options: dict[str, object], fragment: str
    ) -> None:
        with pytest.raises(DataError, match=fragment):
            RunOptions(**options)  # type: ignore[arg-type]

    def test_an_as_of_within_a_year_ahead_is_allowed(self) -> None:
        ahead = datetime.now(UTC) + timedelta(days=300)
        assert RunOptions(as_of=ahead).as_of == ahead
        assert RunOptions(as_of="1970-01-01T00:00:00Z").as_of is not None

    def test_values_are_normalised(self) -> None:
        options = RunOptions(
            trigger="drift",  # type: ignore[arg-type]
            as_of="2026-01-05T10:00:00Z",  # type: ignore[arg-type]
            force=True,
            force_reason="  why  ",
        )
        assert options.trigger == "drift" and options.trigger.from_event
        assert options.as_of is not None and options.as_of.utcoffset() == timedelta(0)
        assert options.force_reason == "why"


class TestMode:
    def test_weekly_unless_asked(self) -> None:
        assert RunOptions().mode == "weekly"
        assert RunOptions(mode="full_rebuild").mode == "full_rebuild"

    def test_the_context_carries_the_mode_through_the_xcom_codec(self, tmp_path: Path) -> None:
        from retrain.constants import Trigger
        from retrain.pipeline.codec import decode, encode
        from retrain.pipeline.context import RunContext, fallback_context

        ctx = fallback_context(tmp_path, run_key="k", trigger=Trigger.MANUAL)
        assert ctx.mode == "weekly"
        ctx = replace(ctx, mode="full_rebuild")
        assert "mode full_rebuild" in ctx.summary()
        back = decode(RunContext, encode(ctx))
        assert back == ctx and back.mode == "full_rebuild"
        with pytest.raises(DataError, match="not a valid RunContext"):
            decode(RunContext, {**encode(ctx), "mode": "nightly"})


class TestPinnedBaseline:
    def test_production_moved_mid_run_does_not_change_the_runs_baseline(
        self, make_config: Callable[..., RetrainConfig], tmp_path: Path
    ) -> None:
        write_stream(tmp_path / "events", SPEC)
        config = make_config(
            **churn_sections(
                tmp_path / "events",
                estimator=LOGREG,
                params={"max_iter": 300},
                storage={"work_dir": str(tmp_path / "work")},
            )
        )
        assert run_record(config, as_of=SPEC.start + 4 * WEEK)["model_version"] == "1"
        registry = ModelRegistry(config)
        v1 = registry.current()["production"]

        services = Services.build(config)
        ctx = pipeline.start(services, RunOptions(as_of=SPEC.start + 5 * WEEK, run_key="mine"))
        with pytest.raises(DataError, match="no baseline pinned yet"):
            pipeline.extract_step(services, ctx)
        checked = pipeline.check(services, ctx)
        ctx = checked.context
        assert ctx.baseline is not None and ctx.baseline.version == 1
        extracted = pipeline.extract_step(services, ctx)
        trained = pipeline.train_step(services, ctx, extracted)

        # meanwhile someone else's run deploys v2
        other = run_record(
            config, as_of=SPEC.start + 5 * WEEK, force=True, force_reason="someone else"
        )
        assert other["model_version"] == "2" and registry.current()["production"].version == 2

        evaluated = pipeline.evaluate_step(services, ctx, trained, extracted)
        results = pipeline.Results()
        results.put("check", checked)
        results.put("evaluate", evaluated)
        record, _ = pipeline.finish(services, ctx, results)

        assert evaluated.production_version == 1
        assert extracted.watermark == v1.record.watermark_time.isoformat()  # type: ignore[union-attr]
        assert record.baseline_version == 1
        assert record.baseline_metrics == dict(evaluated.production.metrics)  # type: ignore[union-attr]
