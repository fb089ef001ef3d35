"""The Retraining view's app with FastAPI's TestClient: the real pages on a real MLflow server and
the real actions on Airflow's metadata DB; only the signed-in user and their permissions are
dependency overrides (the real auth is in ``test_integration.py``)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.security import get_user
from fastapi import FastAPI
from fastapi.testclient import TestClient

from retrain_airflow.plugin import app as plugin_app
from retrain_airflow.plugin.render import SCRIPT as VIEW_SCRIPT
from tests.plugin.conftest import SCRIPT, PluginState, dag_runs, model_config

ORIGIN = {"Origin": "http://testserver"}


class Access:
    """Which DAGs the test user may trigger (``None``: all); reading is always allowed."""

    def __init__(self, may_trigger: set[str] | None = None) -> None:
        self.may_trigger = may_trigger
        self.asked: list[tuple[str, str]] = []

    def allowed(self, method: str, dag_id: str) -> bool:
        self.asked.append((method, dag_id))
        return method == "GET" or self.may_trigger is None or dag_id in self.may_trigger


@pytest.fixture
def access() -> Access:
    return Access()


@pytest.fixture
def app(access: Access) -> Iterator[FastAPI]:
    fresh = plugin_app.create_app.__wrapped__()  # not the cached app Airflow mounts
    fresh.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(
        username="alice", role="admin"
    )
    fresh.dependency_overrides[plugin_app.dag_access] = lambda: access
    yield fresh
    fresh.dependency_overrides.clear()


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app, root_path="/retrain", follow_redirects=False)


def form(client: TestClient, path: str) -> dict[str, str]:
    """The hidden fields of the confirmation form at ``path``."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))


def data_markup(page: str) -> str:
    """``page`` without the view's own script (what is left came from data or templates)."""
    assert page.count(f"<script>{VIEW_SCRIPT}</script>") == 1
    return page.replace(f"<script>{VIEW_SCRIPT}</script>", "")


def text_of(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


class TestPages:
    def test_the_model_list_shows_every_model_with_production_canary_and_last_run(
        self, client: TestClient, state: PluginState
    ) -> None:
        page = client.get("/")
        assert page.status_code == 200
        html = page.text
        assert f'href="/retrain/models/{state.alpha}"' in html
        assert f'href="/retrain/models/{state.empty}"' in html
        row = html.split(f">{state.alpha}</a>")[1].split("</tr>")[0]
        assert "v2" in row and "v3" in row and "retrain_20261130_001" in row  # newest run
        assert "rejected" in row
        assert state.broken_file.name in html and "Broken model configs" in html

    def test_the_model_page_answers_what_serves_what_served_and_why(
        self, client: TestClient, state: PluginState
    ) -> None:
        page = client.get(f"/models/{state.alpha}")
        assert page.status_code == 200, page.text
        html, text = page.text, text_of(page.text)
        serving = text.split("What serves now")[1].split("Actions")[0]
        assert "Production v2" in serving and "Canary v3" in serving
        assert "A rollback restores v1" in serving and "served before v2" in serving
        # versions with aliases, status and lineage
        versions = html.split('id="versions"')[1].split('id="timeline"')[0]
        for v in (1, 2, 3):
            assert f">v{v}</a>" in versions
        status = (
            r'>v(\d)</a>.*?<span class="badge [a-z]+">([a-z_]+)</span></td><td><span class="now'
        )
        statuses = dict(re.findall(status, versions))
        assert statuses == {"3": "canary", "2": "production", "1": "rolled_back"}
        assert "2024-01-15" in versions and "accuracy 0.913" in versions
        assert "retrain_001" in versions and "passed" in versions
        # production timeline: SVG + table with who, when, why
        timeline = html.split('id="timeline"')[1].split('id="log"')[0]
        assert "<svg" in timeline and timeline.count("<circle") == 4
        assert "carol" in timeline and "v2 was fine after all" in timeline and "bob" in timeline
        # the retraining log with links to the Airflow run and the MLflow run
        log = html.split('id="log"')[1].split('id="drift"')[0]
        dag_id = state.pipeline_run_key.split("/")[0]
        assert f'href="/dags/{dag_id}/runs/manual__2026-11-29T06%3A00%3A00%2B00%3A00"' in log
        assert 'target="_top"' in log
        assert f'href="{state.tracking_uri}/#/runs/{state.drift_run_id}"' in log
        assert "<details>" in log and "Gate passed" in log and "0.0123" in log  # checklist, A/B
        # drift: per-feature severity and the report
        drift = html.split('id="drift"')[1].split('id="canary"')[0]
        assert drift.index(">x1<") < drift.index(">segment<") < drift.index(">x2<")  # high first
        assert f"/retrain/models/{state.alpha}/drift-report?run_id={state.drift_run_id}" in drift
        # canary verdict with labels and interval, cadence and next runs
        canary = text_of(html.split('id="canary"')[1].split('id="cadence"')[0])
        assert "continue" in canary and "812" in canary and "[-0.0110, +0.0190]" in canary
        assert "<svg" in html.split('id="canary"')[1]
        cadence = text_of(html.split('id="cadence"')[1])
        assert "weekly" in cadence and "Next weekly run" in cadence
        assert "Next full rebuild" in cadence
        # actions: rollback and promote buttons, Run now to the pipeline DAG
        actions = html.split('id="actions"')[1].split('id="versions"')[0]
        assert "Roll back: production v2 → v1" in actions
        assert "Promote canary v3 to production" in actions
        assert f'href="/dags/retrain_pipeline__{state.alpha}" target="_top"' in actions

    def test_a_model_without_versions_has_a_page_and_nothing_to_roll_back(
        self, client: TestClient, state: PluginState
    ) -> None:
        page = client.get(f"/models/{state.empty}")
        assert page.status_code == 200
        assert "No version registered yet" in page.text
        assert "no version is in production" in page.text
        assert "Roll back:" not in page.text
        confirm = client.get(f"/models/{state.empty}/rollback")
        assert "Nothing to roll back to" in confirm.text and "<form" not in confirm.text

    def test_nothing_from_the_registry_or_the_log_is_rendered_unescaped(
        self, client: TestClient, state: PluginState
    ) -> None:
        page = client.get(f"/models/{state.alpha}")
        assert SCRIPT in html.unescape(page.text)  # shown, as text
        assert "<script" not in data_markup(page.text).lower()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        csp = page.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"].startswith("'sha256-")  # the view's own script only
        assert "unsafe" not in directives["script-src"]
        assert page.headers["x-content-type-options"] == "nosniff"

    def test_the_log_filters_by_status_trigger_and_mode(
        self, client: TestClient, state: PluginState
    ) -> None:
        def ids(query: str) -> set[str]:
            html = client.get(f"/models/{state.alpha}?{query}").text
            log = html.split('id="log"')[1].split('id="drift"')[0]
            return set(re.findall(r'<tr id="run-([^"]+)"', log))

        everything = {"retrain_20261129_001", "retrain_20261130_001", "retrain_20261128_001"}
        assert ids("") == everything
        assert ids("status=rejected") == {"retrain_20261130_001"}
        assert ids("trigger=scheduled") == {"retrain_20261129_001", "retrain_20261128_001"}
        assert ids("trigger=scheduled:weekly_retraining") == {"retrain_20261129_001"}
        assert ids("mode=full_rebuild") == {"retrain_20261128_001"}
        assert ids("status=deployed&mode=full_rebuild") == set()
        assert ids("limit=1") == {"retrain_20261130_001"}
        bad = client.get(f"/models/{state.alpha}?limit=0")
        assert bad.status_code == 422 and "limit" in bad.text and "Traceback" not in bad.text

    def test_each_run_has_a_page_with_its_full_record(
        self, client: TestClient, state: PluginState
    ) -> None:
        page = client.get(f"/models/{state.alpha}/runs/retrain_20261130_001")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "Gate failed" in text and "accuracy 0.71 < 0.85" in text  # gate reasons
        assert "0.0123" in text and "-0.042" in text  # A/B numbers
        assert "Checklist" in text and "Gate passed" in text and "not met" in text
        assert "<script" not in data_markup(page.text).lower()
        weekly = client.get(f"/models/{state.alpha}/runs/retrain_20261129_001").text
        assert f'href="{state.tracking_uri}/#/runs/{state.drift_run_id}"' in weekly
        assert f"/dags/retrain_pipeline__{state.alpha}/runs/manual__2026-11-29" in weekly
        assert client.get(f"/models/{state.alpha}/runs/retrain_nope").status_code == 404
        assert client.get(f"/models/{state.alpha}/runs/a%3Cb").status_code == 422

    def test_an_unknown_model_is_a_404_page(self, client: TestClient, state: PluginState) -> None:
        page = client.get("/models/nope")
        assert page.status_code == 404
        assert "no model &#x27;nope&#x27;" in page.text and state.alpha in page.text
        assert client.get("/no/such/page").status_code == 404

    def test_the_drift_report_is_served_sandboxed_and_only_for_the_models_runs(
        self, client: TestClient, state: PluginState
    ) -> None:
        url = f"/models/{state.alpha}/drift-report"
        report = client.get(url, params={"run_id": state.drift_run_id})
        assert report.status_code == 200
        assert "tenure drifted" in report.text
        csp = report.headers["content-security-policy"]
        assert csp.startswith("sandbox;") and "script-src" not in csp
        assert client.get(url, params={"run_id": state.foreign_run_id}).status_code == 404
        assert client.get(url, params={"run_id": "0" * 32}).status_code == 404
        assert client.get(url, params={"run_id": "../../etc"}).status_code == 422


class TestActions:
    def test_the_rollback_confirmation_says_which_version_will_serve(
        self, client: TestClient, state: PluginState
    ) -> None:
        page = client.get(f"/models/{state.alpha}/rollback")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "Production v2 → v1" in text and "v1 serves" in text
        assert f"retrain_rollback__{state.alpha}" in text
        fields = form(client, f"/models/{state.alpha}/rollback")
        assert fields["expected_version"] == "2" and fields["to_version"] == "1"
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}", fields["request_id"])
        assert form(client, f"/models/{state.alpha}/rollback")["request_id"] != fields["request_id"]

    def test_rollback_triggers_the_dag_as_the_user_once_per_request(
        self, client: TestClient, state: PluginState
    ) -> None:
        dag_id = state.dag_id("retrain_rollback")
        fields = form(client, f"/models/{state.alpha}/rollback")
        before = len(dag_runs(dag_id))
        data = {**fields, "reason": "  canary <b>errors</b> at 5%  "}

        first = client.post(f"/models/{state.alpha}/rollback", data=data, headers=ORIGIN)
        second = client.post(f"/models/{state.alpha}/rollback", data=data, headers=ORIGIN)

        assert first.status_code == second.status_code == 303
        run_id = f"retrain_ui__{fields['request_id']}"
        assert first.headers["location"] == (
            f"/retrain/models/{state.alpha}?action=rollback&run_id={run_id}"
        )
        assert second.headers["location"].endswith("&again=true")
        runs = dag_runs(dag_id)
        assert len(runs) == before + 1, "a double submit triggers one run"
        run = runs[-1]
        assert run.run_id == run_id
        assert run.conf == {
            "reason": "canary <b>errors</b> at 5%",
            "to_version": 1,
            "expected_version": 2,
        }
        assert run.triggered_by.value == "ui" and run.triggering_user_name == "alice"
        assert run.run_type == "manual" and run.state == "queued"

        shown = client.get(first.headers["location"])
        assert "Rollback triggered" in shown.text and run_id in shown.text
        assert '<meta http-equiv="refresh"' in shown.text  # until the run finishes
        assert "queued" in shown.text and "paused" in shown.text  # a paused DAG is flagged
        again = client.get(second.headers["location"])
        assert "already triggered" in again.text
        # nothing moved yet: the view never moves an alias itself
        assert "Production v2" in text_of(shown.text)

    def test_promote_triggers_the_promotion_dag_for_the_canary(
        self, client: TestClient, state: PluginState
    ) -> None:
        confirm = client.get(f"/models/{state.alpha}/promote")
        assert "Production v2 → v3" in text_of(confirm.text)
        fields = form(client, f"/models/{state.alpha}/promote")
        assert fields["version"] == "3"
        response = client.post(
            f"/models/{state.alpha}/promote",
            data={**fields, "reason": "canary healthy for 3 days"},
            headers=ORIGIN,
        )
        assert response.status_code == 303
        run = dag_runs(state.dag_id("retrain_promote"))[-1]
        assert run.run_id == f"retrain_ui__{fields['request_id']}"
        assert run.conf == {"reason": "canary healthy for 3 days", "version": 3}
        assert run.triggering_user_name == "alice"

    @pytest.mark.parametrize("reason", ["", "  no ", "x" * 501])
    def test_a_missing_or_bad_reason_shows_the_form_again_and_triggers_nothing(
        self, client: TestClient, state: PluginState, reason: str
    ) -> None:
        dag_id = state.dag_id("retrain_rollback")
        fields = form(client, f"/models/{state.alpha}/rollback")
        before = len(dag_runs(dag_id))
        response = client.post(
            f"/models/{state.alpha}/rollback", data={**fields, "reason": reason}, headers=ORIGIN
        )
        assert response.status_code == 422
        assert "<form" in response.text and fields["request_id"] in response.text
        assert "reason" in response.text.lower()
        assert len(dag_runs(dag_id)) == before

    def test_a_malformed_request_id_or_version_is_refused(
        self, client: TestClient, state: PluginState
    ) -> None:
        fields = form(client, f"/models/{state.alpha}/rollback")
        url = f"/models/{state.alpha}/rollback"
        for bad in ({"request_id": "x"}, {"request_id": ""}, {"expected_version": "two"}):
            data = {**fields, "reason": "a good reason", **bad}
            assert client.post(url, data=data, headers=ORIGIN).status_code == 400

    def test_writes_from_another_site_are_refused(
        self, client: TestClient, state: PluginState
    ) -> None:
        dag_id = state.dag_id("retrain_rollback")
        url = f"/models/{state.alpha}/rollback"
        before = len(dag_runs(dag_id))
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Referer": "http://evil.example/page"},
            {},  # neither header, and no bearer token
        ):
            data = {**form(client, url), "reason": "cross-site attempt"}
            response = client.post(url, data=data, headers=headers)
            assert response.status_code == 403, headers
            assert "refused" in response.text
        assert len(dag_runs(dag_id)) == before
        same_site = {"Referer": f"http://testserver/retrain/models/{state.alpha}/rollback"}
        data = {**form(client, url), "reason": "from the confirmation page"}
        assert client.post(url, data=data, headers=same_site).status_code == 303
        api = {"Authorization": "Bearer a-token"}  # an API client: no browser, no Origin
        data = {**form(client, url), "reason": "from a script"}
        assert client.post(url, data=data, headers=api).status_code == 303
        assert len(dag_runs(dag_id)) == before + 2

    def test_a_user_who_may_not_trigger_sees_no_buttons_and_gets_403(
        self, app: FastAPI, client: TestClient, state: PluginState
    ) -> None:
        app.dependency_overrides[plugin_app.dag_access] = lambda: Access(may_trigger=set())
        page = client.get(f"/models/{state.alpha}")
        assert page.status_code == 200
        assert "Roll back: production" not in page.text and "Promote canary v3 to" not in page.text
        assert f"you may not trigger retrain_rollback__{state.alpha}" in page.text
        dag_id = state.dag_id("retrain_rollback")
        before = len(dag_runs(dag_id))
        for kind in ("rollback", "promote"):
            assert client.get(f"/models/{state.alpha}/{kind}").status_code == 403
            data = {"reason": "not allowed", "request_id": "r" * 24, "expected_version": "2"}
            data["version"] = "3"
            response = client.post(f"/models/{state.alpha}/{kind}", data=data, headers=ORIGIN)
            assert response.status_code == 403
        assert len(dag_runs(dag_id)) == before

    def test_the_permission_is_checked_on_the_dag_the_action_triggers(
        self, app: FastAPI, client: TestClient, access: Access, state: PluginState
    ) -> None:
        only_promote = Access(may_trigger={state.dag_id("retrain_promote")})
        app.dependency_overrides[plugin_app.dag_access] = lambda: only_promote
        assert client.get(f"/models/{state.alpha}/rollback").status_code == 403
        assert client.get(f"/models/{state.alpha}/promote").status_code == 200
        assert ("POST", state.dag_id("retrain_rollback")) in only_promote.asked


class TestErrors:
    def test_an_unreachable_mlflow_is_a_clear_503_page(
        self, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        name = "down-model"
        data = model_config(name, "http://user:s3cret-pw@127.0.0.1:1", tmp_path)
        data["registry"]["max_retries"] = 0
        config = tmp_path / "down.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        monkeypatch.setenv("RETRAIN_CONFIG", str(config))

        page = client.get(f"/models/{name}")
        assert page.status_code == 503
        assert "MLflow is unreachable" in page.text and "127.0.0.1:1" in page.text
        assert "s3cret-pw" not in page.text and "Traceback" not in page.text
        listing = client.get("/")
        assert listing.status_code == 503
        assert "unreachable" in listing.text and "s3cret-pw" not in listing.text

    def test_a_broken_config_is_a_clear_500_page(
        self, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = tmp_path / "bad.yaml"
        config.write_text("model: {name: x, target: 3}\n", encoding="utf-8")
        monkeypatch.setenv("RETRAIN_CONFIG", str(config))
        for path in ("/", "/models/x"):
            page = client.get(path)
            assert page.status_code == 500
            assert "The retrain config is broken" in page.text and "Traceback" not in page.text

    def test_a_broken_model_file_of_a_directory_names_its_error(
        self, client: TestClient, state: PluginState
    ) -> None:
        page = client.get(f"/models/{state.broken_file.stem}")
        assert page.status_code == 500 and "The retrain config is broken" in page.text

    def test_an_unexpected_error_is_a_page_not_a_traceback(
        self, app: FastAPI, client: TestClient, state: PluginState
    ) -> None:
        class Broken:
            def overview(self, config: Any, *, records: int) -> Any:
                raise RuntimeError("boom <b>")

        app.dependency_overrides[plugin_app.overview_source] = Broken
        page = client.get(f"/models/{state.alpha}")
        assert page.status_code == 500
        assert "RuntimeError (reference " in page.text and "Traceback" not in page.text
        assert "boom" not in page.text, "the exception's text goes to the log, not the page"

    def test_airflow_refusing_the_run_is_a_page(
        self, app: FastAPI, client: TestClient, state: PluginState
    ) -> None:
        from retrain_airflow.plugin.actions import AirflowRuns

        class NoDag(AirflowRuns):
            def trigger(self, dag_id: str, **kwargs: Any) -> Any:
                return super().trigger("retrain_rollback__no-such-model", **kwargs)

        app.dependency_overrides[plugin_app.run_store] = NoDag
        data = {**form(client, f"/models/{state.alpha}/rollback"), "reason": "no such DAG"}
        response = client.post(f"/models/{state.alpha}/rollback", data=data, headers=ORIGIN)
        assert response.status_code == 409
        assert "not in Airflow&#x27;s database" in response.text

    def test_without_a_user_every_route_is_401(self, app: FastAPI, state: PluginState) -> None:
        app.dependency_overrides.pop(get_user)
        anonymous = TestClient(app, follow_redirects=False)
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", "/", anonymous.get),
            ("GET", f"/models/{state.alpha}", anonymous.get),
            ("GET", f"/models/{state.alpha}/rollback", anonymous.get),
            ("GET", f"/models/{state.alpha}/promote", anonymous.get),
            ("GET", f"/models/{state.alpha}/drift-report?run_id=x", anonymous.get),
            ("POST", f"/models/{state.alpha}/rollback", anonymous.post),
            ("POST", f"/models/{state.alpha}/promote", anonymous.post),
        ]
        for method, path, call in routes:
            response = call(path, headers=ORIGIN)
            assert response.status_code == 401, (method, path)
            assert "Not signed in" in response.text
