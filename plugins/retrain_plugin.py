"""The Retraining view (Browse -> Retraining) for an Airflow whose plugins folder is this one.

The plugin itself is ``retrain_airflow.plugin.RetrainPlugin``. Installed with the ``retrain``
package, it is also registered through the ``airflow.plugins`` entry point; Airflow would then
find it twice and log "already registered". So this file defines the plugin only when that
entry point is not installed (an editable install made before it existed, or a checkout on
PYTHONPATH), and is a no-op otherwise: exactly one of the two registers it.
"""

from importlib.metadata import entry_points


def _entry_point_installed() -> bool:
    return any(
        ep.value.startswith("retrain_airflow.plugin")
        for ep in entry_points(group="airflow.plugins")
    )


if not _entry_point_installed():
    from retrain_airflow.plugin import RetrainPlugin

    __all__ = ["RetrainPlugin"]
