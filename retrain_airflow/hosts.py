"""``[core] hostname_callable`` for several Celery workers on one machine.

Airflow records the host a task ran on from this callable. With
``AIRFLOW__CORE__HOSTNAME_CALLABLE=retrain_airflow.hosts.hostname`` a worker started with
``RETRAIN_HOSTNAME=worker1`` records that name, so the task instances show which worker ran each
task; without the variable it is Airflow's default, the machine's fully qualified name.
"""

from __future__ import annotations

import os
import socket

__all__ = ["HOSTNAME_ENV", "hostname"]

HOSTNAME_ENV = "RETRAIN_HOSTNAME"


def hostname() -> str:
    """``$RETRAIN_HOSTNAME``, else ``socket.getfqdn()`` (Airflow's default)."""
    return os.environ.get(HOSTNAME_ENV, "").strip() or socket.getfqdn()
