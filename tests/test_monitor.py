"""What the monitor says it decided, and how a data-driven run labels its reasons."""

from __future__ import annotations

from typing import Any

import pytest

from retrain.cadence import CadenceDecision
from retrain.monitor import MonitorCheck
from retrain.pipeline.decision import event_reason


def check(**fields: Any) -> MonitorCheck:
    base: dict[str, Any] = {
        "as_of": "2026-03-01T00:00:00+00:00",
        "signals": {},
        "production_version": 1,
        "triggered": False,
        "reasons": ("no rule fired",),
        "notes": (),
        "cadence": CadenceDecision(level="weekly", interval_days=7.0),
        "events": {},
        "drift": {},
        "mlflow_run_id": "r",
    }
    return MonitorCheck(**{**base, **fields})


class TestMonitorSummary:
    def test_events_name_their_kinds_and_reasons(self) -> None:
        summary = check(
            triggered=True,
            reasons=("high_data_drift: drift_count 6 > 5",),
            events={"drift": ["high_data_drift: drift_count 6 > 5"]},
        ).summary()
        assert summary == "events drift: high_data_drift: drift_count 6 > 5"

    def test_a_cooldown_says_so_instead_of_listing_rules_as_if_quiet(self) -> None:
        summary = check(
            reasons=("high_data_drift: drift_count 6 > 5",),
            cooldown_until="2026-03-01T12:00:00+00:00",
        ).summary()
        assert summary.startswith("no event: cooldown until 2026-03-01T12:00:00+00:00")
        assert "rules that fired: high_data_drift" in summary

    def test_a_time_rule_that_fired_is_not_called_an_event(self) -> None:
        summary = check(
            triggered=True, reasons=("weekly_retraining: days_since_training 8 > 7",)
        ).summary()
        assert summary.startswith("no event: the rules that fired watch no data-driven signal")
        assert "TRIGGERED" not in summary

    def test_nothing_fired(self) -> None:
        assert check().summary() == "no event: no rule fired"


class TestEventReasons:
    @pytest.mark.parametrize(
        ("kind", "reason", "expected"),
        [
            ("drift", "high_data_drift: x", "drift event: high_data_drift: x"),
            ("drift", "performance event: accuracy < 0.85", "performance event: accuracy < 0.85"),
        ],
    )
    def test_each_reason_keeps_its_own_kind(self, kind: str, reason: str, expected: str) -> None:
        assert event_reason(kind, reason) == expected

    def test_coalesced_events_label_each_reason_by_its_event(self) -> None:
        from types import SimpleNamespace

        from retrain_airflow.runtime import asset_trigger

        def event(kind: str, reason: str) -> Any:
            asset = SimpleNamespace(uri=f"retrain://m/{kind}")
            return SimpleNamespace(
                extra={"trigger": kind, "reasons": [reason]}, asset=asset, source_dag_id="mon"
            )

        context = {
            "triggering_asset_events": {
                "a": [event("drift", "high_data_drift: drift_count 6 > 5")],
                "b": [event("performance", "accuracy_drops_below_0.85: accuracy 0.8 < 0.85")],
            }
        }
        trigger, reasons = asset_trigger(context) or (None, [])
        assert str(trigger) == "drift"
        assert reasons == [
            "drift event: high_data_drift: drift_count 6 > 5",
            "performance event: accuracy_drops_below_0.85: accuracy 0.8 < 0.85",
        ]
