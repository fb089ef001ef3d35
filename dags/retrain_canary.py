"""retrain_canary of every model in $RETRAIN_CONFIG whose deployment.promote_to_production is
`judge`, see retrain_airflow.dags.

Two lines make the DAGs; the first import only saves parse time: Airflow's DAG processor imports
the `airflow.*` modules a DAG file names once, before it forks a parser per file.
"""

import airflow.providers.standard.decorators.python  # noqa: F401

from retrain_airflow.dags import canary_dags

globals().update(canary_dags())
