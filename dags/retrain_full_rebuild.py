"""retrain_full_rebuild of every model in $RETRAIN_CONFIG (file or directory): the pipeline in
mode full_rebuild on schedule.full_rebuild, see retrain_airflow.dags.

Two lines make the DAGs; the first import only saves parse time: Airflow's DAG processor imports
the `airflow.*` modules a DAG file names once, before it forks a parser per file.
"""

import airflow.providers.standard.decorators.python  # noqa: F401

from retrain_airflow.dags import full_rebuild_dags

globals().update(full_rebuild_dags())
