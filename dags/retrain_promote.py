"""retrain_promote for every model of $RETRAIN_CONFIG (file or directory): retrain_airflow.dags."""

from retrain_airflow.dags import promote_dags

globals().update(promote_dags())
