# syntax=docker/dockerfile:1
# One image for every service in docker-compose.yaml: the Airflow components and the MLflow server.
# It extends the official Airflow image the documented way (pip as the `airflow` user), so
# `retrain` is installed at build time, never pip-installed at container start.
FROM apache/airflow:3.3.2-python3.11

# Mount points of the named volumes. A fresh named volume takes the owner and mode of its mount
# point, so they start out writable by the airflow user and by group 0 (any AIRFLOW_UID).
USER root
RUN mkdir -p /mlflow/artifacts /opt/airflow/data \
    && chown -R airflow:0 /mlflow /opt/airflow/data \
    && chmod -R g+rwX /mlflow /opt/airflow/data
USER airflow

# The project and its lock file. Versions come from constraints.txt (the same lock file
# `make install` uses); "apache-airflow==${AIRFLOW_VERSION}" keeps pip from moving the image's
# Airflow. Extras for the MLflow server: mlflow[auth] (basic-auth), psycopg2-binary (Postgres
# backend store), boto3 (S3 artifact store). `pip check` fails the build on any conflict with the
# providers that ship in the base image.
COPY --chown=airflow:0 pyproject.toml constraints.txt README.md /tmp/retrain-src/
COPY --chown=airflow:0 retrain/ /tmp/retrain-src/retrain/
COPY --chown=airflow:0 retrain_airflow/ /tmp/retrain-src/retrain_airflow/
RUN pip install --no-cache-dir -c /tmp/retrain-src/constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        /tmp/retrain-src \
        "mlflow[auth]" \
        psycopg2-binary \
        boto3 \
    && pip check \
    && rm -rf /tmp/retrain-src

# DAGs, plugins and the retrain config in the standard Airflow locations. `dag[s]` / `plugin[s]`
# are wildcards so the build also works while a checkout has no DAG or plugin yet (git keeps no
# empty directories); config/retraining.yaml is required.
COPY --chown=airflow:0 config/ /opt/airflow/config/
COPY --chown=airflow:0 dag[s]/ /opt/airflow/dags/
COPY --chown=airflow:0 plugin[s]/ /opt/airflow/plugins/

ENV RETRAIN_CONFIG=/opt/airflow/config/retraining.yaml
