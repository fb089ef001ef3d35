"""Many models in one Airflow: a config directory yields five DAGs per model, isolated.

Real Airflow 3.3 (SQLite metadata DB, the repo's ``dags/`` files) against a real MLflow server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.config import RetrainConfig, load_catalog
from retrain.errors import ConfigError
from retrain.log import LogStore
from retrain.registry import ModelRegistry
from retrain_airflow.dags import pools
from tests import airflow_harness as af
from tests.helpers import churn_sections, production
from tools import local_runner
from tools.synthetic import StreamSpec, generate_week, write_stream

KINDS = (
    "retrain_pipeline",
    "retrain_full_rebuild",
    "retrain_monitor",
    "retrain_rollback",
    "retrain_promote",
)
SPEC = StreamSpec(weeks=6, rows_per_week=1500, drift_week=None)
WEEK = timedelta(weeks=1)
HEAVY = ("pandas", "sklearn", "mlflow", "scipy", "pyarrow", "matplotlib", "numpy")


@pytest.fixture(scope="module")
def airflow_db() -> None:
    af.migrate()


def model_file(target_schedule: str | None = None, **sections: Any) -> dict[str, Any]:
    model = churn_sections("unused", params={"max_iter": 40})["model"]
    data: dict[str, Any] = {"model": model, **sections}
    if target_schedule:
        data["schedule"] = {"weekly": target_schedule, "monitor": "15 * * * *"}
    return data


def write_models(root: Path, defaults: dict[str, Any], models: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "defaults.yaml").write_text(yaml.safe_dump(defaults), encoding="utf-8")
    for name, data in models.items():
        text = data if isinstance(data, str) else yaml.safe_dump(data)
        (root / f"{name}.yaml").write_text(text, encoding="utf-8")
    return root


def defaults_for(data: Path, tmp_path: Path, tracking_uri: str = "http://127.0.0.1:1") -> dict:
    sections = churn_sections(
        data,
        data={"training_window_days": 21},
        registry={"tracking_uri": tracking_uri},
        storage={"work_dir": str(tmp_path / "work")},
        triggers={"cooldown_hours": 0},
        schedule={"retries": 0, "weekly": "0 6 * * 1", "full_rebuild": "0 21 * * 0#1"},
    )
    sections.pop("model")
    return sections


def dag_ids(models: list[str]) -> set[str]:
    return {f"{kind}__{model}" for kind in KINDS for model in models}


@pytest.fixture
def three_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_models(
        tmp_path / "models",
        defaults_for(tmp_path / "events", tmp_path),
        {"alpha": model_file(), "beta": model_file(), "gamma": model_file("30 2 * * *")},
    )
    monkeypatch.setenv("RETRAIN_CONFIG", str(root))
    return root


class TestGeneratedDags:
    def test_three_models_yield_fifteen_dags(self, airflow_db: None, three_models: Path) -> None:
        bag = af.dagbag()
        assert bag.import_errors == {}
        assert set(bag.dags) == dag_ids(["alpha", "beta", "gamma"])
        for model in ("alpha", "beta", "gamma"):
            pipeline = bag.dags[f"retrain_pipeline__{model}"]
            monitor = bag.dags[f"retrain_monitor__{model}"]
            assert model in pipeline.tags and "retrain" in pipeline.tags
            # schedules: the shared default, or the model's own override
            cron = "30 2 * * *" if model == "gamma" else "0 6 * * 1"
            assert pipeline.timetable.timetable.expression == cron
            # the full rebuild: the same tasks, its own schedule, the same registry pool
            rebuild = bag.dags[f"retrain_full_rebuild__{model}"]
            assert rebuild.timetable.expression == "0 21 * * 0#1"
            assert set(rebuild.task_dict) == set(pipeline.task_dict)
            assert rebuild.get_task("start").pool == f"retrain_registry__{model}"
            assert monitor.timetable.expression == (
                "15 * * * *" if model == "gamma" else "0 * * * *"
            )
            # assets per model: the monitor emits, the pipeline consumes its own model's
            consumed = {a.uri for a in pipeline.timetable.asset_condition.objects}
            assert consumed == {
                f"retrain://{model}/{k}" for k in ("drift", "volume", "performance")
            }
            emitted = {a.uri for t in monitor.tasks for a in t.outlets}
            assert emitted == consumed
            # one registry pool per model, used by every registry write of that model
            pool = f"retrain_registry__{model}"
            assert pipeline.get_task("deploy").pool == pool
            assert bag.dags[f"retrain_rollback__{model}"].get_task("rollback").pool == pool
            assert bag.dags[f"retrain_promote__{model}"].get_task("promote").pool == pool
            assert pipeline.get_task("train").pool == "default_pool"
        assert set(pools(three_models)) == {
            "retrain_registry__alpha",
            "retrain_registry__beta",
            "retrain_registry__gamma",
        }

    def test_every_task_sees_the_trigger_forms_params(
        self, airflow_db: None, three_models: Path
    ) -> None:
        """The params go on the DAG after its tasks (parse time); a task still gets them."""
        from airflow.sdk.definitions.param import process_params

        pipeline = af.dagbag().dags["retrain_pipeline__alpha"]
        assert "target_stage" in pipeline.params
        for task in pipeline.tasks:
            got = process_params(pipeline, task, {"force": True}, suppress_exception=False)
            assert got["force"] is True and got["target_stage"] == "production", task.task_id
            assert got["as_of"] is None and got["window_days"] is None

    def test_the_dag_files_read_only_the_yaml_files_and_import_nothing_heavy(
        self, three_models: Path
    ) -> None:
        code = (
            "import json, os, sys\n"
            "from airflow.dag_processing.dagbag import DagBag\n"
            "opened = []\n"
            "def hook(event, args):\n"
            "    if event == 'open' and args and isinstance(args[0], (str, bytes, os.PathLike)):\n"
            "        opened.append(os.path.abspath(os.fsdecode(args[0])))\n"
            "sys.addaudithook(hook)\n"
            f"bag = DagBag(dag_folder={str(af.DAGS)!r})\n"
            "assert not bag.import_errors, bag.import_errors\n"
            "code = ('.py', '.pyc', '.so', '.pth', '.typed')\n"
            "skip = (sys.prefix, sys.base_prefix, '/usr/share/zoneinfo')\n"
            "data = sorted({p for p in opened if not p.endswith(code)\n"
            "               and not p.startswith(skip)})\n"
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "print(json.dumps({'data': data, 'heavy': heavy, 'dags': len(bag.dags)}))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["dags"] == 15
        assert report["heavy"] == []
        yaml_files = sorted(str(p) for p in three_models.glob("*.yaml"))
        assert report["data"] == yaml_files, "parsing reads the YAML files and nothing else"

    def test_a_broken_model_file_leaves_the_others_loading(
        self, airflow_db: None, three_models: Path
    ) -> None:
        broken = three_models / "delta.yaml"
        broken.write_text(
            yaml.safe_dump(model_file(evaluation={"thresholds": {"accuracy": 3}})),
            encoding="utf-8",
        )
        bag = af.dagbag()
        assert bag.import_errors == {}
        error_dag = bag.dags["retrain_config_error__delta"]
        assert set(bag.dags) == dag_ids(["alpha", "beta", "gamma"]) | {error_dag.dag_id}
        assert "delta.yaml" in error_dag.description
        assert "evaluation.thresholds.accuracy" in error_dag.description
        assert "config-error" in error_dag.tags
        assert str(broken) in error_dag.doc_md
        task = error_dag.get_task("config_error")
        with pytest.raises(ConfigError, match=r"delta\.yaml: evaluation\.thresholds\.accuracy"):
            task.python_callable()

    def test_a_broken_defaults_file_is_an_import_error_naming_it(
        self, airflow_db: None, three_models: Path
    ) -> None:
        (three_models / "defaults.yaml").write_text("data: [unclosed\n", encoding="utf-8")
        bag = af.dagbag()
        files = {str(p) for p in af.DAGS.glob("*.py")}
        assert set(bag.import_errors) == files, "every DAG file reports it"
        for message in bag.import_errors.values():
            assert "defaults.yaml" in message and "invalid YAML" in message

    def test_a_single_file_keeps_todays_ids_and_pool(
        self, airflow_db: None, three_models: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        config = load_catalog(three_models).configs["alpha"]
        file = three_models.parent / "one.yaml"
        data = config.model_dump(mode="json", by_alias=True, exclude={"source_path"})
        file.write_text(yaml.safe_dump(data), encoding="utf-8")
        monkeypatch.setenv("RETRAIN_CONFIG", str(file))
        bag = af.dagbag()
        assert set(bag.dags) == set(KINDS)
        assert bag.dags["retrain_pipeline"].get_task("deploy").pool == "retrain_registry"
        assert list(pools(file)) == ["retrain_registry"]


# --- two models running at once against one MLflow server ---------------------------------------

RUNNER = """
import json, sys
from tests import airflow_harness as af
af.configure_environment()
dag = af.get_dag(sys.argv[1])
run = dag.test(run_conf=json.loads(sys.argv[2]))
print("RESULT " + json.dumps({"state": str(run.state), "record": af.xcom(run, "finish"),
                              "states": af.states(run)}, default=str))
"""


def run_concurrently(jobs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``dag.test()`` of each ``{dag_id: conf}`` in its own process, all at once."""

    def one(dag_id: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, dag_id, json.dumps(jobs[dag_id])],
            capture_output=True,
            text=True,
            cwd=af.REPO,
            env=os.environ.copy(),
            timeout=600,
            check=False,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"{dag_id} printed no result:\n{result.stderr[-3000:]}"
        report: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
        return report

    with ThreadPoolExecutor(len(jobs)) as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))


def statuses(config: RetrainConfig) -> list[str]:
    store = LogStore.of(config)
    return [str(record.status) for record in store.records()]


class TestTwoModelsAtOnce:
    def test_concurrent_runs_failures_and_rollback_stay_within_their_model(
        self,
        airflow_db: None,
        tmp_path: Path,
        tracking_uri: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        data = tmp_path / "events"
        write_stream(data, SPEC)
        tag = uuid.uuid4().hex[:6]
        a, b = f"ma-{tag}", f"mb-{tag}"
        root = write_models(
            tmp_path / "models",
            defaults_for(data, tmp_path, tracking_uri),
            {a: model_file(), b: model_file()},
        )
        monkeypatch.setenv("RETRAIN_CONFIG", str(root))
        local_runner.reserialize()  # the DAGs and assets exist before two processes run them
        assert local_runner.create_pools(root) == [f"retrain_registry__{m}" for m in (a, b)]
        catalog = load_catalog(root)
        config_a, config_b = catalog.configs[a], catalog.configs[b]
        at = (SPEC.start + 4 * WEEK).isoformat()

        # both models retrain at the same time: each ends with its own production v1
        first = run_concurrently(
            {
                f"retrain_pipeline__{a}": {"force": True, "reason": "first model", "as_of": at},
                f"retrain_pipeline__{b}": {"force": True, "reason": "first model", "as_of": at},
            }
        )
        for dag_id, report in first.items():
            assert report["state"] == "success", (dag_id, report["states"])
            assert report["record"]["status"] == "deployed"
            assert report["record"]["model_version"] == "1"
        assert [len(ModelRegistry(c).versions()) for c in (config_a, config_b)] == [1, 1]
        assert (production(config_a), production(config_b)) == (1, 1)

        # b's data loses a column: b's run fails while a's runs; a is untouched by it
        bad = tmp_path / "bad"
        bad.mkdir()
        generate_week(SPEC, 4).drop(columns=["tenure"]).to_parquet(bad / "w.parquet")
        broken_b = model_file(data={"source": {**defaults_for(bad, tmp_path)["data"]["source"]}})
        (root / f"{b}.yaml").write_text(yaml.safe_dump(broken_b), encoding="utf-8")
        local_runner.reserialize()
        later = (SPEC.start + 5 * WEEK).isoformat()
        second = run_concurrently(
            {
                f"retrain_pipeline__{a}": {"force": True, "reason": "weekly", "as_of": later},
                f"retrain_pipeline__{b}": {"as_of": later},
            }
        )
        assert second[f"retrain_pipeline__{a}"]["state"] == "success"
        assert second[f"retrain_pipeline__{a}"]["record"]["model_version"] == "2"
        assert second[f"retrain_pipeline__{b}"]["state"] == "failed"
        assert second[f"retrain_pipeline__{b}"]["states"]["validate"] == "failed"
        assert (production(config_a), production(config_b)) == (2, 1)
        assert statuses(config_a) == ["deployed", "deployed"]
        assert statuses(config_b) == ["failed", "deployed"]
        assert len(ModelRegistry(config_b).versions()) == 1

        # rolling back a leaves b's versions, aliases and audit history as they were
        b_before = (ModelRegistry(config_b).current(), ModelRegistry(config_b).history())
        run = af.get_dag(f"retrain_rollback__{a}").test(run_conf={"reason": "a regressed"})
        assert str(run.state) == "success", af.states(run)
        assert af.xcom(run, "rollback")["after"]["production"] == 1
        assert (production(config_a), production(config_b)) == (1, 1)
        b_after = (ModelRegistry(config_b).current(), ModelRegistry(config_b).history())
        assert [i.version for i in b_after[0].values()] == [i.version for i in b_before[0].values()]
        assert [(e.op, e.to_version) for e in b_after[1]] == [
            (e.op, e.to_version) for e in b_before[1]
        ]
        history_a = ModelRegistry(config_a).history()
        assert (history_a[0].op, history_a[0].from_version, history_a[0].to_version) == (
            "rollback",
            2,
            1,
        )
        assert config_a.storage.work_dir != config_b.storage.work_dir


class TestPoolsCommand:
    def test_airflow_imports_the_pools_it_prints(
        self, airflow_db: None, three_models: Path, tmp_path: Path
    ) -> None:
        printed = subprocess.run(
            [sys.executable, "-m", "retrain_airflow", "pools", "--config", str(three_models)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        file = tmp_path / "pools.json"
        file.write_text(printed, encoding="utf-8")
        airflow = [sys.executable, "-m", "airflow", "pools"]
        subprocess.run([*airflow, "import", str(file)], capture_output=True, check=True)
        listed = subprocess.run(
            [*airflow, "list", "-o", "json"], capture_output=True, text=True, check=True
        ).stdout
        slots = {p["pool"]: int(p["slots"]) for p in json.loads(listed)}
        for model in ("alpha", "beta", "gamma"):
            assert slots[f"retrain_registry__{model}"] == 1

    def test_a_broken_config_exits_2_naming_it(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "retrain_airflow", "pools", "--config", str(tmp_path / "x")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2
        assert f"{tmp_path / 'x'}: file not found" in result.stderr
