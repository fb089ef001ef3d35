"""The online canary judge: its confidence sequence, its decisions, and its error rates by
simulation (``benchmarks/canary_judge.py``, seeded)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.special import lambertw

from benchmarks.canary_judge import SimulationResult, fixed_horizon_labels, simulate
from retrain.canary import (
    ArmStats,
    CanaryEvaluation,
    Decision,
    confidence_bounds,
    confidence_sequence,
    judge,
    mixture_half_width,
    mixture_t2,
    optimal_mixture_ratio,
)
from retrain.config.schema import CanarySettings, RetrainConfig
from retrain.errors import DataError

SETTINGS = CanarySettings()
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RUNS = 500


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def evaluate(
    production: ArmStats,
    canary: ArmStats,
    *,
    minutes: float = 120,
    settings: CanarySettings = SETTINGS,
) -> CanaryEvaluation:
    return judge(production, canary, settings, started_at=START, now=at(minutes))


def arm(n: int, accuracy: float, **kwargs: object) -> ArmStats:
    return ArmStats(n, round(n * accuracy), **kwargs)  # type: ignore[arg-type]


# --- by simulation -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aa() -> SimulationResult:
    return simulate(0.0, runs=RUNS, seed=20260301)


@pytest.fixture(scope="module")
def worse() -> SimulationResult:
    return simulate(-0.05, runs=RUNS, seed=20260302)


class TestSimulation:
    """500 seeded runs per scenario: 50 canary and 450 production labels every 5 minutes (a 10%
    canary), base accuracy 0.85, ``CanarySettings()`` defaults (alpha 0.05, margin 0.01, 72 h)."""

    def test_aa_wrong_decisions_stay_within_alpha(self, aa: SimulationResult) -> None:
        """A/A (the canary as accurate as production): D = 0 is non-inferior (0 > -margin), so
        PROMOTE is right and every ROLLBACK is wrong.

        A rollback by the interval (upper bound below 0) means the interval excluded the true
        D: the test's own error, which alpha bounds. A rollback at max duration (still
        undecided) is the budget running out, not the test erring; it is counted as wrong too,
        so the bar is the stricter one: all rollbacks <= alpha. The test's time-uniform claim
        is checked directly as well: the share of runs whose interval excluded D = 0 at any
        judged look of the whole 72 h (not only up to the decision) is <= alpha.
        """
        assert aa.runs >= 500
        assert aa.rollback_by_interval <= SETTINGS.alpha
        assert aa.rollback <= SETTINGS.alpha
        assert aa.promote == pytest.approx(1 - aa.rollback)
        assert aa.miscoverage <= SETTINGS.alpha
        assert aa.judge_disagreements == 0

    def test_a_canary_five_points_worse_is_rolled_back(self, worse: SimulationResult) -> None:
        """Canary accuracy 0.80 against 0.85: ROLLBACK is right (by the interval or at max
        duration), PROMOTE is wrong (-0.05 is not within the margin of 0.01). Rolled back in at
        least 99% of runs."""
        assert worse.runs >= 500
        assert worse.rollback >= 0.99
        assert worse.promote <= SETTINGS.alpha
        assert worse.miscoverage <= SETTINGS.alpha
        assert worse.judge_disagreements == 0

    def test_labels_to_a_decision_next_to_the_fixed_horizon_z_test(
        self, aa: SimulationResult, worse: SimulationResult
    ) -> None:
        """The median labels to a decision are reported with the fixed-horizon z-test's sample
        size for the same effect (A/A: the non-inferiority test at the margin); the judge,
        looking at every batch, needs no more canary labels than a fixed test of 99% power."""
        assert fixed_horizon_labels(-0.05, alpha=0.05, power=0.8) == (903, 502)
        for result, effect in ((aa, -SETTINGS.margin), (worse, -0.05)):
            _, canary_labels = fixed_horizon_labels(effect, alpha=SETTINGS.alpha, power=0.99)
            assert 0 < result.median_canary_labels <= canary_labels
            assert result.median_production_labels == 9 * result.median_canary_labels

    def test_peeking_at_a_fixed_interval_would_inflate_the_error(
        self, aa: SimulationResult
    ) -> None:
        assert aa.peeking_rollback > 2 * SETTINGS.alpha

    def test_seeded(self) -> None:
        assert simulate(-0.02, runs=20, seed=3) == simulate(-0.02, runs=20, seed=3)


# --- the confidence sequence -------------------------------------------------------------------


class TestConfidenceSequence:
    def test_half_width_matches_a_hand_computation(self) -> None:
        production, canary = ArmStats(1000, 850), ArmStats(100, 80)
        pc, pp = 80.5 / 101, 850.5 / 1001  # (k + 0.5) / (n + 1) inside V
        v = pc * (1 - pc) / 100 + pp * (1 - pp) / 1000
        c = -lambertw(-(0.05**2) / math.e, -1).real - 1
        t2 = v * c * 100 / 5000  # tightest at planned_labels=5000 in the smaller arm
        h = math.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / 0.05) + math.log((v + t2) / v)))
        ci = confidence_sequence(production, canary, alpha=0.05, planned_labels=5000)
        assert ci.variance == pytest.approx(v, rel=1e-12)
        assert ci.t2 == pytest.approx(t2, rel=1e-12)
        assert ci.half_width == pytest.approx(h, rel=1e-12)
        assert ci.half_width == pytest.approx(0.2757076451881461, rel=1e-9)
        assert ci.d_hat == pytest.approx(-0.05)
        assert (ci.lower, ci.upper) == pytest.approx((-0.05 - h, -0.05 + h))

    def test_the_issue_formula_at_a_round_point(self) -> None:
        # V = t2 = 1e-4: h = sqrt(1e-4 * 2 * (2 ln 20 + ln 2))
        assert float(mixture_half_width(1e-4, 1e-4, alpha=0.05)) == pytest.approx(
            0.03656394871363849, rel=1e-12
        )

    def test_is_waudby_smith_asymptotic_cs(self) -> None:
        """sigma * sqrt(2 (n rho2 + 1) / (n^2 rho2) * ln(sqrt(n rho2 + 1) / alpha)), the
        asymptotic CS of Waudby-Smith et al., with rho2 = c / planned_labels."""
        sigma2, planned, alpha = 0.2, 3000, 0.05
        rho2 = optimal_mixture_ratio(alpha) / planned
        n = np.array([10, 300, 3000, 50_000])
        theirs = np.sqrt(sigma2 * 2 * (n * rho2 + 1) / (n**2 * rho2)
                         * np.log(np.sqrt(n * rho2 + 1) / alpha))  # fmt: skip
        v = sigma2 / n
        ours = mixture_half_width(
            v, mixture_t2(v, n, planned_labels=planned, alpha=alpha), alpha=alpha
        )
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)

    @pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.2])
    def test_mixture_ratio_is_the_lambert_w_optimum(self, alpha: float) -> None:
        exact = -lambertw(-(alpha**2) / math.e, -1).real - 1
        assert optimal_mixture_ratio(alpha) == pytest.approx(exact, rel=1e-10)

    def test_tightest_relative_to_the_standard_error_at_planned_labels(self) -> None:
        n = np.arange(100, 20_001)
        v = 0.25 / n
        h = mixture_half_width(v, mixture_t2(v, n, planned_labels=4000, alpha=0.05), alpha=0.05)
        assert n[np.argmin(h / np.sqrt(v))] == 4000

    def test_the_interval_shrinks_as_labels_grow(self) -> None:
        widths = [
            confidence_sequence(
                arm(9 * n, 0.85), arm(n, 0.84), alpha=0.05, planned_labels=5000
            ).half_width
            for n in (100, 200, 400, 1000, 5000, 20_000, 100_000)
        ]
        assert all(a > b for a, b in itertools.pairwise(widths))

    def test_bounds_are_cut_to_the_possible_differences(self) -> None:
        ci = confidence_sequence(ArmStats(1, 1), ArmStats(1, 0), alpha=0.05, planned_labels=100)
        assert (ci.d_hat, ci.lower) == (-1.0, -1.0)
        assert ci.half_width > 1 and -1.0 < ci.upper <= 1.0

    def test_vectorised_bounds_agree(self) -> None:
        kp, n_p, kc, n_c = (
            [850, 4200, 17_000],
            [1000, 5000, 20_000],
            [80, 520, 2290],
            [100, 600, 2500],
        )
        d_hat, lower, upper = confidence_bounds(kp, n_p, kc, n_c, alpha=0.05, planned_labels=5000)
        for i in range(3):
            ci = confidence_sequence(ArmStats(n_p[i], kp[i]), ArmStats(n_c[i], kc[i]),
                                     alpha=0.05, planned_labels=5000)  # fmt: skip
            assert (d_hat[i], lower[i], upper[i]) == pytest.approx((ci.d_hat, ci.lower, ci.upper))

    @pytest.mark.parametrize(
        ("production", "canary", "field"),
        [
            pytest.param(ArmStats(10, 8), ArmStats(10, 12), "canary.correct", id="k above n"),
            pytest.param(ArmStats(-1, 0), ArmStats(10, 8), "production.labelled", id="negative n"),
            pytest.param(ArmStats(10, -2), ArmStats(10, 8), "production.correct", id="negative k"),
            pytest.param(ArmStats(10, 8), ArmStats(0, 0), "canary.labelled", id="no labels"),
            pytest.param(ArmStats(10, 8), ArmStats(10.5, 8), "canary.labelled", id="not whole"),  # type: ignore[arg-type]
        ],
    )  # fmt: skip
    def test_bad_counts_raise_naming_the_field(
        self, production: ArmStats, canary: ArmStats, field: str
    ) -> None:
        with pytest.raises(DataError, match=field):
            confidence_sequence(production, canary, alpha=0.05, planned_labels=5000)

    @pytest.mark.parametrize(
        ("alpha", "planned", "field"),
        [(0.0, 5000, "alpha"), (1.0, 5000, "alpha"), (0.05, 0, "planned_labels")],
    )
    def test_bad_parameters_raise(self, alpha: float, planned: int, field: str) -> None:
        with pytest.raises(DataError, match=field):
            confidence_sequence(
                ArmStats(10, 8), ArmStats(10, 8), alpha=alpha, planned_labels=planned
            )


# --- the judge ---------------------------------------------------------------------------------

ENOUGH = 20_000  # canary labels that decide a one-point difference either way


class TestAccuracyDecision:
    def test_promotes_a_non_inferior_canary(self) -> None:
        e = evaluate(arm(9 * ENOUGH, 0.85), arm(ENOUGH, 0.85))
        assert e.decision is Decision.PROMOTE
        assert e.lower > -SETTINGS.margin
        assert "non-inferior" in e.reasons[0]

    def test_rolls_back_a_worse_canary(self) -> None:
        e = evaluate(arm(9000, 0.85), arm(1000, 0.78))
        assert e.decision is Decision.ROLLBACK
        assert e.upper < 0
        assert "less accurate" in e.reasons[0]

    def test_rollback_wins_over_promotion_when_shown_worse_within_the_margin(self) -> None:
        e = evaluate(arm(5_000_000, 0.85), arm(5_000_000, 0.847))
        assert e.upper < 0 and e.lower > -SETTINGS.margin
        assert e.decision is Decision.ROLLBACK

    def test_continues_while_undecided(self) -> None:
        e = evaluate(arm(2700, 0.85), arm(300, 0.84))
        assert e.decision is Decision.CONTINUE
        assert e.lower < -SETTINGS.margin < 0 < e.upper
        assert e.reasons[0].startswith("undecided")

    def test_below_min_labels_it_continues_with_the_reason(self) -> None:
        e = evaluate(arm(1800, 0.85), arm(199, 0.5))  # clearly worse, but 199 < 200 labels
        assert e.upper < 0
        assert e.decision is Decision.CONTINUE
        assert e.reasons == ("too few labels: canary 199, production 1800; the accuracy test "
                             "judges from 200 per arm",)  # fmt: skip

    def test_before_the_bake_time_it_continues_with_the_reason(self) -> None:
        e = evaluate(arm(9000, 0.85), arm(1000, 0.7), minutes=59.5)
        assert e.upper < 0
        assert e.decision is Decision.CONTINUE
        assert e.reasons == ("still baking: 59.5 of min_bake_minutes 60",)

    def test_both_waits_are_named(self) -> None:
        e = evaluate(arm(100, 0.85), arm(10, 0.8), minutes=5)
        assert e.decision is Decision.CONTINUE
        assert [r.split(":")[0] for r in e.reasons] == ["too few labels", "still baking"]

    def test_at_max_duration_an_undecided_canary_is_rolled_back(self) -> None:
        e = evaluate(arm(2700, 0.85), arm(300, 0.84), minutes=72 * 60)
        assert e.decision is Decision.ROLLBACK
        assert e.reasons[0].startswith("undecided")
        assert e.reasons[1].startswith("max duration reached: 72.0 h >= 72 h")

    def test_at_max_duration_too_few_labels_is_rolled_back(self) -> None:
        e = evaluate(arm(90, 0.85), arm(10, 0.9), minutes=73 * 60)
        assert e.decision is Decision.ROLLBACK
        assert e.reasons[0].startswith("too few labels")
        assert "max duration reached" in e.reasons[-1]

    def test_at_max_duration_a_decided_canary_keeps_its_decision(self) -> None:
        e = evaluate(arm(9 * ENOUGH, 0.85), arm(ENOUGH, 0.85), minutes=80 * 60)
        assert e.decision is Decision.PROMOTE

    def test_no_labels_yet_gives_the_whole_range(self) -> None:
        e = evaluate(ArmStats(0, 0), ArmStats(0, 0), minutes=1)
        assert (e.decision, e.d_hat, e.lower, e.upper) == (Decision.CONTINUE, 0.0, -1.0, 1.0)

    def test_the_evaluation_records_the_look(self) -> None:
        e = judge(arm(9000, 0.85), arm(1000, 0.85), SETTINGS,
                  started_at="2026-03-01T12:00:00", now="2026-03-01T14:30:00Z")  # fmt: skip
        assert e.at == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)
        assert (e.elapsed_minutes, e.production_labels, e.canary_labels) == (150, 9000, 1000)
        assert e.margin == SETTINGS.margin
        metrics = e.metrics()
        assert set(metrics) == {"d_hat", "lower", "upper", "half_width", "production_labels",
                                "canary_labels", "elapsed_minutes", "decision"}  # fmt: skip
        assert metrics["decision"] == e.decision.code
        assert metrics["half_width"] == pytest.approx((e.upper - e.lower) / 2)


class TestGuardrails:
    SLO = CanarySettings(latency_slo_ms=200, latency_windows=3)

    @pytest.mark.parametrize(
        ("production", "canary", "decision"),
        [
            pytest.param((100, 100, 100), (150, 250, 260, 270), Decision.ROLLBACK,
                         id="three windows above the SLO and 1.2 x production"),
            pytest.param((100, 100, 100), (250, 260, 150, 270), Decision.CONTINUE,
                         id="a good window breaks the run"),
            pytest.param((100, 100), (250, 260), Decision.CONTINUE, id="two of three windows"),
            pytest.param((300, 300, 300), (350, 350, 350), Decision.CONTINUE,
                         id="above the SLO but within 1.2 x production"),
            pytest.param((100, 100, 100), (190, 190, 190), Decision.CONTINUE,
                         id="above 1.2 x production but within the SLO"),
            pytest.param((), (250, 260, 270), Decision.ROLLBACK,
                         id="no production windows: the SLO alone"),
        ],
    )  # fmt: skip
    def test_latency_over_k_consecutive_windows(
        self, production: tuple[float, ...], canary: tuple[float, ...], decision: Decision
    ) -> None:
        production_arm = ArmStats(10, 9, latency_p95_ms=production)
        e = evaluate(production_arm, ArmStats(1, 1, latency_p95_ms=canary), minutes=5,
                     settings=self.SLO)  # fmt: skip
        assert e.decision is decision
        if decision is Decision.ROLLBACK:
            assert e.reasons[0].startswith("latency guardrail: canary p95 above max(SLO 200 ms,")

    def test_without_an_slo_only_production_counts(self) -> None:
        settings = CanarySettings(latency_windows=2)
        assert settings.latency_slo_ms is None
        slow = evaluate(ArmStats(10, 9, latency_p95_ms=(100, 100)),
                        ArmStats(1, 1, latency_p95_ms=(121, 130)), settings=settings)  # fmt: skip
        assert slow.decision is Decision.ROLLBACK
        assert "1.2 x production p95) in the last 2" in slow.reasons[0]
        alone = evaluate(ArmStats(10, 9), ArmStats(1, 1, latency_p95_ms=(900, 900)),
                         settings=settings)  # fmt: skip
        assert alone.decision is Decision.CONTINUE

    @pytest.mark.parametrize(
        ("production", "canary", "decision"),
        [
            pytest.param((10_000, 10), (1000, 8), Decision.ROLLBACK, id="0.8% vs 0.1% + 0.5%"),
            pytest.param((10_000, 10), (1000, 6), Decision.CONTINUE, id="0.6%: within tolerance"),
            pytest.param((10_000, 10), (199, 50), Decision.CONTINUE, id="too few requests"),
            pytest.param((0, 0), (200, 2), Decision.ROLLBACK, id="production served nothing"),
        ],
    )
    def test_error_rate_above_production(
        self, production: tuple[int, int], canary: tuple[int, int], decision: Decision
    ) -> None:
        e = evaluate(ArmStats(10, 9, requests=production[0], errors=production[1]),
                     ArmStats(1, 1, requests=canary[0], errors=canary[1]), minutes=1)  # fmt: skip
        assert e.decision is decision
        if decision is Decision.ROLLBACK:
            assert e.reasons[0].startswith("error-rate guardrail: canary")

    def test_a_guardrail_overrides_a_promotion(self) -> None:
        e = evaluate(arm(9 * ENOUGH, 0.85, requests=200_000, errors=0),
                     arm(ENOUGH, 0.85, requests=20_000, errors=1000))  # fmt: skip
        assert e.decision is Decision.ROLLBACK
        assert len(e.reasons) == 1 and e.reasons[0].startswith("error-rate guardrail")


class TestBadInput:
    @pytest.mark.parametrize(
        ("production", "canary", "field"),
        [
            pytest.param(ArmStats(10, 11), ArmStats(10, 8), "production.correct", id="k above n"),
            pytest.param(ArmStats(10, 8), ArmStats(-5, 0), "canary.labelled", id="negative n"),
            pytest.param(ArmStats(10, 8, requests=5, errors=6), ArmStats(10, 8),
                         "production.errors", id="more errors than requests"),
            pytest.param(ArmStats(10, 8), ArmStats(10, 8, requests=-1), "canary.requests",
                         id="negative requests"),
            pytest.param(ArmStats(10, 8), ArmStats(10, 8, latency_p95_ms=(10, -1)),
                         "canary.latency_p95_ms", id="negative latency"),
            pytest.param(ArmStats(10, 8, latency_p95_ms=(float("nan"),)), ArmStats(10, 8),
                         "production.latency_p95_ms", id="NaN latency"),
        ],
    )  # fmt: skip
    def test_bad_counts_raise_naming_the_field(
        self, production: ArmStats, canary: ArmStats, field: str
    ) -> None:
        with pytest.raises(DataError, match=field):
            evaluate(production, canary)

    def test_every_problem_is_named(self) -> None:
        with pytest.raises(DataError) as caught:
            evaluate(ArmStats(-1, 0), ArmStats(10, 11))
        assert [p.split(":")[0] for p in caught.value.problems] == [
            "production.labelled", "canary.correct"
        ]  # fmt: skip

    def test_now_before_the_start(self) -> None:
        with pytest.raises(DataError, match=r"now: .* is before started_at"):
            evaluate(ArmStats(10, 8), ArmStats(10, 8), minutes=-1)

    def test_a_time_that_is_not_a_time(self) -> None:
        with pytest.raises(DataError, match="started_at"):
            judge(ArmStats(10, 8), ArmStats(10, 8), SETTINGS, started_at="soon", now=START)


class TestSettings:
    def test_defaults_and_the_config_section(self) -> None:
        assert (SETTINGS.alpha, SETTINGS.margin, SETTINGS.max_duration_hours) == (0.05, 0.01, 72)
        assert RetrainConfig.model_fields["canary"].default == SETTINGS

    def test_max_duration_must_outlast_the_bake(self) -> None:
        with pytest.raises(ValidationError, match="must be longer than min_bake_minutes"):
            CanarySettings(max_duration_hours=1, min_bake_minutes=60)

    @pytest.mark.parametrize(
        "values",
        [
            {"alpha": 0}, {"alpha": 0.5}, {"margin": -0.01}, {"margin": 1},
            {"planned_labels": 0}, {"min_labels_per_arm": 0}, {"latency_ratio": 0.9},
            {"latency_windows": 0}, {"latency_slo_ms": 0}, {"error_rate_tolerance": 1.5},
            {"unknown": 1},
        ],
    )  # fmt: skip
    def test_out_of_bounds(self, values: dict[str, object]) -> None:
        with pytest.raises(ValidationError):
            CanarySettings.model_validate(values)
