"""Sensors shipped in the installed package (importable by workers and the triggerer)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

__all__ = ["NewDataSensor"]


class NewDataSensor(BaseSensorOperator):
    """Done when rows newer than the production model's training data have arrived.

    Pokes with a cheap filtered row count (``retrain.monitor.new_rows``) at the run's as-of time;
    use ``mode="reschedule"`` so no worker slot is held between pokes. The row count goes to XCom.
    ``config_path`` / ``model`` name the model (default: ``$RETRAIN_CONFIG``, a single file).
    """

    def __init__(
        self, *, config_path: str | None = None, model: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path
        self.model = model

    def poke(self, context: Any) -> PokeReturnValue:
        # imported when poking: the monitor DAG file imports this module at parse time
        from retrain.config import load_model_config  # noqa: PLC0415
        from retrain.monitor import new_rows  # noqa: PLC0415
        from retrain_airflow.definitions import config_path  # noqa: PLC0415
        from retrain_airflow.runtime import as_of, services  # noqa: PLC0415

        config = load_model_config(self.config_path or config_path(), self.model)
        rows = new_rows(services(config), as_of=as_of(context))
        self.log.info("%d new rows since the production model's training data", rows)
        return PokeReturnValue(is_done=rows > 0, xcom_value=rows)
