"""The canary judge by simulation: wrong decisions, power and labels to a decision.

    .venv/bin/python benchmarks/canary_judge.py [--runs 500] [--seed 0]

Each run streams labelled predictions in batches (by default 50 canary and 450 production
labels every 5 minutes: a 10% canary with a base accuracy of 0.85) and asks the judge after
every batch, with ``CanarySettings()`` defaults, until it decides or ``max_duration_hours`` ends
the canary. The looks are computed for all runs at once with
:func:`retrain.canary.confidence_bounds`; the stopping look of every run is then checked
against :func:`retrain.canary.judge` itself (``judge_disagreements`` counts any difference).

Printed next to the judge: the fixed-horizon two-proportion z-test's sample size for the same
effect (``retrain.compare.required_sample_size``: per arm for equal arms, and the canary labels
needing the same variance at the simulated split), and a 95% z-interval checked at every look
(what peeking does to a fixed-horizon test). Exit 0 when both bars of the tests are met.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrain.canary import ArmStats, Decision, confidence_bounds, judge
from retrain.compare import required_sample_size
from retrain.config.schema import CanarySettings

BASE_ACCURACY = 0.85
CANARY_PER_LOOK = 50
PRODUCTION_PER_LOOK = 450  # a 10% canary: production gets 9 times the labels
MINUTES_PER_LOOK = 5.0
START = datetime(2026, 1, 1, tzinfo=UTC)

_ROLLBACK, _CONTINUE, _PROMOTE = -1, 0, 1


@dataclass(frozen=True)
class SimulationResult:
    """Outcomes of ``runs`` simulated canaries whose accuracy differs from production's by
    ``effect``. Rates are fractions of runs; label counts are at the deciding look."""

    effect: float
    runs: int
    promote: float
    rollback: float  #: every rollback: by the interval or at max duration
    rollback_by_interval: float  #: the interval lay below 0
    rollback_at_max_duration: float  #: undecided when max_duration_hours ran out
    median_canary_labels: float
    median_production_labels: float
    miscoverage: float  #: runs whose interval excluded the true D at some judged look
    peeking_promote: float  #: the same rule with a fixed 95% z-interval checked at every look
    peeking_rollback: float
    judge_disagreements: int  #: stopping looks where judge() said otherwise (should be 0)


def simulate(
    effect: float,
    *,
    runs: int = 500,
    seed: int = 0,
    settings: CanarySettings | None = None,
    base_accuracy: float = BASE_ACCURACY,
    canary_per_look: int = CANARY_PER_LOOK,
    production_per_look: int = PRODUCTION_PER_LOOK,
    minutes_per_look: float = MINUTES_PER_LOOK,
) -> SimulationResult:
    """``runs`` canaries of accuracy ``base_accuracy + effect`` against production's
    ``base_accuracy``, judged after every batch (seeded: the same arguments, the same result)."""
    cfg = settings or CanarySettings()
    rng = np.random.default_rng(seed)
    looks = math.ceil(cfg.max_duration_hours * 60 / minutes_per_look)
    step = np.arange(1, looks + 1)
    n_c, n_p = canary_per_look * step, production_per_look * step
    k_c = rng.binomial(canary_per_look, base_accuracy + effect, (runs, looks)).cumsum(axis=1)
    k_p = rng.binomial(production_per_look, base_accuracy, (runs, looks)).cumsum(axis=1)
    d_hat, lower, upper = confidence_bounds(
        k_p, n_p, k_c, n_c, alpha=cfg.alpha, planned_labels=cfg.planned_labels
    )
    judged = (np.minimum(n_c, n_p) >= cfg.min_labels_per_arm) & (
        step * minutes_per_look >= cfg.min_bake_minutes
    )
    codes, stop, by_interval = _first_decisions(lower, upper, judged, cfg.margin)

    pc, pp = (k_c + 0.5) / (n_c + 1), (k_p + 0.5) / (n_p + 1)
    z = 1.959964 * np.sqrt(pc * (1 - pc) / n_c + pp * (1 - pp) / n_p)
    peek_codes, _, _ = _first_decisions(d_hat - z, d_hat + z, judged, cfg.margin)
    missed = ((lower > effect) | (upper < effect)) & judged

    disagreements = 0
    expected = {_ROLLBACK: Decision.ROLLBACK, _PROMOTE: Decision.PROMOTE}
    for run in range(runs):
        i = int(stop[run])
        for look, want in ((i, expected[int(codes[run])]), (i - 1, Decision.CONTINUE)):
            if look < 0:
                continue
            got = judge(
                ArmStats(int(n_p[look]), int(k_p[run, look]), requests=int(n_p[look])),
                ArmStats(int(n_c[look]), int(k_c[run, look]), requests=int(n_c[look])),
                cfg,
                started_at=START,
                now=START + timedelta(minutes=float(step[look]) * minutes_per_look),
            )
            disagreements += got.decision is not want
    return SimulationResult(
        effect=effect,
        runs=runs,
        promote=float(np.mean(codes == _PROMOTE)),
        rollback=float(np.mean(codes == _ROLLBACK)),
        rollback_by_interval=float(np.mean((codes == _ROLLBACK) & by_interval)),
        rollback_at_max_duration=float(np.mean(~by_interval)),
        median_canary_labels=float(np.median(n_c[stop])),
        median_production_labels=float(np.median(n_p[stop])),
        miscoverage=float(np.mean(missed.any(axis=1))),
        peeking_promote=float(np.mean(peek_codes == _PROMOTE)),
        peeking_rollback=float(np.mean(peek_codes == _ROLLBACK)),
        judge_disagreements=disagreements,
    )


def _first_decisions(
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    judged: npt.NDArray[np.bool_],
    margin: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Per run: the decision code, the index of the deciding look and whether the interval
    decided (else the last look rolled back an undecided canary). Rollback wins a tie, as in
    :func:`retrain.canary.judge`."""
    rollback = (upper < 0) & judged
    promote = (lower > -margin) & judged & ~rollback
    decided = rollback | promote
    by_interval = decided.any(axis=1)
    stop = np.where(by_interval, decided.argmax(axis=1), decided.shape[1] - 1)
    rows = np.arange(decided.shape[0])
    codes = np.where(promote[rows, stop], _PROMOTE, _ROLLBACK)
    return codes.astype(np.int64), stop.astype(np.int64), by_interval


def fixed_horizon_labels(
    effect: float,
    *,
    alpha: float,
    power: float,
    base_accuracy: float = BASE_ACCURACY,
    production_per_canary: float = PRODUCTION_PER_LOOK / CANARY_PER_LOOK,
) -> tuple[int, int]:
    """The fixed-horizon two-sided z-test's labels for ``effect``: per arm with equal arms
    (``required_sample_size``), and the canary labels giving the same variance when production
    gets ``production_per_canary`` times as many (``1/n_c + 1/(r n_c) = 2/n``)."""
    per_arm = required_sample_size(base_accuracy, effect, alpha=alpha, power=power)
    return per_arm, math.ceil(per_arm * (1 + 1 / production_per_canary) / 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = CanarySettings()
    ratio = PRODUCTION_PER_LOOK // CANARY_PER_LOOK
    print(
        f"base accuracy {BASE_ACCURACY}, {CANARY_PER_LOOK} canary + {PRODUCTION_PER_LOOK} "
        f"production labels every {MINUTES_PER_LOOK:g} min, alpha {cfg.alpha}, margin "
        f"{cfg.margin}, planned_labels {cfg.planned_labels}, min_labels_per_arm "
        f"{cfg.min_labels_per_arm}, bake {cfg.min_bake_minutes:g} min, max "
        f"{cfg.max_duration_hours:g} h, {args.runs} runs, seed {args.seed}\n"
    )
    print(
        "| scenario | promote | rollback (interval / max duration) | wrong | interval ever "
        "missed D | median labels to decision, canary (production) | fixed z-test n per arm, "
        f"power 0.8 / 0.99 (canary labels at 1:{ratio}) | 95% z-interval peeked: wrong |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    scenarios = (("A/A", 0.0, -cfg.margin), ("canary 5 points worse", -0.05, -0.05))
    for name, effect, z_effect in scenarios:
        r = simulate(effect, runs=args.runs, seed=args.seed, settings=cfg)
        wrong = r.rollback if effect == 0 else r.promote
        peek_wrong = r.peeking_rollback if effect == 0 else r.peeking_promote
        ok &= wrong <= cfg.alpha if effect == 0 else r.rollback >= 0.99
        ok &= r.judge_disagreements == 0
        fixed = [fixed_horizon_labels(z_effect, alpha=cfg.alpha, power=p) for p in (0.8, 0.99)]
        print(
            f"| {name} | {r.promote:.1%} | {r.rollback:.1%} ({r.rollback_by_interval:.1%} / "
            f"{r.rollback_at_max_duration:.1%}) | {wrong:.1%} | {r.miscoverage:.1%} | "
            f"{r.median_canary_labels:,.0f} ({r.median_production_labels:,.0f}) | "
            f"{fixed[0][0]:,} / {fixed[1][0]:,} ({fixed[0][1]:,} / {fixed[1][1]:,}) | "
            f"{peek_wrong:.1%} |"
        )
    print(
        "\nwrong: A/A any rollback (D = 0 is non-inferior), 5 points worse any promotion. The "
        f"fixed z-test for A/A is the non-inferiority test at the margin ({cfg.margin})."
    )
    print(f"both bars met and judge() agrees at every stopping look: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
