"""retrain_rollback for every model of $RETRAIN_CONFIG (file or directory): retrain_airflow.dags."""

from retrain_airflow.dags import rollback_dags

globals().update(rollback_dags())
