"""The shared vocabulary: run statuses, stages, triggers, actions and the table of signals.

Every set that other modules need (which signals monitor the model, which asset a signal's rule
starts, which statuses count as a triggered run) is derived here from one table, so two parts of
the system cannot disagree about it. The enums are ``StrEnum``: they compare equal to, and
serialise as, their plain string values in YAML, JSON, XCom and MLflow tags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "ASSET_KINDS",
    "MONITORING_SIGNALS",
    "SIGNALS",
    "SIGNAL_ASSETS",
    "TRIGGERED_STATUSES",
    "Action",
    "AssetKind",
    "ExitCode",
    "RunStatus",
    "SignalKind",
    "SignalSpec",
    "Stage",
    "Trigger",
]


class ExitCode(IntEnum):
    """What the ``retrain`` command returns."""

    OK = 0  #: success, or nothing to do (``check``: no retraining)
    FAILURE = 1  #: a server refused, a checklist blocked, a step crashed
    BAD_INPUT = 2  #: config, data or arguments the user must fix
    REJECTED = 3  #: ``run``: the candidate was rejected by the gate or the A/B test
    TRIGGERED = 10  #: ``check``: a run would retrain; ``drift``: drift found


class Stage(StrEnum):
    """Lifecycle aliases a version moves through, in promotion order."""

    STAGING = "staging"
    CANARY = "canary"
    PRODUCTION = "production"

    @property
    def rank(self) -> int:
        """0 for staging, 1 for canary, 2 for production."""
        return list(Stage).index(self)


class AssetKind(StrEnum):
    """Monitor events that start a data-driven pipeline run, one Airflow asset each.

    Declared strongest first: a run started by several coalesced events is named after the
    strongest of them.
    """

    DRIFT = "drift"
    PERFORMANCE = "performance"
    VOLUME = "volume"


class Trigger(StrEnum):
    """Why a pipeline run happens: by hand, by the time schedule, or by a monitor event."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    DRIFT = "drift"
    VOLUME = "volume"
    PERFORMANCE = "performance"

    @property
    def from_event(self) -> bool:
        """Started by a monitor asset event (its reasons decide, not the policy)."""
        return self.value in set(AssetKind)


class Action(StrEnum):
    """What a fired rule asks for; only the two retraining actions start a run."""

    NOTIFY = "notify"
    INVESTIGATE = "investigate"
    RETRAIN = "retrain"
    INVESTIGATE_AND_RETRAIN = "investigate_and_retrain"

    @property
    def strength(self) -> int:
        """Higher is stronger (the decision reports the strongest fired action)."""
        return list(Action).index(self) + 1

    @property
    def retrains(self) -> bool:
        return self in (Action.RETRAIN, Action.INVESTIGATE_AND_RETRAIN)


class RunStatus(StrEnum):
    """Outcome of one pipeline run, as written to the retraining log."""

    RUNNING = "running"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    FAILED = "failed"
    STAGING = "staging"
    CANARY = "canary"
    AWAITING_APPROVAL = "awaiting_approval"
    DEPLOYED = "deployed"


#: Statuses of runs that were triggered (a skipped run was not): the cooldown counts from them.
TRIGGERED_STATUSES: Final = frozenset(set(RunStatus) - {RunStatus.SKIPPED, RunStatus.RUNNING})


class SignalKind(StrEnum):
    """What a signal measures."""

    PERFORMANCE = "performance"
    DRIFT = "drift"
    VOLUME = "volume"
    AGE = "age"


@dataclass(frozen=True)
class SignalSpec:
    """What a signal means, which values it can take and what a rule on it is for."""

    description: str
    kind: SignalKind
    minimum: float = 0.0
    maximum: float = math.inf
    integer: bool = False

    @property
    def monitors_model(self) -> bool:
        """A rule on it watches the production model (the checklist's "monitoring alerts")."""
        return self.kind in (SignalKind.PERFORMANCE, SignalKind.DRIFT)

    @property
    def asset(self) -> AssetKind | None:
        """The monitor event a rule on it emits (age is left to the time schedule)."""
        return None if self.kind is SignalKind.AGE else AssetKind(self.kind.value)


_PERFORMANCE = SignalKind.PERFORMANCE

#: The one table of trigger signals.
SIGNALS: Final = MappingProxyType(
    {
        "accuracy": SignalSpec(
            "production model accuracy on newly labelled data", _PERFORMANCE, 0.0, 1.0
        ),
        "precision": SignalSpec(
            "production model precision on newly labelled data", _PERFORMANCE, 0.0, 1.0
        ),
        "recall": SignalSpec(
            "production model recall on newly labelled data", _PERFORMANCE, 0.0, 1.0
        ),
        "f1": SignalSpec("production model F1 on newly labelled data", _PERFORMANCE, 0.0, 1.0),
        "roc_auc": SignalSpec(
            "production model ROC AUC on newly labelled data", _PERFORMANCE, 0.0, 1.0
        ),
        "days_since_training": SignalSpec(
            "days since the production model was trained", SignalKind.AGE
        ),
        "new_samples": SignalSpec(
            "labelled rows newer than the production model's data",
            SignalKind.VOLUME,
            integer=True,
        ),
        "drift_count": SignalSpec(
            "number of features with high drift", SignalKind.DRIFT, integer=True
        ),
        "drift_share": SignalSpec(
            "share of features with medium or high drift", SignalKind.DRIFT, 0.0, 1.0
        ),
    }
)

#: Signals whose rules count as monitoring the production model.
MONITORING_SIGNALS: Final = frozenset(n for n, s in SIGNALS.items() if s.monitors_model)
#: Signal name -> the asset event its rules emit.
SIGNAL_ASSETS: Final = MappingProxyType(
    {n: s.asset for n, s in SIGNALS.items() if s.asset is not None}
)
#: Every asset kind, strongest first.
ASSET_KINDS: Final = tuple(AssetKind)

#: The tag of a canary's MLflow run (``<model>/v<version>``), where the online judge logs each look.
CANARY_RUN_TAG = "retrain.canary"
