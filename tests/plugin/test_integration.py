"""The Retraining view inside the real Airflow api-server app (``create_app()``), with real JWTs
from the auth manager: Airflow loads the plugin from the plugins folder, mounts it at
``/retrain``, lists it at ``/api/v2/plugins``, and leaves authentication to the view itself."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import airflow_harness as af
from tests.plugin.conftest import PluginState, dag_runs

ORIGIN = {"Origin": "http://testserver"}
PLUGIN_FILE = af.REPO / "plugins" / "retrain_plugin.py"


@pytest.fixture(scope="module")
def airflow(plugin_state: PluginState) -> Iterator[TestClient]:
    from airflow.api_fastapi.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RETRAIN_CONFIG", str(plugin_state.config_dir))
        yield TestClient(create_app(), follow_redirects=False)


def token(role: str, username: str | None = None) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    user = SimpleAuthManagerUser(username=username or role, role=role)
    return str(get_auth_manager().generate_jwt(user))


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


def routes(state: PluginState) -> list[tuple[str, str]]:
    model = f"/retrain/models/{state.alpha}"
    return [
        ("GET", "/retrain/"),
        ("GET", model),
        ("GET", f"{model}/runs/retrain_20261130_001"),
        ("GET", f"{model}/drift-report?run_id={state.drift_run_id}"),
        ("GET", f"{model}/rollback"),
        ("GET", f"{model}/promote"),
        ("POST", f"{model}/rollback"),
        ("POST", f"{model}/promote"),
    ]


def hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


class TestMounted:
    def test_the_plugin_is_listed_with_its_external_view(self, airflow: TestClient) -> None:
        listed = airflow.get("/api/v2/plugins", headers=bearer("admin"))
        assert listed.status_code == 200
        ours = [p for p in listed.json()["plugins"] if p["name"] == "retrain"]
        assert len(ours) == 1, "one invalid view dict would drop the whole plugin"
        plugin = ours[0]
        assert [(a["url_prefix"], a["name"]) for a in plugin["fastapi_apps"]] == [
            ("/retrain", "retrain")
        ]
        [view] = plugin["external_views"]
        assert {k: view[k] for k in ("name", "href", "destination", "url_route", "category")} == {
            "name": "Retraining",
            "href": "retrain/",
            "destination": "nav",
            "url_route": "retrain",
            "category": "browse",
        }
        errors = airflow.get("/api/v2/plugins/importErrors", headers=bearer("admin")).json()
        # An editable install leaves retrain.egg-info in the checkout, and pytest puts the
        # checkout on sys.path: Airflow then sees our one entry point through two distributions
        # and skips the second as "already registered". Installed (a wheel, or `make airflow`,
        # which runs outside the checkout) it is seen once. Anything else is an error.
        twice = "Plugin 'retrain' already registered, skipping"
        assert not [
            e
            for e in errors["import_errors"]
            if "retrain" in json.dumps(e)
            and not (e["error"] == twice and "retrain_airflow.plugin:RetrainPlugin" in e["source"])
        ]

    def test_anonymous_requests_get_401_on_every_route(
        self, airflow: TestClient, plugin_state: PluginState
    ) -> None:
        for method, path in routes(plugin_state):
            response = airflow.request(method, path, headers=ORIGIN)
            assert response.status_code == 401, (method, path)
            assert "Not signed in" in response.text

    def test_a_bad_token_gets_403(self, airflow: TestClient, plugin_state: PluginState) -> None:
        for method, path in routes(plugin_state):
            headers = {**ORIGIN, "Authorization": "Bearer not-a-jwt"}
            assert airflow.request(method, path, headers=headers).status_code == 403

    def test_a_viewer_sees_everything_and_can_trigger_nothing(
        self, airflow: TestClient, plugin_state: PluginState
    ) -> None:
        viewer = bearer("viewer")
        for method, path in routes(plugin_state):
            response = airflow.request(method, path, headers={**viewer, **ORIGIN})
            writes = path.endswith(("/rollback", "/promote"))
            assert response.status_code == (403 if writes else 200), (method, path)
        page = airflow.get(f"/retrain/models/{plugin_state.alpha}", headers=viewer).text
        assert "Roll back: production" not in page and "you may not trigger" in page
        dag_id = plugin_state.dag_id("retrain_rollback")
        before = len(dag_runs(dag_id))
        data = {"reason": "viewer", "request_id": "v" * 24, "expected_version": "2"}
        response = airflow.post(
            f"/retrain/models/{plugin_state.alpha}/rollback",
            data=data,
            headers={**viewer, **ORIGIN},
        )
        assert response.status_code == 403
        assert len(dag_runs(dag_id)) == before

    def test_an_admins_rollback_creates_a_real_dag_run_as_them(
        self, airflow: TestClient, plugin_state: PluginState
    ) -> None:
        admin = bearer("admin")
        model = f"/retrain/models/{plugin_state.alpha}"
        for method, path in routes(plugin_state):
            if method == "GET":
                assert airflow.get(path, headers=admin).status_code == 200, path
        page = airflow.get(model, headers=admin).text
        assert f'href="{model}/rollback"' in page  # the app's links carry the mount prefix
        assert f'href="/dags/retrain_pipeline__{plugin_state.alpha}" target="_top"' in page

        confirm = airflow.get(f"{model}/rollback", headers=admin)
        fields = hidden_fields(confirm.text)
        response = airflow.post(
            f"{model}/rollback",
            data={**fields, "reason": "error rate doubled after v2"},
            headers={**admin, **ORIGIN},
        )
        assert response.status_code == 303
        run_id = f"retrain_ui__{fields['request_id']}"
        assert response.headers["location"].startswith(f"{model}?action=rollback&run_id={run_id}")

        [run] = [r for r in dag_runs(plugin_state.dag_id("retrain_rollback")) if r.run_id == run_id]
        assert run.conf == {
            "reason": "error rate doubled after v2",
            "to_version": 1,
            "expected_version": 2,
        }
        assert run.triggered_by.value == "ui"
        assert run.triggering_user_name == "admin"
        shown = airflow.get(response.headers["location"], headers=admin)
        assert shown.status_code == 200 and run_id in shown.text
        assert f"/dags/retrain_rollback__{plugin_state.alpha}/runs/{run_id}" in shown.text

    def test_the_ui_cookie_works_and_cross_site_writes_are_refused(
        self, airflow: TestClient, plugin_state: PluginState
    ) -> None:
        model = f"/retrain/models/{plugin_state.alpha}"
        cookie = {"Cookie": f"_token={token('admin', 'cookie-admin')}"}
        assert airflow.get(model, headers=cookie).status_code == 200
        fields = hidden_fields(airflow.get(f"{model}/promote", headers=cookie).text)
        data = {**fields, "reason": "forged from another site"}
        evil = {**cookie, "Origin": "http://evil.example"}
        assert airflow.post(f"{model}/promote", data=data, headers=evil).status_code == 403
        no_origin = airflow.post(f"{model}/promote", data=data, headers=cookie)
        assert no_origin.status_code == 403, "a cookie alone is not enough without Origin"
        assert not [
            r
            for r in dag_runs(plugin_state.dag_id("retrain_promote"))
            if r.run_id == f"retrain_ui__{fields['request_id']}"
        ]
        ok = airflow.post(
            f"{model}/promote",
            data={**data, "reason": "canary healthy"},
            headers={**cookie, **ORIGIN},
        )
        assert ok.status_code == 303
        [run] = [
            r
            for r in dag_runs(plugin_state.dag_id("retrain_promote"))
            if r.run_id == f"retrain_ui__{fields['request_id']}"
        ]
        assert run.triggering_user_name == "cookie-admin" and run.conf["version"] == 3


def _load_plugin_file(monkeypatch: pytest.MonkeyPatch, installed: bool) -> ModuleType:
    """``plugins/retrain_plugin.py`` as Airflow loads it, with or without the entry point."""
    real = importlib.metadata.entry_points

    def entry_points(**kwargs: Any) -> Any:
        found = list(real(**kwargs))
        if kwargs.get("group") == "airflow.plugins":  # ours as asked, whatever the venv has
            found = [ep for ep in found if not ep.value.startswith("retrain_airflow.plugin")]
            if installed:
                found.append(
                    importlib.metadata.EntryPoint(
                        "retrain", "retrain_airflow.plugin:RetrainPlugin", "airflow.plugins"
                    )
                )
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    spec = importlib.util.spec_from_file_location("retrain_plugin_under_test", PLUGIN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestLoading:
    def test_the_plugins_folder_registers_it_only_without_the_entry_point(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow.plugins_manager import is_valid_plugin

        folder = _load_plugin_file(monkeypatch, installed=False)
        found = [v for v in vars(folder).values() if is_valid_plugin(v)]
        assert [p.name for p in found] == ["retrain"]
        entry = _load_plugin_file(monkeypatch, installed=True)
        assert not [v for v in vars(entry).values() if is_valid_plugin(v)]

    def test_pyproject_declares_the_entry_point(self) -> None:
        import tomllib

        project = tomllib.loads((af.REPO / "pyproject.toml").read_text(encoding="utf-8"))
        plugins = project["project"]["entry-points"]["airflow.plugins"]
        assert plugins == {"retrain": "retrain_airflow.plugin:RetrainPlugin"}

    def test_importing_the_plugin_loads_no_web_or_ml_stack(self, tmp_path: Path) -> None:
        code = (
            "import sys, json\n"
            "import retrain_airflow.plugin as p\n"
            "heavy = ('fastapi', 'mlflow', 'sklearn', 'pandas', 'retrain_airflow.plugin.app')\n"
            "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
        )
        env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        assert json.loads(result.stdout.strip().splitlines()[-1]) == []
