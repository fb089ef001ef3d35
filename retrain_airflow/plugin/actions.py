"""Airflow's side of the view: trigger a model's DAGs as the signed-in user, read their runs.

The view never moves an alias itself: *Rollback* and *Promote canary* trigger the model's
``retrain_rollback`` / ``retrain_promote`` DAG (``triggered_by=UI``, the user's name as
``triggering_user_name``), whose task does the audited move.

Idempotent per request: the confirmation form carries a random ``request_id`` and the DAG run's
id is derived from it (:func:`run_id_for`), so a double click, a resubmitted form or a retried
request finds the run the first one created instead of starting another.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from retrain_airflow.plugin.render import DagRunView

__all__ = [
    "DAG_BASES",
    "ActionError",
    "AirflowRuns",
    "RunStore",
    "Triggered",
    "new_request_id",
    "run_id_for",
    "valid_request_id",
]

#: The DAG each action of the view triggers or links to, by kind (``Target.dag_id(base)``
#: suffixes ``__<model>`` in a directory config).
DAG_BASES: Mapping[str, str] = {
    "rollback": "retrain_rollback",
    "promote": "retrain_promote",
    "pipeline": "retrain_pipeline",
    "full_rebuild": "retrain_full_rebuild",
}
#: Run ids of the runs this view triggers: ``retrain_ui__<request_id>``.
RUN_ID_PREFIX = "retrain_ui__"
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_request_id() -> str:
    """A fresh nonce for one confirmation form (24 URL-safe characters)."""
    return secrets.token_urlsafe(18)


def valid_request_id(value: str) -> bool:
    return bool(_REQUEST_ID.fullmatch(value))


def run_id_for(request_id: str) -> str:
    """The DAG run id of the request ``request_id`` (valid in Airflow's run id pattern)."""
    if not valid_request_id(request_id):
        raise ValueError("request_id must be 16-64 characters of A-Z a-z 0-9 _ -")
    return RUN_ID_PREFIX + request_id


class ActionError(Exception):
    """An action Airflow refused (unknown DAG, bad parameters): shown with ``status_code``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class Triggered:
    """The DAG run of a request; ``created``: this request made it (else an earlier one did)."""

    run: DagRunView
    created: bool


class RunStore(Protocol):
    """What the view needs of Airflow's metadata database."""

    def trigger(
        self,
        dag_id: str,
        *,
        request_id: str,
        conf: Mapping[str, Any],
        user: str,
        note: str | None = None,
    ) -> Triggered: ...

    def find(self, dag_id: str, run_id: str) -> DagRunView | None: ...

    def recent(self, dag_ids: Sequence[str], limit: int = 10) -> list[DagRunView]: ...

    def dag_problems(self, dag_ids: Iterable[str]) -> dict[str, str]: ...


def _view(run: Any) -> DagRunView:
    triggered_by = run.triggered_by
    conf = run.conf if isinstance(run.conf, Mapping) else {}
    return DagRunView(
        dag_id=str(run.dag_id),
        run_id=str(run.run_id),
        state=str(getattr(run.state, "value", run.state) or "none"),
        run_after=run.run_after.isoformat() if run.run_after else None,
        triggered_by=str(getattr(triggered_by, "value", triggered_by)) if triggered_by else None,
        user=run.triggering_user_name,
        conf=dict(conf),
        note=run.note,
    )


class AirflowRuns:
    """:class:`RunStore` on the api-server's metadata database session."""

    def trigger(
        self,
        dag_id: str,
        *,
        request_id: str,
        conf: Mapping[str, Any],
        user: str,
        note: str | None = None,
    ) -> Triggered:
        """Trigger ``dag_id`` as ``user`` from the UI, once per ``request_id``."""
        from airflow.api.common.trigger_dag import trigger_dag  # noqa: PLC0415
        from airflow.exceptions import (  # noqa: PLC0415
            DagNotFound,
            DagRunAlreadyExists,
            ParamValidationError,
        )
        from airflow.utils.types import DagRunTriggeredByType  # noqa: PLC0415
        from sqlalchemy.exc import IntegrityError  # noqa: PLC0415

        run_id = run_id_for(request_id)
        created = False
        try:
            trigger_dag(
                dag_id,
                run_id=run_id,
                conf=dict(conf),
                triggered_by=DagRunTriggeredByType.UI,
                triggering_user_name=user,
                note=note,
            )
            created = True
        except (DagRunAlreadyExists, IntegrityError):
            pass  # this request's run exists (a double submit, or it raced us): show that one
        except DagNotFound as exc:
            raise ActionError(
                409,
                f"DAG {dag_id} is not in Airflow's database ({exc}): has the DAG processor "
                "parsed dags/ with this config yet? Nothing was triggered.",
            ) from exc
        except ParamValidationError as exc:
            raise ActionError(422, f"DAG {dag_id} refused the parameters: {exc}") from exc
        except ValueError as exc:  # e.g. the DAG allows no manual runs
            raise ActionError(409, f"DAG {dag_id} refused the run: {exc}") from exc
        found = self.find(dag_id, run_id)
        if found is None:  # pragma: no cover - a run that exists a moment ago vanished
            raise ActionError(500, f"the run {run_id} of {dag_id} was not found after triggering")
        return Triggered(found, created)

    def find(self, dag_id: str, run_id: str) -> DagRunView | None:
        from airflow.models.dagrun import DagRun  # noqa: PLC0415
        from airflow.utils.session import create_session  # noqa: PLC0415
        from sqlalchemy import select  # noqa: PLC0415

        with create_session() as session:
            run = session.scalar(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            )
            return _view(run) if run is not None else None

    def recent(self, dag_ids: Sequence[str], limit: int = 10) -> list[DagRunView]:
        """The newest runs of ``dag_ids``, newest first."""
        from airflow.models.dagrun import DagRun  # noqa: PLC0415
        from airflow.utils.session import create_session  # noqa: PLC0415
        from sqlalchemy import select  # noqa: PLC0415

        with create_session() as session:
            runs = session.scalars(
                select(DagRun)
                .where(DagRun.dag_id.in_(list(dag_ids)))
                .order_by(DagRun.run_after.desc())
                .limit(limit)
            )
            return [_view(run) for run in runs]

    def dag_problems(self, dag_ids: Iterable[str]) -> dict[str, str]:
        """Why a triggered run of each DAG would not start now (paused, not parsed)."""
        from airflow.models.dag import DagModel  # noqa: PLC0415
        from airflow.utils.session import create_session  # noqa: PLC0415
        from sqlalchemy import select  # noqa: PLC0415

        wanted = list(dag_ids)
        with create_session() as session:
            rows = session.execute(
                select(DagModel.dag_id, DagModel.is_paused, DagModel.is_stale).where(
                    DagModel.dag_id.in_(wanted)
                )
            ).all()
        known = {row[0]: (bool(row[1]), bool(row[2])) for row in rows}
        problems: dict[str, str] = {}
        for dag_id in wanted:
            if dag_id not in known:
                problems[dag_id] = "not in Airflow yet (the DAG processor has not parsed it)"
            elif known[dag_id][1]:
                problems[dag_id] = "stale (its DAG file no longer defines it)"
            elif known[dag_id][0]:
                problems[dag_id] = "paused: a triggered run waits until the DAG is unpaused"
        return problems
