"""``decide``: a scheduled full rebuild runs whatever the rules say; its vetoes still hold."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from retrain.config import RetrainConfig
from retrain.constants import Trigger
from retrain.pipeline.decision import decide
from retrain.triggers import Signals, TriggerPolicy

NOW = datetime(2026, 11, 1, 20, tzinfo=UTC)
QUIET = Signals(accuracy=0.95, days_since_training=1, new_samples=0, drift_count=0)


@pytest.fixture
def policy(make_config: Callable[..., RetrainConfig]) -> TriggerPolicy:
    return TriggerPolicy(make_config(registry={"tracking_uri": "http://127.0.0.1:1"}))


class TestScheduledRebuild:
    def test_it_proceeds_with_no_rule_fired_and_no_new_rows(self, policy: TriggerPolicy) -> None:
        decided = decide(policy, QUIET, trigger=Trigger.SCHEDULED, now=NOW, rebuild=True)
        assert decided.proceed
        assert decided.reasons == ("full rebuild: the monthly schedule, whatever the rules say",)

    def test_the_weekly_run_on_the_same_signals_skips(self, policy: TriggerPolicy) -> None:
        decided = decide(policy, QUIET, trigger=Trigger.SCHEDULED, now=NOW)
        assert not decided.proceed
        assert decided.reasons[0].startswith("no rule fired")

    def test_rules_that_fired_are_kept_after_the_schedule(self, policy: TriggerPolicy) -> None:
        low = Signals(accuracy=0.5, days_since_training=1, new_samples=500, drift_count=0)
        decided = decide(policy, low, trigger=Trigger.SCHEDULED, now=NOW, rebuild=True)
        assert decided.proceed and len(decided.reasons) > 1
        assert any("accuracy" in r for r in decided.reasons[1:])

    def test_an_empty_history_still_stops_it(self, policy: TriggerPolicy) -> None:
        decided = decide(
            policy, QUIET, trigger=Trigger.SCHEDULED, now=NOW, rebuild=True, window_rows=lambda: 0
        )
        assert not decided.proceed
        assert "stale data" in decided.reasons[0] and "all history" in decided.reasons[0]
