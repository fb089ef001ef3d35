"""An Airflow notifier that sends through the config's ``notifications`` adapter."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

from retrain.config import NotificationSettings
from retrain.notify import Notification, notifier_for

__all__ = ["RetrainNotifier"]


class RetrainNotifier(BaseNotifier):
    """Announce a task or DAG event via ``retrain.notify`` (log, Slack webhook or SMTP).

    Used as ``on_failure_callback`` (and for any other event name). The channel is the config's
    ``notifications`` section, handed in by the DAG (so the Airflow UI and the CLI announce
    through the same adapter; no Airflow provider is needed for Slack or SMTP).
    """

    template_fields = ("event",)

    def __init__(
        self,
        *,
        event: str,
        model: str,
        settings: NotificationSettings,
        level: str = "warning",
    ) -> None:
        super().__init__()
        self.event = event
        self.model = model
        self.settings = settings
        self.level = level

    def get_template_env(self, dag: Any = None) -> Any:
        # DAG-level callbacks pass a SerializedDAG, which has no template env (Airflow 3.3)
        if dag is not None and not hasattr(dag, "get_template_env"):
            dag = None
        return super().get_template_env(dag=dag)

    def notify(self, context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "?")
        run_id = getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "?")
        task_id = getattr(ti, "task_id", None)
        error = context.get("exception")
        where = f"{dag_id}.{task_id}" if task_id else dag_id
        notifier_for(self.settings).notify(
            Notification(
                event=self.event,
                title=f"{self.model}: {where} {self.event.replace('_', ' ')}",
                text=f"{where} (run {run_id}): {error}" if error else f"{where} (run {run_id})",
                level="critical" if self.level == "critical" else "warning",
                details={
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "task_id": task_id,
                    "error": str(error) if error else None,
                },
            )
        )
