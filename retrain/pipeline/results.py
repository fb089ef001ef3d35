"""What each step hands the next: frozen, typed results (JSON only at the XCom edge).

``start`` -> :class:`~retrain.pipeline.context.RunContext`; ``check`` -> :class:`CheckResult`;
``extract`` -> :class:`Extracted`; ``validate`` -> :class:`Validated`; ``train`` ->
:class:`Trained`; ``evaluate`` -> :class:`Evaluated`; ``compare`` -> :class:`Compared`;
``deploy`` -> :class:`Deployed` or ``reject`` -> :class:`Rejected`; ``finish`` ->
:class:`RunRecord`. Each has a one-line ``summary()`` for progress output and task logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrain.compare import ABResult
from retrain.data import ExtractResult
from retrain.deploy import Deployment
from retrain.evaluate import GateResult, ModelScores
from retrain.log import RetrainingRecord
from retrain.pipeline.context import RunContext
from retrain.pipeline.rebuild import RebuildTests
from retrain.signals import LiveSignals
from retrain.train import TrainResult
from retrain.triggers import Decision
from retrain.validate import ValidationReport

__all__ = [
    "CheckResult",
    "Compared",
    "Deployed",
    "Evaluated",
    "Extracted",
    "Rejected",
    "RunRecord",
    "Trained",
    "Validated",
]

#: The training window as extracted (``retrain.data.extract``).
Extracted = ExtractResult
#: The data contract's outcome (``retrain.validate.check_frame``); a failing one is an error.
Validated = ValidationReport
#: Registration and promotion as far as policy and checklist allowed (``retrain.deploy``).
Deployed = Deployment
#: The retraining log record the run ends with.
RunRecord = RetrainingRecord


@dataclass(frozen=True)
class CheckResult:
    """The live signals, the trigger decision, and the context with its baseline pinned."""

    proceed: bool
    reasons: tuple[str, ...]
    decision: Decision
    live: LiveSignals
    context: RunContext

    def summary(self) -> str:
        return ("RETRAIN: " if self.proceed else "SKIP: ") + "; ".join(self.reasons)


@dataclass(frozen=True)
class Trained:
    """The fitted pipeline (on disk) and the drift reference profile of its training data."""

    fit: TrainResult
    profile_path: str

    def summary(self) -> str:
        fit = self.fit
        line = f"{fit.train_rows} rows fitted in {fit.fit_seconds:.1f}s; holdout {fit.holdout_rows}"
        return f"{line}; {fit.search.summary()}" if fit.search else line


@dataclass(frozen=True)
class Evaluated:
    """Candidate and baseline scored on the same holdout, and the gate's verdict."""

    candidate: ModelScores
    production: ModelScores | None
    production_version: int | None
    gate: GateResult
    predictions_path: str
    report_path: str
    #: A full rebuild's comprehensive tests (``None``: a weekly run, or tests disabled).
    rebuild_tests: RebuildTests | None = None

    def summary(self) -> str:
        return f"gate {self.gate.status}: " + "; ".join(self.gate.reasons)


@dataclass(frozen=True)
class Compared:
    """The offline A/B test on the paired holdout predictions (or why it was skipped)."""

    skipped: bool
    passed: bool
    reasons: tuple[str, ...]
    ab: ABResult | None = None

    def summary(self) -> str:
        return "; ".join(self.reasons)

    def to_record(self) -> dict[str, object]:
        """The log record's ``ab_test`` field."""
        if self.ab is None:
            return {"skipped": True, "passed": self.passed, "reasons": list(self.reasons)}
        return {"skipped": False, **self.ab.to_dict()}


@dataclass(frozen=True)
class Rejected:
    """Why the candidate was not deployed (nothing registered, no alias moved)."""

    reasons: tuple[str, ...]

    def summary(self) -> str:
        return "; ".join(self.reasons)
