"""``make demo``: the whole product on embedded defaults, through the real DAGs.

Story (simulated weeks of a churn event stream, drift from week 5):

1. generate four weeks of labelled events as weekly parquet partitions;
2. bootstrap: the first weekly run of ``retrain_pipeline`` trains v1 -> production;
3. a quiet week: ``retrain_monitor`` finds nothing, the next weekly run short-circuits;
4. drift weeks: the monitor's drift and performance rules fire, their asset events start a
   data-driven pipeline run, v2 passes gate and A/B and stops in canary
   (``deployment.promote_to_production: judge``);
5. the online canary: ``retrain serve`` (started after the bootstrap, following the aliases)
   splits replayed live traffic of a new drifted week between production v1 and canary v2
   (:mod:`tools.replay`, labels posted back); ``retrain_canary`` judges and promotes v2;
6. a deliberately worse v3 (a forced manual run on the pre-drift weeks) goes to canary, more
   live traffic flows, and the judge rolls it back: incident in the audit history, CRITICAL
   notification, production v2 untouched;
7. an operator rolls back through ``retrain_rollback``: v1 serves again, with an audit entry,
   and the server follows;
8. many models: the same DAG files on ``config/models/`` (two models over one ``defaults.yaml``)
   give the DAGs of every model, and ``retrain status`` lists every model;
9. a summary: retraining log, both canary verdicts, versions and aliases, audit history,
   reports, how to open both UIs.

Everything runs locally: SQLite metadata for Airflow and MLflow, a local MLflow server on
127.0.0.1, files under ``--dir`` (default ``.state/demo``, wiped at the start). Weekly and
data-driven runs are real ``scheduled`` / ``asset_triggered`` DAG runs executed in-process
(:mod:`tools.local_runner`), the judge and the rollback manual runs like ``airflow dags test``.
``retrain serve`` runs as a background process on a free port with a random bearer token
(stopped at the end, also on failure); its output is in ``<dir>/serving/serve.log``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WEEK = timedelta(weeks=1)


class Story:
    """Console output with elapsed time; every step says what it does and what it found."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False, width=max(120, Console().width))
        self.started = time.monotonic()

    def step(self, number: int, title: str) -> None:
        self.console.rule(f"[bold]{number}. {title}[/]  [dim]+{self._t()}[/]")

    def say(self, text: str) -> None:
        self.console.print(f"  {text}")

    def task(self, task_id: str, state: str, seconds: float | None) -> None:
        color = {"success": "green", "skipped": "yellow", "failed": "red"}.get(state, "white")
        took = f"{seconds:5.1f} s" if seconds is not None else "    - "
        self.console.print(f"    {task_id:<18} [{color}]{state:<8}[/] [dim]{took}[/]")

    def _t(self) -> str:
        return f"{time.monotonic() - self.started:.0f}s"


def _environment(root: Path, tracking_uri: str) -> None:
    os.environ.update(
        {
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "RETRAIN_CONFIG": str(REPO / "config" / "demo.yaml"),
            "RETRAIN_DATA_PATH": str(root / "data" / "events"),
            "RETRAIN_WORK_DIR": str(root / "work"),
            "RETRAIN_TRACKING_URI": tracking_uri,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
            "RETRAIN_ACTOR": "demo-operator",
        }
    )


class Serve:
    """``retrain serve`` on the demo's config in the background: a free port, a random token,
    the demo's environment; its output in ``<root>/serving/serve.log``."""

    def __init__(self, root: Path) -> None:
        from tools.mlflow_server import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(24)
        self.log = root / "serving" / "serve.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.log.open("w")
        command = [sys.executable, "-m", "retrain.cli", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, "-c", str(REPO / "config" / "demo.yaml")],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RETRAIN_SERVE_TOKEN": self.token},
        )

    def versions(self) -> dict[str, int]:
        """Arm -> version serving now (``GET /version``)."""
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        found = httpx.get(f"{self.url}/version", headers=headers, timeout=5).json()
        arms = next(iter(found["models"].values()))["arms"]
        return {arm: int(a["version"]) for arm, a in arms.items()}

    def wait_for(self, wanted: dict[str, int], timeout: float = 120.0) -> float:
        """Seconds until the server answers with exactly ``wanted`` (arm -> version)."""
        import httpx

        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise SystemExit(f"demo: retrain serve exited:\n{self.log.read_text()[-2000:]}")
            try:
                if self.versions() == wanted:
                    return time.monotonic() - began
            except (httpx.HTTPError, ValueError, KeyError, StopIteration):
                pass  # still starting
            time.sleep(0.2)
        raise SystemExit(f"demo: retrain serve did not serve {wanted} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._out.close()


class Demo:
    """The story's steps; state lives in the real Airflow DB, MLflow server and files."""

    #: Rows of live traffic replayed through ``retrain serve`` per canary.
    REPLAY_ROWS = 1500

    def __init__(self, root: Path, story: Story) -> None:
        from tools.synthetic import StreamSpec, generate_week

        self.root = root
        self.story = story
        self.spec = StreamSpec(weeks=7, rows_per_week=3000, drift_week=5)
        self.serve: Serve | None = None
        # live traffic: week 7, drifted like weeks 5-6 and never written to the training data
        self.traffic = generate_week(self.spec, 7)
        self.replayed = 0

    # --- plumbing -------------------------------------------------------------------------

    def config(self) -> Any:
        from retrain.config import load_config

        return load_config()  # $RETRAIN_CONFIG: config/demo.yaml

    def write_weeks(self, weeks: range) -> None:
        from tools.synthetic import write_stream

        files = write_stream(self.root / "data" / "events", self.spec, weeks=weeks)
        for week, path in zip(weeks, files, strict=True):
            drifted = week >= (self.spec.drift_week or 99)
            self.story.say(
                f"week {week} -> {path.relative_to(self.root)} "
                f"({self.spec.rows_per_week} rows{', drifted' if drifted else ''})"
            )

    def at(self, weeks: float, hours: float = 0) -> datetime:
        return self.spec.start + weeks * WEEK + timedelta(hours=hours)

    def run(
        self,
        dag_id: str,
        *,
        run_type: str,
        when: datetime | None = None,
        conf: dict[str, Any] | None = None,
    ) -> Any:
        from tools import local_runner

        label = f"{dag_id} ({run_type}{', ' + when.strftime('%a %Y-%m-%d %H:%M') if when else ''})"
        self.story.say(f"[bold]{label}[/]")
        run = local_runner.run_dag(dag_id, run_type=run_type, logical_date=when, conf=conf)
        states = local_runner.states(run)
        took = local_runner.durations(run)
        order = list(local_runner.get_dag(dag_id).task_dict)
        for task_id in order:
            self.story.task(task_id, states.get(task_id, "?"), took.get(task_id))
        if str(run.state) != "success":
            raise SystemExit(f"demo: {dag_id} run ended {run.state}: {states}")
        return run

    def xcom(self, run: Any, task_id: str) -> Any:
        from tools import local_runner

        return local_runner.xcom(run, task_id)

    # --- the story ------------------------------------------------------------------------

    def bootstrap(self) -> None:
        self.story.step(2, "Bootstrap: the first weekly run trains v1 -> production")
        run = self.run("retrain_pipeline", run_type="scheduled", when=self.at(4, 3))
        record = self.xcom(run, "finish")
        self.show_record(record)
        self.serve = Serve(self.root)
        self.story.say(
            f"retrain serve starting in the background at {self.serve.url} (bearer token, "
            f"prediction log in work/serving/, output in {self.serve.log.relative_to(self.root)})"
        )

    def quiet_week(self) -> None:
        self.story.step(3, "A quiet week: the monitor finds nothing, the weekly run short-circuits")
        self.write_weeks(range(4, 5))
        monitor = self.run("retrain_monitor", run_type="scheduled", when=self.at(4, 4 * 24 + 12))
        self.show_monitor(self.xcom(monitor, "measure"))
        run = self.run("retrain_pipeline", run_type="scheduled", when=self.at(5, 3))
        record = self.xcom(run, "finish")
        self.story.say(f"weekly run: [yellow]{record['status']}[/] - {record['notes']}")

    def drift_weeks(self) -> None:
        from tools import local_runner

        self.story.step(4, "Drift weeks: monitor rules fire, a data-driven run retrains v2")
        self.write_weeks(range(5, 7))
        local_runner.unpause("retrain_pipeline")
        monitor = self.run("retrain_monitor", run_type="scheduled", when=self.at(7, 1))
        self.show_monitor(self.xcom(monitor, "measure"))
        for name, extra in local_runner.asset_events("retrain_monitor", monitor.run_id):
            self.story.say(f"asset event [bold]{name}[/]: {'; '.join(extra['reasons'])}")
        run = self.run("retrain_pipeline", run_type="asset_triggered")
        record = self.xcom(run, "finish")
        self.show_record(record)

    def online_canary(self) -> None:
        self.story.step(5, "Online canary: retrain serve splits live traffic, the judge decides")
        self.follow({"production": 1, "canary": 2}, "ready")
        config = self.config()
        self.story.say(
            f"canary judge settings: {config.deployment.canary_traffic_percent:g}% traffic, "
            f"min {config.canary.min_labels_per_arm} labels per arm, bake "
            f"{config.canary.min_bake_minutes:g} min, alpha {config.canary.alpha:g}, "
            f"margin {config.canary.margin:g}"
        )
        self.replay()
        self.judge("promoted")
        self.follow({"production": 2}, "followed the promotion")

    def worse_canary(self) -> None:
        self.story.step(6, "A worse v3 goes to canary; the judge rolls it back automatically")
        as_of = self.at(5)
        self.story.say(
            f"a forced manual run as of {as_of:%Y-%m-%d} trains on the pre-drift weeks 1-4"
        )
        run = self.run(
            "retrain_pipeline",
            run_type="manual",
            conf={
                "force": True,
                "reason": "demo: a deliberately worse model, trained on pre-drift weeks",
                "as_of": as_of.isoformat(),
            },
        )
        self.show_record(self.xcom(run, "finish"))
        self.follow({"production": 2, "canary": 3}, "loaded canary v3")
        self.replay()
        self.judge("rolled back")
        self.follow({"production": 2}, "dropped canary v3")

    def rollback(self) -> None:
        self.story.step(7, "Operator rollback through retrain_rollback")
        run = self.run(
            "retrain_rollback",
            run_type="manual",
            conf={"reason": "demo: operator reverts to the previous model"},
        )
        report = self.xcom(run, "rollback")
        for line in report["lines"]:
            self.story.say(line)
        self.follow({"production": 1}, "followed the rollback")

    # --- serving --------------------------------------------------------------------------

    def stop_serving(self) -> None:
        """Stop ``retrain serve`` (SIGTERM drains its prediction log); what it logged."""
        from retrain.canary_watch import prediction_log

        if self.serve is None:
            return
        self.serve.stop()
        engine = prediction_log(self.config())
        try:
            with engine.connect() as conn:
                predictions = conn.exec_driver_sql("SELECT COUNT(*) FROM retrain_predictions")
                labels = conn.exec_driver_sql("SELECT COUNT(*) FROM retrain_labels")
                counts = (predictions.scalar_one(), labels.scalar_one())
        finally:
            engine.dispose()
        where = os.path.relpath(engine.url.database or "", self.root)
        self.story.say(
            f"retrain serve stopped (SIGTERM, its prediction log drained): {counts[0]} "
            f"predictions, {counts[1]} labels in {where}"
        )

    def follow(self, wanted: dict[str, int], what: str) -> Serve:
        """Wait until ``retrain serve`` serves ``wanted``; say how long it took."""
        if self.serve is None:
            raise SystemExit("demo: retrain serve was not started")
        took = self.serve.wait_for(wanted)
        shown = ", ".join(f"{arm} v{v}" for arm, v in wanted.items())
        self.story.say(f"retrain serve {what} in {took:.1f} s: {shown}")
        return self.serve

    def replay(self) -> None:
        """The next rows of live traffic through the server (split by customer), labels 1 s
        after each answer."""
        from tools.replay import replay

        if self.serve is None:
            raise SystemExit("demo: retrain serve was not started")
        config = self.config()
        rows = self.traffic.iloc[self.replayed : self.replayed + self.REPLAY_ROWS]
        self.replayed += len(rows)
        self.story.say(
            f"[bold]replaying {len(rows)} labelled rows of week 7 (drifted)[/] in batches of 20, "
            "labels posted 1 s after each answer (tools.replay)"
        )
        report = replay(
            self.serve.url,
            self.serve.token,
            rows,
            features=config.model.features.all,
            target=config.model.target,
            entity_column="customer_id",
            batch_rows=20,
            label_delay_seconds=1.0,
        )
        for line in report.lines():
            self.story.say(f"  {line}")
        if report.failures or report.label_failures:
            raise SystemExit(f"demo: the replay failed: {report.to_dict()}")

    def judge(self, expected: str) -> None:
        """A manual ``retrain_canary`` run at wall-clock time; its verdict."""
        run = self.run("retrain_canary", run_type="manual")
        watched = self.xcom(run, "judge")
        look = watched["evaluation"]
        color = "green" if watched["action"] == "promoted" else "red"
        self.story.say(
            f"judge: canary v{watched['canary_version']} vs production "
            f"v{watched['production_version']}: {look['decision']} -> "
            f"[bold {color}]{watched['action']}[/]; D_hat {look['d_hat']:+.3f}, "
            f"{1 - self.config().canary.alpha:.0%} confidence sequence "
            f"[{look['lower']:+.3f}, {look['upper']:+.3f}] on {look['canary_labels']} canary / "
            f"{look['production_labels']} production labels"
        )
        if watched["action"] != expected:
            raise SystemExit(f"demo: the judge {watched['action']}, expected {expected}")

    # --- output ---------------------------------------------------------------------------

    def many_models(self) -> None:
        from airflow.dag_processing.dagbag import DagBag
        from rich.table import Table

        from retrain.cli import main as cli
        from retrain.config import load_catalog
        from retrain_airflow.dags import load_targets

        self.story.step(8, "Many models: config/models/ gives every model its own DAGs")
        models = REPO / "config" / "models"
        catalog = load_catalog(models)
        files = ", ".join(p.name for p in sorted(models.glob("*.yaml")))
        self.story.say(f"{models.relative_to(REPO)}/: {files}")
        os.environ["RETRAIN_CONFIG"] = str(models)  # what the DAG files read at parse time
        try:
            bag = DagBag(dag_folder=str(REPO / "dags"))
        finally:
            os.environ["RETRAIN_CONFIG"] = str(REPO / "config" / "demo.yaml")
        table = Table("model", "weekly", "gate", "pool", "DAGs", title="DAGs from one directory")
        for target in load_targets(models)[1]:
            config = catalog.configs[target.name]
            ids = sorted(d for d in bag.dags if d.endswith(f"__{target.name}"))
            table.add_row(
                target.name,
                config.schedule.weekly,
                ", ".join(f"{k} >= {v}" for k, v in config.evaluation.thresholds.items()),
                target.pool,
                "\n".join(ids),
            )
        self.story.console.print(table)
        self.story.say(f"import errors: {len(bag.import_errors)}; `retrain status` of every model:")
        cli(["status", "--config", str(models)])

    def show_monitor(self, measured: dict[str, Any]) -> None:
        signals = measured["signals"]
        shown = ", ".join(f"{k}={v:.3g}" for k, v in signals.items() if v is not None)
        self.story.say(f"signals: {shown}")
        verdict = "[red]TRIGGERED[/]" if measured["events"] else "[green]quiet[/]"
        self.story.say(f"monitor: {verdict} - {'; '.join(measured['reasons'])}")

    def show_record(self, record: dict[str, Any]) -> None:
        say = self.story.say
        say(
            f"retraining {record['retraining_id']}: trigger [bold]{record['trigger']}[/], "
            f"status [bold]{record['status']}[/], version {record['model_version']}"
        )
        for reason in record["trigger_reasons"]:
            say(f"  reason: {reason}")
        gate = record.get("gate") or {}
        if gate:
            say(f"gate {gate['status'].upper()}: " + "; ".join(gate["reasons"]))
        ab = record.get("ab_test") or {}
        if ab.get("test") and ab["test"] != "none":
            say(
                f"A/B ({ab['test']}): candidate {ab['candidate_accuracy']:.3f} vs current "
                f"{ab['current_accuracy']:.3f}, diff {ab['difference']:+.3f}, "
                f"{ab['confidence']:.0%} CI [{ab['ci_low']:+.3f}, {ab['ci_high']:+.3f}], "
                f"p={ab['p_value']:.2g}, winner {ab['winner']}"
            )
        elif ab:
            say(f"A/B: {'; '.join(ab.get('reasons', []))}")
        failed = [c["title"] for c in record.get("checklist", []) if not c["passed"]]
        if record.get("checklist"):
            say(
                f"checklist: {len(record['checklist']) - len(failed)}/"
                f"{len(record['checklist'])} items met" + (f"; open: {failed}" if failed else "")
            )

    def summary(self) -> None:
        from rich.table import Table

        from retrain.log import LogStore
        from retrain.registry import ModelRegistry

        self.story.step(9, "Summary")
        config = self.config()
        console = self.story.console
        log = LogStore.of(config).records()
        table = Table(
            "retraining_id",
            "trigger",
            "status",
            "version",
            "accuracy",
            "baseline",
            title="Retraining log (newest first)",
        )
        for r in log:
            acc = r.metrics.get("accuracy")
            base = r.baseline_metrics.get("accuracy")
            verdict = f" -> judge: {r.online['action']}" if r.online else ""
            table.add_row(
                r.retraining_id,
                r.trigger,
                r.status + verdict,
                r.model_version or "-",
                f"{acc:.3f}" if acc else "-",
                f"{base:.3f}" if base else "-",
            )
        console.print(table)
        verdicts = Table(
            "version",
            "vs production",
            "verdict",
            "D_hat",
            f"{1 - config.canary.alpha:.0%} interval",
            "labels canary / production",
            title="Online canary verdicts (retrain_canary)",
        )
        store = LogStore.of(config)
        for r in reversed(log):
            full = store.get(r.retraining_id) if r.online else None
            online = full.online if full is not None else None
            if online:
                verdicts.add_row(
                    f"v{r.model_version}",
                    f"v{online['production_version']}",
                    online["action"],
                    f"{online['d_hat']:+.3f}",
                    f"[{online['interval'][0]:+.3f}, {online['interval'][1]:+.3f}]",
                    f"{online['canary_labels']} / {online['production_labels']}",
                )
        console.print(verdicts)
        registry = ModelRegistry(config)
        versions = Table(
            "version",
            "status",
            "aliases",
            "accuracy",
            "data version",
            title=f"Registered versions of {config.model.name}",
        )
        for info in registry.versions():
            versions.add_row(
                str(info.version),
                info.status,
                ", ".join(info.aliases) or "-",
                f"{info.record.metrics.get('accuracy', 0):.3f}",
                info.record.training_data_version,
            )
        console.print(versions)
        history = Table(
            "when",
            "op",
            "alias",
            "from",
            "to",
            "actor",
            "reason",
            title="Audit history of alias moves (newest first)",
        )
        for entry in registry.history(limit=12):
            history.add_row(
                entry.at[:19],
                entry.op,
                entry.alias or "-",
                str(entry.from_version or "-"),
                str(entry.to_version or "-"),
                entry.actor,
                entry.reason[:60],
            )
        console.print(history)
        production = [
            e.to_version
            for e in reversed(registry.history())
            if e.alias == "production" and e.to_version
        ]
        console.print(f"Production over time: {' -> '.join(f'v{v}' for v in production)}")
        reports = sorted((self.root / "work" / "runs").glob("*/drift_report.html"))
        evaluations = sorted((self.root / "work" / "runs").glob("*/evaluation.html"))
        for path in reports[-1:] + evaluations[-1:]:
            console.print(f"Report: {path}")
        console.print(
            f"\nState is in {self.root} (re-running `make demo` starts clean).\n"
            "Open both UIs on this state: [bold]make airflow[/] "
            "(Airflow at http://127.0.0.1:8080, MLflow at http://127.0.0.1:5000; it prints the "
            "login), then on the CLI:\n"
            "  RETRAIN_CONFIG=config/demo.yaml RETRAIN_TRACKING_URI=http://127.0.0.1:5000 "
            ".venv/bin/retrain status   (or history, log)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo", description="Run the retrain demo story end to end."
    )
    parser.add_argument(
        "--dir", default=str(REPO / ".state" / "demo"), help="state directory (wiped at the start)"
    )
    parser.add_argument("--port", type=int, default=0, help="MLflow port (0 = a free port)")
    args = parser.parse_args(argv)
    root = Path(args.dir).resolve()
    story = Story()
    story.step(0, f"Setting up in {root}")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)

    from tools.mlflow_server import MlflowServer

    server = MlflowServer(
        root=root / "mlflow", port=args.port or None, env={"MLFLOW_DISABLE_TELEMETRY": "true"}
    )
    server.start()
    story.say(f"MLflow server {server.url} (SQLite + local artifacts in {root / 'mlflow'})")
    demo: Demo | None = None
    try:
        _environment(root, server.url)
        from tools import local_runner

        local_runner.migrate()
        story.say(
            f"Airflow metadata DB migrated (SQLite in {root / 'airflow'}); DAGs from "
            f"{REPO / 'dags'}; pool retrain_registry created"
        )
        demo = Demo(root, story)
        story.step(1, "Generating a labelled churn event stream (drift starts in week 5)")
        demo.write_weeks(range(4))
        demo.bootstrap()
        demo.quiet_week()
        demo.drift_weeks()
        demo.online_canary()
        demo.worse_canary()
        demo.rollback()
        demo.stop_serving()
        demo.many_models()
        demo.summary()
        local_runner.pause("retrain_pipeline")  # `make airflow` must not start a weekly run
    finally:
        if demo is not None and demo.serve is not None:
            demo.serve.stop()
        server.stop()
    story.say(f"[bold green]Demo complete[/] in {time.monotonic() - story.started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
