"""retrain_pipeline for every model of $RETRAIN_CONFIG (file or directory): retrain_airflow.dags."""

from retrain_airflow.dags import pipeline_dags

globals().update(pipeline_dags())
