"""retrain_monitor for every model of $RETRAIN_CONFIG (file or directory): retrain_airflow.dags."""

from retrain_airflow.dags import monitor_dags

globals().update(monitor_dags())
