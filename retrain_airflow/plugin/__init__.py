"""The Airflow UI's *Retraining* view: an Airflow 3 plugin with a FastAPI app at ``/retrain/``.

Loaded through the ``airflow.plugins`` entry point (``retrain = retrain_airflow.plugin:
RetrainPlugin``) or, when that is not installed, through ``plugins/retrain_plugin.py`` in the
plugins folder (never both: the folder file steps aside when the entry point exists).

Every Airflow process that loads plugins imports this module (the api-server, and the task
runner for macros), so it stays cheap: no FastAPI, MLflow or pandas here. The app is built on
its first request (:class:`LazyApp`); the pages and actions live in
:mod:`retrain_airflow.plugin.app`.

Airflow does not authenticate plugin apps: every route of the app depends on the Airflow user
itself (see :mod:`retrain_airflow.plugin.app`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

__all__ = ["EXTERNAL_VIEW", "PLUGIN_NAME", "URL_PREFIX", "LazyApp", "RetrainPlugin", "asgi_app"]

#: Where Airflow's api-server mounts the app. ``/retrain`` without the slash is the Airflow UI's
#: catch-all page, so links go to ``/retrain/``.
URL_PREFIX = "/retrain"
PLUGIN_NAME = "retrain"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The nav entry: Browse -> Retraining, shown in an iframe at ``/plugin/retrain``. Keys as
#: Airflow 3.3 validates them (``ExternalViewResponse``): one invalid dict hides the whole plugin.
EXTERNAL_VIEW: dict[str, str] = {
    "name": "Retraining",
    "href": "retrain/",
    "destination": "nav",
    "url_route": "retrain",
    "category": "browse",
}


class LazyApp:
    """An ASGI app that builds the plugin's FastAPI app on its first request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from retrain_airflow.plugin.app import create_app  # noqa: PLC0415 - built on first use

        await create_app()(scope, receive, send)


asgi_app = LazyApp()


class RetrainPlugin(AirflowPlugin):
    """Browse -> Retraining: models, versions, production timeline, log, drift, canary,
    rollback and promotion through their DAGs."""

    name = PLUGIN_NAME
    fastapi_apps = [{"app": asgi_app, "url_prefix": URL_PREFIX, "name": PLUGIN_NAME}]
    external_views = [EXTERNAL_VIEW]
