"""The trigger forms of the DAGs: Airflow renders them and refuses bad values (the form, and
HTTP 400 over REST) before a run exists. Built fresh for each DAG (a ``Param`` is mutable)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from retrain.config.schema import MODES

__all__ = [
    "AS_OF_PATTERN",
    "as_of_param",
    "pipeline_params",
    "promote_params",
    "rollback_params",
]


def reason_param(description: str) -> Param:
    """A required reason, 3-500 characters (it goes into the audit history)."""
    return Param(type="string", minLength=3, maxLength=500, title="Reason", description=description)


def version_param(title: str, description: str) -> Param:
    """An optional model version (1 or more; empty = ``description`` says what applies)."""
    return Param(None, type=["null", "integer"], minimum=1, title=title, description=description)


def rollback_params() -> dict[str, Any]:
    """``retrain_rollback``'s form."""
    return {
        "reason": reason_param(
            "Why production is rolled back (required; goes into the audit history and the "
            "notification)."
        ),
        "to_version": version_param(
            "Target version",
            "Explicit version to restore; empty = the version that served before the current one.",
        ),
        "expected_version": version_param(
            "Expected production version",
            "Refuse (nothing moves) unless production is this version when the rollback runs; "
            "empty = no check.",
        ),
    }


def promote_params() -> dict[str, Any]:
    """``retrain_promote``'s form."""
    return {
        "reason": reason_param("Why the canary goes to production (audit history)."),
        "version": version_param(
            "Version", "The canary version to promote; empty = whichever holds the canary alias."
        ),
    }


def pipeline_params(mode: str = "weekly") -> dict[str, Any]:
    """``retrain_pipeline``'s form (``mode``: the default of its mode field, the mode of the
    schedule that fires the DAG: ``weekly`` for ``retrain_pipeline``, ``full_rebuild`` for
    ``retrain_full_rebuild``)."""
    return {
        "mode": Param(
            mode,
            type="string",
            enum=list(MODES),
            title="Mode",
            description="weekly: retrain on the training window (data.training_window_days); "
            "full_rebuild: rebuild from all history up to as_of (leave the training window "
            "empty). A weekly run and a full rebuild of one model never overlap: the later "
            "one waits in start.",
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            description="Why this run is started by hand. Required when force is on; "
            "recorded in the retraining log and the audit history.",
        ),
        "only_if_triggered": Param(
            False,
            type="boolean",
            title="Only if a rule fires",
            description="Evaluate the trigger rules first and retrain only "
            "if one fires, exactly like a scheduled run.",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force promotion",
            description="Promote even if the gate or the A/B test fails (recorded as "
            "forced; needs a reason).",
        ),
        "skip_ab": Param(
            False,
            type="boolean",
            title="Skip A/B test",
            description="Skip the offline A/B comparison with production.",
        ),
        "target_stage": Param(
            "production",
            type="string",
            enum=["staging", "canary", "production"],
            title="Target stage",
            description="Promote the candidate no further than this stage.",
        ),
        "window_days": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=3650,
            title="Training window (days)",
            description="Train on the last N days of event time; empty = the "
            "config's data.training_window_days (weekly mode only).",
        ),
        "as_of": as_of_param("the run's logical date"),
    }


#: An ISO-8601 date-time, as ``retrain.times.parse_time`` reads it (jsonschema's ``format`` alone
#: is not enforced by Airflow's Param validation).
AS_OF_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?)?$"
)


def as_of_param(empty: str) -> Param:
    """The ``as_of`` run parameter: an ISO-8601 time or empty (``empty`` says what applies)."""
    return Param(
        None,
        type=["null", "string"],
        format="date-time",
        pattern=AS_OF_PATTERN,
        title="As of",
        description=f"Act as if at this ISO-8601 time (replays, demos); empty = {empty}.",
    )
