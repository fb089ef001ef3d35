"""The view's HTML from in-memory data: escaping everywhere, links, charts, what is shown when."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest

from retrain.log import RetrainingRecord
from retrain.overview import DriftView, ModelOverview, ProductionChange, VersionRow
from retrain_airflow.plugin.render import (
    SCRIPT,
    SCRIPT_CSP,
    DagRunView,
    Links,
    LogFilter,
    ModelActions,
    PageContext,
    confirm_page,
    error_page,
    interval_svg,
    mlflow_ui_base,
    model_page,
    record_page,
    timeline_svg,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
DAGS = {
    "rollback": "retrain_rollback",
    "promote": "retrain_promote",
    "pipeline": "retrain_pipeline",
    "full_rebuild": "retrain_full_rebuild",
}
CTX = PageContext(Links("/retrain", "", "http://127.0.0.1:5000"), f"eve{EVIL}", NOW)


def change(at: str, op: str, old: int | None, new: int | None, reason: str = "r") -> Any:
    return ProductionChange(at, op, old, new, f"actor{EVIL}", reason, None)


def record(retraining_id: str = "retrain_1", **fields: Any) -> RetrainingRecord:
    base: dict[str, Any] = {
        "retraining_id": retraining_id,
        "trigger": "manual",
        "start_time": "2026-11-30T06:00:00+00:00",
        "status": "deployed",
    }
    return RetrainingRecord(**{**base, **fields})


def overview(**fields: Any) -> ModelOverview:
    version = VersionRow(
        version=2,
        aliases=("production", f"a{EVIL}"),
        status=f"s{EVIL}",
        created_at=f"t{EVIL}",
        data_version=f"d{EVIL}",
        retraining_id=f"r{EVIL}",
        git_commit=f"g{EVIL}",
        gate=f"gate{EVIL}",
        metrics={f"m{EVIL}": 0.5},
        trigger_reasons=(f"why{EVIL}",),
        run_id=None,
    )
    evil_record = record(
        f"id{EVIL}",
        trigger=f"tr{EVIL}",
        status=f"st{EVIL}",
        mode=f"mo{EVIL}",
        notes=f"notes{EVIL}",
        error=f"err{EVIL}",
        failed_step=f"step{EVIL}",
        trigger_reasons=[f"reason{EVIL}"],
        run_key=f"dag{EVIL}/run{EVIL}",
        mlflow_run_id=f"run{EVIL}",
        gate={"status": f"gs{EVIL}", "reasons": [f"gr{EVIL}"], "suspicions": [f"su{EVIL}"],
              "checks": [{"check": f"c{EVIL}", "value": f"v{EVIL}", "passed": False}]},
        ab_test={"winner": f"w{EVIL}", f"k{EVIL}": f"v{EVIL}", "reasons": [f"ab{EVIL}"]},
        checklist=[{"key": "k", "title": f"ti{EVIL}", "passed": True, "evidence": f"ev{EVIL}",
                    "required_for": f"rf{EVIL}"}],
        drift={"drift_share": 0.1, f"x{EVIL}": [f"y{EVIL}"]},
        online={"decision": f"de{EVIL}"},
        deployment={f"dep{EVIL}": {"nested": EVIL}},
    )  # fmt: skip
    data: dict[str, Any] = {
        "model": "m1",
        "production": 2,
        "canary": 3,
        "rollback_to": 1,
        "rollback_note": "",
        "versions": (version,),
        "timeline": (
            change("2026-11-20T10:00:00+00:00", "rollback", 3, 2, f"because{EVIL}"),
            change("2026-11-10T10:00:00+00:00", "promote", 2, 3),
            change("2026-11-01T10:00:00+00:00", "promote", None, 2),
        ),
        "records": (evil_record, record("retrain_2", status="rejected", mode="weekly")),
        "drift": DriftView(f"id{EVIL}", "2026-11-30T00:00:00+00:00", 1, 0.5,
                           {f"f{EVIL}": f"high{EVIL}", "b": "high", "a": "none"}, f"r{EVIL}"),
        "canary_verdict": {"decision": f"de{EVIL}", "action": f"ac{EVIL}", "d_hat": 0.01,
                           "interval": [-0.02, 0.04], "reasons": [f"re{EVIL}"]},
        "cadence": {f"c{EVIL}": f"v{EVIL}", "reasons": [f"cr{EVIL}"]},
        "next_runs": {"weekly": "2026-12-07T06:00:00+00:00", f"k{EVIL}": f"v{EVIL}"},
        "problems": (f"problem{EVIL}",),
    }  # fmt: skip
    data.update(fields)
    return ModelOverview(**data)


def actions(**fields: Any) -> ModelActions:
    return ModelActions(**{"dags": DAGS, "allowed": frozenset({"rollback", "promote"}), **fields})


class Tags(HTMLParser):
    """Every tag and attribute name of a page, as a browser's parser sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.scripts: list[str] = []
        self.in_script = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        self.in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.scripts.append(data)


def assert_no_markup_from_data(page: str) -> None:
    parsed = Tags(page)
    assert parsed.scripts == [SCRIPT], "the view's own script only"
    assert not parsed.tags & {"img", "iframe", "object", "embed"}, parsed.tags
    assert not {a for a in parsed.attributes if a.startswith("on")}, parsed.attributes
    assert html.escape(EVIL, quote=True) in page


class TestEscaping:
    def test_every_field_of_the_model_page_is_escaped(self) -> None:
        run = DagRunView(
            "retrain_rollback", f"run{EVIL}", f"st{EVIL}", f"t{EVIL}", f"ui{EVIL}", f"u{EVIL}",
            {"reason": f"why{EVIL}"}, f"note{EVIL}",
        )  # fmt: skip
        page = model_page(
            overview(),
            CTX,
            actions=actions(dag_problems={f"dag{EVIL}": f"problem{EVIL}"}),
            log_filter=LogFilter(status=f"s{EVIL}", trigger=f"t{EVIL}", mode=f"m{EVIL}"),
            triggered=run,
            recent=[run],
            problems=[f"extra{EVIL}"],
        )
        assert_no_markup_from_data(page)
        for expected in ("problem", "because", "why", "actor"):
            assert html.escape(f"{expected}{EVIL}", quote=True) in page

    def test_the_record_confirm_and_error_pages_are_escaped(self) -> None:
        evil_record = overview().records[0]
        assert_no_markup_from_data(record_page(evil_record, "m1", CTX))
        for kind in ("rollback", "promote"):
            page = confirm_page(
                overview(), CTX, kind=kind, dag_id=f"d{EVIL}", request_id=f"q{EVIL}",
                reason=f"r{EVIL}", error=f"e{EVIL}", dag_problem=f"p{EVIL}",
            )  # fmt: skip
            assert_no_markup_from_data(page)
            assert f"</textarea>{EVIL}" not in page
        assert_no_markup_from_data(error_page(503, f"t{EVIL}", f"m{EVIL}", CTX))

    def test_urls_from_data_are_quoted_and_never_javascript(self) -> None:
        links = Links("/retrain", "", mlflow_ui_base("javascript:alert(1)//"))
        assert links.mlflow is None and links.mlflow_run("x") is None
        assert links.run_key('d"/r <x>') == "/dags/d%22/runs/r%20%3Cx%3E"
        assert links.model("a/b?c") == "/retrain/models/a%2Fb%3Fc"


class TestScript:
    def test_the_only_script_is_allowed_by_its_hash(self) -> None:
        import base64
        import hashlib

        digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
        assert f"'sha256-{digest}'" == SCRIPT_CSP
        page = model_page(overview(), CTX, actions=actions())
        assert page.count("<script>") == 1 and f"<script>{SCRIPT}</script>" in page

    def test_links_to_airflow_pages_are_marked_for_it(self) -> None:
        page = model_page(overview(), CTX, actions=actions())
        marked = re.findall(r'<a [^>]*href="([^"]+)"[^>]*data-airflow', page)
        assert marked and all(href.startswith("/dags/") for href in marked)
        assert not re.findall(r'<a [^>]*href="/retrain[^"]*"[^>]*data-airflow', page)


class TestLinks:
    @pytest.mark.parametrize(
        ("uri", "base"),
        [
            ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
            (
                "https://user:secret@mlflow.example/prefix/?token=abc#x",
                "https://mlflow.example/prefix",
            ),
            ("http://[::1]:5000/", "http://[::1]:5000"),
            ("sqlite:///tmp/mlflow.db", None),
            ("file:///tmp/mlruns", None),
            ("databricks", None),
        ],
    )
    def test_the_mlflow_ui_base_drops_credentials_and_non_http_stores(
        self, uri: str, base: str | None
    ) -> None:
        assert mlflow_ui_base(uri) == base

    def test_airflow_links_follow_the_mount_point(self) -> None:
        behind = Links("/airflow/retrain", "/airflow", None)
        assert behind.airflow_run("d", "manual__2026-01-01T00:00:00+00:00") == (
            "/airflow/dags/d/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00"
        )
        assert behind.run_key("cli-20260101") is None
        assert behind.record("m", "retrain_1") == "/airflow/retrain/models/m/runs/retrain_1"


class TestSections:
    def test_buttons_only_for_what_the_user_may_trigger(self) -> None:
        allowed = model_page(overview(), CTX, actions=actions())
        assert 'href="/retrain/models/m1/rollback"' in allowed
        assert 'href="/retrain/models/m1/promote"' in allowed
        denied = model_page(overview(), CTX, actions=actions(allowed=frozenset()))
        assert "/retrain/models/m1/rollback" not in denied
        assert "/retrain/models/m1/promote" not in denied
        assert "you may not trigger retrain_rollback" in denied
        no_canary = model_page(overview(canary=None), CTX, actions=actions())
        assert "/retrain/models/m1/promote" not in no_canary

    def test_nothing_to_roll_back_says_why(self) -> None:
        ov = overview(rollback_to=None, rollback_note="version 2 is the first production version")
        page = model_page(ov, CTX, actions=actions())
        assert "/retrain/models/m1/rollback" not in page
        assert "version 2 is the first production version" in page
        confirm = confirm_page(ov, CTX, kind="rollback", dag_id="d", request_id="q" * 24)
        assert "Nothing to roll back to" in confirm and "<form" not in confirm

    def test_the_page_reloads_only_while_the_triggered_run_is_unfinished(self) -> None:
        def page(state: str) -> str:
            run = DagRunView("retrain_rollback", "retrain_ui__x", state)
            return model_page(overview(), CTX, actions=actions(), triggered=run)

        assert 'http-equiv="refresh"' in page("queued") and 'http-equiv="refresh"' in page(
            "running"
        )
        assert 'http-equiv="refresh"' not in page("success")
        assert "the state below is the new one" in page("success")
        assert "It failed" in page("failed")
        assert 'http-equiv="refresh"' not in model_page(overview(), CTX, actions=actions())

    def test_compact_log_rows_link_to_their_record_page(self) -> None:
        full = record(
            "retrain_full",
            run_key="retrain_pipeline/manual__1",
            gate={"status": "passed", "reasons": ["accuracy 0.9 >= threshold 0.85"], "checks": []},
        )
        # as the log lists it: links and the gate's status, no details to unfold
        compact = record(
            "retrain_compact", run_key="retrain_pipeline/manual__2", gate={"status": "failed"}
        )
        page = model_page(overview(records=(full, compact)), CTX, actions=actions())
        rows = dict(re.findall(r'<tr id="run-([^"]+)">(.*?)</tr>', page, flags=re.S))
        assert (
            "<details>" in rows["retrain_full"]
            and "/dags/retrain_pipeline/runs/" in rows["retrain_full"]
        )
        assert "<details>" not in rows["retrain_compact"]
        assert "/dags/retrain_pipeline/runs/manual__2" in rows["retrain_compact"]
        assert 'href="/retrain/models/m1/runs/retrain_compact"' in rows["retrain_compact"]

    def test_a_rebuilds_record_shows_its_search_and_tests(self) -> None:
        from retrain_airflow.plugin.render import record_page

        rebuilt = record(
            "retrain_rebuild",
            search={
                "method": "halving_random",
                "candidates": 20,
                "fits": 96,
                "seconds": 12.5,
                "scoring": "accuracy",
                "best_score": 0.91,
                "configured_score": 0.9,
                "chosen": "search",
                "best_params": {"learning_rate": 0.05},
                "configured_params": {"learning_rate": 0.1},
            },
            rebuild_tests={
                "items": [{"name": "slices", "passed": False, "detail": "worse: <b>x</b>"}],
                "not_run": [],
            },
        )
        page = record_page(rebuilt, "m1", CTX)
        assert "Hyperparameter search" in page and "halving_random: 20 candidates" in page
        assert "Full rebuild: comprehensive tests" in page and "FAILED" in page
        assert "worse: &lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page

    def test_log_filter_matches_status_trigger_kind_and_mode(self) -> None:
        rule = record(trigger="scheduled:weekly_retraining", mode="weekly")
        assert LogFilter(trigger="scheduled").keeps(rule)
        assert LogFilter(trigger="scheduled:weekly_retraining").keeps(rule)
        assert not LogFilter(trigger="sched").keeps(rule)
        assert not LogFilter(mode="full_rebuild").keeps(rule)
        assert not LogFilter(status="failed").keeps(rule)
        assert not LogFilter(mode="weekly").keeps(record(mode=None))

    def test_an_unfinished_action_run_is_flagged(self) -> None:
        queued = DagRunView("retrain_rollback", "retrain_ui__other", "queued")
        page = model_page(overview(), CTX, actions=actions(), recent=[queued])
        assert "Not finished yet: retrain_rollback retrain_ui__other (queued)" in page
        done = DagRunView("retrain_rollback", "retrain_ui__other", "success")
        assert "Not finished yet" not in model_page(
            overview(), CTX, actions=actions(), recent=[done]
        )

    def test_drift_features_are_listed_most_severe_first(self) -> None:
        page = model_page(overview(), CTX, actions=actions())
        drift = page.split('id="drift"')[1].split('id="canary"')[0]
        assert drift.index(">b<") < drift.index(">a<")
        assert "/retrain/models/m1/drift-report?run_id=" in drift


class TestCharts:
    def test_the_timeline_has_a_dot_per_move_with_who_and_why(self) -> None:
        moves = overview().timeline
        svg = timeline_svg(moves, NOW)
        assert svg.count("<circle") == 3
        titles = re.findall(r"<title>(.*?)</title>", svg)
        assert "rollback v3 → v2" in html.unescape(titles[-1]) and "because" in titles[-1]
        assert "<script" not in svg.lower()
        assert timeline_svg((), NOW) == ""
        one = timeline_svg((change("2026-11-01T00:00:00+00:00", "promote", None, 1),), NOW)
        assert one.count("<circle") == 1

    def test_a_production_removed_and_unparsable_times_do_not_break_it(self) -> None:
        moves = (
            change("not a time", "promote", 1, 2),
            change("2026-11-02T00:00:00+00:00", "retire", 1, None),
            change("2026-11-01T00:00:00+00:00", "promote", None, 1),
        )
        svg = timeline_svg(moves, NOW)
        assert svg.count("<circle") == 1 and "<path" in svg

    def test_the_interval_chart_marks_zero_and_the_bounds(self) -> None:
        svg = interval_svg(-0.02, 0.04, 0.01)
        assert "-0.020" in svg and "+0.040" in svg and svg.count("<circle") == 1
        assert "<svg" in interval_svg(float("nan"), 0.0, 0.0)


def test_the_judges_looks_are_a_band_over_time() -> None:
    from datetime import UTC, datetime

    from retrain.canary import CanaryEvaluation, Decision
    from retrain_airflow.plugin.render import looks_svg

    looks = [
        CanaryEvaluation(
            decision=Decision.CONTINUE,
            d_hat=d,
            lower=d - h,
            upper=d + h,
            production_labels=9 * n,
            canary_labels=n,
            reasons=(),
            at=datetime(2026, 11, 30, tzinfo=UTC),
            elapsed_minutes=0.0,
            margin=0.01,
        )
        for d, h, n in [(0.0, 0.2, 50), (0.01, 0.05, 400), (0.012, 0.015, 900)]
    ]
    svg = looks_svg(looks)
    assert svg.startswith("<svg") and svg.count("<polygon") == 1 and "look 3" in svg
    assert "900 canary labels" in svg and "-0.01" in svg
