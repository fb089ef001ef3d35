from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.config import parse_config
from retrain.errors import DataError
from retrain.triggers import Signals, TriggerPolicy, read_signals_file
from tests.config.helpers import MINIMAL

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HEALTHY: dict[str, Any] = {
    "accuracy": 0.92,
    "days_since_training": 2,
    "new_samples": 500,
    "drift_count": 0,
    "drift_share": 0.0,
}


def policy(**sections: Any) -> TriggerPolicy:
    data = MINIMAL
    for key, value in sections.items():
        data = {**data, key: value}
    return TriggerPolicy(parse_config(data))


def signals(**overrides: Any) -> Signals:
    return Signals.from_mapping({**HEALTHY, **overrides})


class TestSeedRules:
    @pytest.mark.parametrize(
        ("overrides", "trigger", "reason"),
        [
            pytest.param(
                {"accuracy": 0.81},
                "accuracy_drops_below_0.85",
                "accuracy_drops_below_0.85: accuracy 0.81 < 0.85",
                id="performance rule",
            ),
            pytest.param(
                {"days_since_training": 8},
                "weekly_retraining",
                "weekly_retraining: days_since_training 8 > 7",
                id="scheduled rule",
            ),
            pytest.param(
                {"new_samples": 10001},
                "new_data_volume",
                "new_data_volume: new_samples 10001 > 10000",
                id="data volume rule",
            ),
            pytest.param(
                {"drift_count": 6},
                "high_data_drift",
                "high_data_drift: drift_count 6 > 5",
                id="drift rule",
            ),
        ],
    )
    def test_each_rule_fires_alone(
        self, overrides: dict[str, Any], trigger: str, reason: str
    ) -> None:
        decision = policy().evaluate(signals(**overrides), now=NOW)
        assert decision.triggered
        assert decision.trigger == trigger
        assert [f.reason for f in decision.fired] == [reason]

    def test_healthy_signals_do_not_trigger(self) -> None:
        decision = policy().evaluate(signals(), now=NOW)
        assert not decision.triggered
        assert decision.fired == []
        assert decision.reasons == ["no rule fired"]

    def test_boundaries_are_strict_as_in_the_seed(self) -> None:
        decision = policy().evaluate(
            signals(accuracy=0.85, days_since_training=7, new_samples=10000, drift_count=5),
            now=NOW,
        )
        assert not decision.triggered

    def test_strongest_action_wins(self) -> None:
        decision = policy().evaluate(signals(accuracy=0.8, drift_count=9), now=NOW)
        assert decision.action == "investigate_and_retrain"
        assert decision.trigger == "high_data_drift"
        assert len(decision.fired) == 2

    def test_notify_only_rule_fires_without_triggering(self) -> None:
        rules = {
            "watch": {
                "trigger": "watch_drift",
                "condition": "drift_share > 0.05",
                "action": "notify",
            }
        }
        decision = policy(retraining_rules=rules).evaluate(signals(drift_share=0.2), now=NOW)
        assert [f.rule for f in decision.fired] == ["watch"]
        assert not decision.triggered

    def test_compound_condition_reports_observed_values(self) -> None:
        rules = {
            "combo": {
                "trigger": "drift_and_volume",
                "condition": "drift_share >= 0.2 and new_samples > 1000",
            }
        }
        decision = policy(retraining_rules=rules).evaluate(
            signals(drift_share=0.25, new_samples=2000), now=NOW
        )
        assert decision.fired[0].observed == {"drift_share": 0.25, "new_samples": 2000}
        assert "drift_share 0.25 >= 0.2 and new_samples 2000 > 1000" in decision.reasons[0]


class TestMissingSignals:
    def test_missing_signal_is_unknown_not_fine(self) -> None:
        decision = policy().evaluate(Signals(days_since_training=2, new_samples=10), now=NOW)
        assert not decision.triggered
        unknown = {u.rule: u.missing for u in decision.unknown}
        assert unknown == {"performance_based": ["accuracy"], "drift_based": ["drift_count"]}
        assert any("performance_based: unknown (accuracy missing)" in n for n in decision.notes)

    def test_other_rules_still_fire_when_some_signals_are_missing(self) -> None:
        decision = policy().evaluate(Signals(days_since_training=9), now=NOW)
        assert decision.triggered and decision.trigger == "weekly_retraining"


class TestBootstrap:
    @pytest.mark.parametrize(
        "data",
        [
            pytest.param({}, id="days since training absent"),
            pytest.param({"days_since_training": None}, id="days since training null"),
        ],
    )
    def test_first_run_triggers_bootstrap(self, data: dict[str, Any]) -> None:
        decision = policy().evaluate(Signals.from_mapping(data), now=NOW)
        assert decision.triggered and decision.bootstrap
        assert decision.trigger == "bootstrap"
        assert decision.reasons[0] == "bootstrap: no trained model yet"


class TestCooldown:
    def test_recent_run_holds_back_a_trigger(self) -> None:
        last = NOW - timedelta(hours=3)
        decision = policy().evaluate(signals(accuracy=0.7), now=NOW, last_triggered_at=last)
        assert not decision.triggered
        assert decision.cooldown_active
        assert decision.next_allowed_at == (last + timedelta(hours=12)).isoformat()
        assert any(n.startswith("cooldown:") for n in decision.notes)
        assert decision.fired, "the rule still shows as fired"

    def test_trigger_allowed_after_cooldown(self) -> None:
        last = NOW - timedelta(hours=13)
        decision = policy().evaluate(signals(accuracy=0.7), now=NOW, last_triggered_at=last)
        assert decision.triggered and not decision.cooldown_active

    def test_forced_run_bypasses_cooldown_and_records_it(self) -> None:
        last = NOW - timedelta(hours=1)
        decision = policy().evaluate(
            signals(),
            now=NOW,
            last_triggered_at=last,
            force=True,
            force_reason="hotfix for label bug",
        )
        assert decision.triggered and decision.forced
        assert decision.cooldown_bypassed
        assert decision.trigger == "manual"
        assert decision.reasons[0] == "forced: hotfix for label bug"

    def test_forced_run_needs_a_reason(self) -> None:
        with pytest.raises(ValueError, match="forced run needs a reason"):
            policy().evaluate(signals(), now=NOW, force=True, force_reason="  ")

    def test_zero_cooldown_never_holds_back(self) -> None:
        decision = policy(triggers={"cooldown_hours": 0}).evaluate(
            signals(accuracy=0.7), now=NOW, last_triggered_at=NOW
        )
        assert decision.triggered


class TestCadenceInDecision:
    def test_critical_drop_makes_cadence_immediate_and_triggers(self) -> None:
        rules = {"volume": {"trigger": "v", "condition": "new_samples > 1000000"}}
        decision = policy(retraining_rules=rules).evaluate(signals(accuracy=0.6), now=NOW)
        assert decision.cadence.level == "immediate"
        assert decision.triggered and decision.trigger == "cadence_immediate"

    def test_cadence_can_be_disabled(self) -> None:
        rules = {"volume": {"trigger": "v", "condition": "new_samples > 1000000"}}
        decision = policy(retraining_rules=rules, cadence={"enabled": False}).evaluate(
            signals(accuracy=0.6), now=NOW
        )
        assert not decision.triggered
        assert decision.cadence.level == "immediate"


class TestSignals:
    @pytest.mark.parametrize(
        ("data", "fragment"),
        [
            pytest.param({"acc": 0.9}, "unknown signal 'acc'", id="unknown signal name"),
            pytest.param({"accuracy": "high"}, "accuracy: expected a number", id="text value"),
            pytest.param({"accuracy": True}, "accuracy: expected a number", id="boolean value"),
            pytest.param({"accuracy": 1.2}, "accuracy: 1.2 is out of range", id="above range"),
            pytest.param({"new_samples": -1}, "new_samples: -1 is out of range", id="negative"),
        ],
    )
    def test_bad_values_are_named(self, data: dict[str, Any], fragment: str) -> None:
        with pytest.raises(DataError, match=fragment):
            Signals.from_mapping(data)

    def test_signals_file_with_times(self, tmp_path: Path) -> None:
        path = tmp_path / "s.json"
        path.write_text(
            json.dumps(
                {
                    "accuracy": 0.8,
                    "now": "2026-11-26T10:00:00",
                    "last_triggered_at": "2026-11-26T09:00:00+00:00",
                }
            )
        )
        sig, now, last = read_signals_file(path)
        assert sig.accuracy == 0.8
        assert now == datetime(2026, 11, 26, 10, tzinfo=UTC)
        assert last == datetime(2026, 11, 26, 9, tzinfo=UTC)

    def test_signals_file_errors_name_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "s.json"
        path.write_text("{not json")
        with pytest.raises(DataError, match=r"s\.json: invalid JSON at line 1"):
            read_signals_file(path)


class TestDecisionSerialisation:
    def test_decision_round_trips_through_json(self) -> None:
        decision = policy().evaluate(signals(accuracy=0.8), now=NOW)
        data = json.loads(decision.to_json())
        assert data["triggered"] is True
        assert data["fired"][0]["observed"] == {"accuracy": 0.8}
        assert data["cadence"]["level"] == "weekly"
