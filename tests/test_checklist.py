from __future__ import annotations

import pytest

from retrain.checklist import ChecklistError, Evidence, evaluate_checklist, require

SEED_TITLES = [
    "New data collected and validated",
    "Preprocessing applied consistently",
    "Model trained on full dataset",
    "Performance metrics calculated",
    "Compared against baseline",
    "Performance acceptable (> threshold)",
    "New model passes tests",
    "Model versioned and registered",
    "Deployment approved",
    "Canary deployment in place",
    "Monitoring alerts configured",
]


def complete() -> Evidence:
    return Evidence(
        validation_ok=True,
        rows_extracted=1000,
        rows_trained=800,
        rows_holdout=200,
        fingerprint_trained="abc",
        fingerprint_registered="abc",
        metrics={"accuracy": 0.9},
        baseline_compared=True,
        gate_status="passed",
        ab_passed=True,
        load_check_ok=True,
        version="3",
        approval="auto (deployment.require_approval=false)",
        canary_version="3",
        profile_stored=True,
        monitoring_rules=["drift_based"],
    )


class TestEvaluateChecklist:
    def test_items_follow_the_seed(self) -> None:
        assert [i.title for i in evaluate_checklist(Evidence())] == SEED_TITLES

    def test_complete_evidence_passes_everything(self) -> None:
        items = evaluate_checklist(complete())
        assert all(i.passed for i in items), [i for i in items if not i.passed]
        require(items, "production")

    @pytest.mark.parametrize(
        ("change", "key", "stage"),
        [
            pytest.param(
                {"validation_ok": False},
                "data_validated",
                "staging",
                id="unvalidated data blocks staging",
            ),
            pytest.param(
                {"fingerprint_registered": "zzz"},
                "preprocessing_consistent",
                "staging",
                id="different preprocessing blocks staging",
            ),
            pytest.param(
                {"rows_trained": 500},
                "trained_on_full_window",
                "staging",
                id="rows lost between extract and train block staging",
            ),
            pytest.param(
                {"metrics": {"accuracy": float("nan")}},
                "metrics_computed",
                "staging",
                id="NaN metric blocks staging",
            ),
            pytest.param(
                {"baseline_compared": False},
                "compared_with_baseline",
                "canary",
                id="no baseline comparison blocks canary",
            ),
            pytest.param(
                {"gate_status": "failed"},
                "above_threshold",
                "canary",
                id="failed gate blocks canary",
            ),
            pytest.param(
                {"ab_passed": False}, "above_threshold", "canary", id="failed A/B blocks canary"
            ),
            pytest.param(
                {"load_check_ok": False},
                "passes_tests",
                "canary",
                id="failed load check blocks canary",
            ),
            pytest.param(
                {"version": None}, "registered", "canary", id="unregistered model blocks canary"
            ),
            pytest.param(
                {"approval": None},
                "deployment_approved",
                "production",
                id="missing approval blocks production",
            ),
            pytest.param(
                {"canary_version": None},
                "canary_in_place",
                "production",
                id="missing canary blocks production",
            ),
            pytest.param(
                {"monitoring_rules": []},
                "monitoring_configured",
                "production",
                id="no monitoring rules block production",
            ),
        ],
    )
    def test_missing_evidence_blocks_its_stage(
        self, change: dict[str, object], key: str, stage: str
    ) -> None:
        evidence = complete()
        for name, value in change.items():
            setattr(evidence, name, value)
        items = evaluate_checklist(evidence)
        assert [i.key for i in items if not i.passed] == [key]
        with pytest.raises(ChecklistError, match=f"blocks promotion to {stage}"):
            require(items, stage)  # type: ignore[arg-type]
        earlier = {"staging": None, "canary": "staging", "production": "canary"}[stage]
        if earlier:
            require(items, earlier)  # type: ignore[arg-type]

    def test_first_model_needs_no_baseline(self) -> None:
        evidence = complete()
        evidence.baseline_compared = None
        evidence.first_model = True
        item = next(i for i in evaluate_checklist(evidence) if i.key == "compared_with_baseline")
        assert item.passed and "first model" in item.evidence

    def test_skipped_canary_is_allowed_by_config(self) -> None:
        evidence = complete()
        evidence.canary_version = None
        evidence.skip_canary = True
        require(evaluate_checklist(evidence), "production")


class TestRebuildItems:
    """A full rebuild's comprehensive tests are checklist items, guarding the canary."""

    TESTS = [("slices", False, "worse: segment=x"), ("robustness", True, "ok")]

    def test_a_failed_test_blocks_the_canary_and_a_weekly_run_has_none(self) -> None:
        from retrain.checklist import ChecklistError, Evidence, evaluate_checklist, require

        items = {i.key: i for i in evaluate_checklist(Evidence(rebuild_tests=self.TESTS))}
        assert not items["rebuild_slices"].passed and items["rebuild_robustness"].passed
        assert items["rebuild_slices"].required_for == "canary"
        with pytest.raises(ChecklistError, match=r"rebuild_slices|no slice worse"):
            require(list(items.values()), "canary")
        weekly = evaluate_checklist(Evidence())
        assert not any(i.key.startswith("rebuild_") for i in weekly)

    def test_a_forced_run_passes_it_and_says_it_failed(self) -> None:
        from retrain.checklist import Evidence, evaluate_checklist

        evidence = Evidence(rebuild_tests=self.TESTS, gate_status="forced")
        item = next(i for i in evaluate_checklist(evidence) if i.key == "rebuild_slices")
        assert item.passed and item.evidence.startswith("FAILED, forced past by the operator")
