"""Sensors shipped in the installed package (importable by workers and the triggerer)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

__all__ = ["NewDataSensor"]


class NewDataSensor(BaseSensorOperator):
    """Done when rows newer than the production model's training data have arrived.

    Pokes with a cheap filtered row count (``retrain.monitor.new_rows``) at the run's as-of time;
    use ``mode="reschedule"`` so no worker slot is held between pokes. The row count goes to XCom.
    """

    def poke(self, context: Any) -> PokeReturnValue:
        # imported when poking: the monitor DAG file imports this module at parse time
        from retrain.monitor import new_rows  # noqa: PLC0415
        from retrain_airflow.definitions import dag_config  # noqa: PLC0415
        from retrain_airflow.runtime import as_of, services  # noqa: PLC0415

        rows = new_rows(services(dag_config()), as_of=as_of(context))
        self.log.info("%d new rows since the production model's training data", rows)
        return PokeReturnValue(is_done=rows > 0, xcom_value=rows)
