"""The registry under attack, faults and races: every refusal is clear and changes nothing.

Security: a version whose files would run code when loaded (pickle, cloudpickle, a skops file
whose trusted types name a code-running function, a model file that is not the skops file) is
refused before anything is deserialised, on every path that loads a version (rollback, promotion
to production, the monitor's load, crash repair); the password of a tracking URI never reaches
what is printed. Races: a repeated rollback (a client retry after a timeout, a retried task) never
rolls back twice. Faults: a registration a crash interrupted is listed and repaired, and a deploy
that fails after registering still records the version. CLI: bad arguments exit 2 naming the
argument; refusals of the registry exit 1 naming the version.

Cases where the right outcome is not an error (a repeated rollback that is a no-op, a repair)
are normal tests next to the refusals, asserting the state.
"""

from __future__ import annotations

import json
import tempfile
import uuid
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from sklearn.pipeline import Pipeline

from retrain.cli import main
from retrain.config import RetrainConfig
from retrain.deploy import rollback_with_report
from retrain.errors import DataError, RegistryError, RegistryUnavailableError
from retrain.log import LogStore
from retrain.registry import STATUS_TAG, ModelRegistry, VersionRecord
from retrain.registry.artifacts import _ModelCache
from retrain.registry.moves import plan_alias
from retrain.registry.records import RECORD_TAG, stored_fields
from retrain.tracking import artifact_repository, ensure_experiment
from tests.helpers import LOGREG, churn_sections, run_record, write_config
from tests.registry_builders import (
    Fleet,
    Majority,
    RecordingNotifier,
    make_data,
    make_pipeline_model,
    record,
)
from tests.reliability.harness import attempt, cli_attempt
from tools.mlflow_server import free_port
from tools.synthetic import StreamSpec, write_stream

PASSWORD = "s3cr3t-pw"


# --- set-up ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    return make_pipeline_model()


@pytest.fixture
def config(make_config: Callable[..., RetrainConfig], tmp_path: Path) -> RetrainConfig:
    return make_config(storage={"work_dir": str(tmp_path / "work")})


@pytest.fixture
def config_file(config: RetrainConfig, tmp_path: Path) -> Path:
    return write_config(config, tmp_path / "retraining.yaml")


@pytest.fixture
def fleet(config: RetrainConfig, fitted: Pipeline) -> Fleet:
    registry = ModelRegistry(config, actor="setup", notifier=RecordingNotifier())
    return Fleet(registry, fitted, make_data(20, seed=1)[0])


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _pwned(marker: str, model: Any) -> Any:
    """What unpickling a :class:`Trojan` calls: leaves a marker, then returns a working model."""
    Path(marker).write_text("the payload ran", encoding="utf-8")
    return model


class Trojan:
    """A working model whose unpickling runs code first (writes ``marker``)."""

    def __init__(self, model: Any, marker: Path) -> None:
        self.model = model
        self.marker = str(marker)

    def predict(self, frame: Any) -> Any:
        return self.model.predict(frame)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_pwned, (self.marker, self.model))


def plant(
    registry: ModelRegistry,
    model: Any,
    *,
    example: pd.DataFrame,
    fmt: str = "skops",
    status: str = "archived",
    aliases: tuple[str, ...] = (),
    ours: bool = True,
    tags: dict[str, str] | None = None,
    skops_trusted_types: list[str] | None = None,
    edit: Callable[[Path], None] | None = None,
) -> int:
    """A version written straight to MLflow by someone with write access, not by retrain:
    ``model`` saved by ``mlflow.sklearn.save_model`` as ``fmt``, registered with our record
    tags (``ours``: also the tags telling retrain where its files are), in ``status``, holding
    ``aliases``. ``edit`` changes the saved files before they are uploaded. A :class:`Trojan`
    is written as the pickle file after saving (mlflow copies a model while saving it, which
    would run the payload here)."""
    uri = registry.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = ensure_experiment(client, registry.config.experiment_name)
    run = client.create_run(experiment, run_name="planted")
    logged = client.create_logged_model(
        experiment, name="model", source_run_id=run.info.run_id, model_type="sklearn"
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model"
        with warnings.catch_warnings():  # mlflow's hints about pickle and integer columns
            warnings.simplefilter("ignore")
            mlflow.sklearn.save_model(
                model.model if isinstance(model, Trojan) else model,
                str(local),
                serialization_format=fmt,
                skops_trusted_types=skops_trusted_types,
                input_example=example.head(5),
            )
        if isinstance(model, Trojan):
            (local / "model.pkl").write_bytes(cloudpickle.dumps(model))
        if edit is not None:
            edit(local)
        artifact_repository(logged.artifact_location, uri).log_artifacts(str(local))
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    client.set_terminated(run.info.run_id)
    version_tags = {
        **VersionRecord.from_value(record(f"planted-{uuid.uuid4().hex[:6]}")).to_tags(),
        STATUS_TAG: status,
        **(tags or {}),
    }
    if ours:
        version_tags["retrain.artifact_uri"] = logged.artifact_location
        version_tags["retrain.model_id"] = logged.model_id
    client.get_registered_model(registry.name)  # the model exists (the fleet registered it)
    mv = client.create_model_version(
        registry.name,
        source=f"models:/{logged.model_id}",
        run_id=run.info.run_id,
        tags=version_tags,
        model_id=logged.model_id,
    )
    for alias in aliases:
        client.set_registered_model_alias(registry.name, alias, mv.version)
    return int(mv.version)


def with_password(config: RetrainConfig, tracking_uri: str) -> RetrainConfig:
    """``config`` pointing at ``tracking_uri`` with a user and password in it."""
    secret = tracking_uri.replace("http://", f"http://alice:{PASSWORD}@", 1)
    registry = config.registry.model_copy(update={"tracking_uri": secret})
    return config.model_copy(update={"registry": registry})


# --- security: no pickle from the registry -----------------------------------------------------


class TestNoPickle:
    @pytest.mark.parametrize(
        "fmt",
        [
            pytest.param("cloudpickle", id="rollback to a cloudpickle version is refused unread"),
            pytest.param("pickle", id="rollback to a pickle version is refused unread"),
        ],
    )
    def test_rollback_to_a_pickled_version_never_unpickles_it(
        self,
        *,
        fleet: Fleet,
        config: RetrainConfig,
        config_file: Path,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        fmt: str,
    ) -> None:
        fleet.to_production()
        fleet.to_production()
        marker = tmp_path / "pwned"
        version = plant(fleet.registry, Trojan(fleet.model, marker), example=fleet.example, fmt=fmt)

        cli_attempt(
            capsys,
            "security",
            f"retrain rollback --to a version saved as {fmt} by someone with MLflow write access",
            config,
            ["rollback", "--to", str(version), "--reason", "restore", "--config", str(config_file)],
            code=1,
            expect=[f"version {version}", f"serialization_format {fmt!r}"],
        )
        assert not marker.exists(), "the pickled payload ran"

    def test_the_monitor_never_unpickles_a_planted_production_version(
        self, fleet: Fleet, config: RetrainConfig, tmp_path: Path
    ) -> None:
        fleet.to_production()
        marker = tmp_path / "pwned"
        version = plant(
            fleet.registry,
            Trojan(fleet.model, marker),
            example=fleet.example,
            fmt="cloudpickle",
            status="production",
            aliases=("production",),
            ours=False,
        )

        with attempt(
            "security",
            "loading a production version saved as cloudpickle (the monitor's load)",
            config,
            expect=[f"version {version}", "serialization_format 'cloudpickle'"],
            error=RegistryError,
        ):
            ModelRegistry(config).load_model("production")
        assert not marker.exists(), "the pickled payload ran"

    def test_promotion_to_production_never_unpickles_a_planted_canary(
        self, fleet: Fleet, config: RetrainConfig, tmp_path: Path
    ) -> None:
        fleet.to_production()
        marker = tmp_path / "pwned"
        version = plant(
            fleet.registry,
            Trojan(fleet.model, marker),
            example=fleet.example,
            fmt="cloudpickle",
            status="canary",
            aliases=("canary",),
        )

        with attempt(
            "security",
            "promoting a canary saved as cloudpickle to production (its load check)",
            config,
            expect=[f"version {version}", "serialization_format 'cloudpickle'"],
            error=RegistryError,
        ):
            ModelRegistry(config).promote(version, "production", reason="looks fine")
        assert not marker.exists(), "the pickled payload ran"

    def test_repair_never_unpickles_the_target_of_an_interrupted_move(
        self, fleet: Fleet, config: RetrainConfig, tmp_path: Path
    ) -> None:
        serving = fleet.to_production()
        marker = tmp_path / "pwned"
        version = plant(
            fleet.registry, Trojan(fleet.model, marker), example=fleet.example, fmt="pickle"
        )
        registry = ModelRegistry(config, actor="attacker")
        aliases = registry._client.aliases()
        pending = registry._audit.write(
            plan_alias(
                aliases,
                version,
                "production",
                op="rollback",
                displaced="rolled_back",
                reason="planted",
                run_id=None,
                actor="attacker",
            )
        )

        assert ModelRegistry(config).repair() == []

        assert not marker.exists(), "the pickled payload ran"
        assert fleet.registry.current()["production"].version == serving
        entry = next(e for e in fleet.registry.history() if e.id == pending.id)
        assert entry.state == "failed"

    @pytest.mark.parametrize(
        ("case", "kwargs", "expect"),
        [
            pytest.param(
                "a skops version whose recorded trusted types name os.system",
                {"tags": {"retrain.trusted_types": json.dumps(["posix.system"])}},
                ["posix.system", "trusted"],
                id="trusted types naming a code-running function are refused",
            ),
            pytest.param(
                "a version retrain did not register, trusting its own MLmodel's type list",
                {
                    "model": "majority",
                    "ours": False,
                    "skops_trusted_types": ["tests.registry_builders.Majority"],
                },
                ["untrusted types", "tests.registry_builders.Majority", "retrain.trusted_types"],
                id="the MLmodel's trusted list of a foreign version is not trusted",
            ),
            pytest.param(
                "an untagged version whose MLmodel trusts os.system",
                {"skops_trusted_types": ["posix.system"]},
                ["posix.system", "never trusted"],
                id="an MLmodel trusting a code-running function is refused",
            ),
            pytest.param(
                "a skops version whose model file is not model.skops",
                {"edit": "rename"},
                ["'model.bin'", "model.skops"],
                id="a model file other than the skops file is refused",
            ),
        ],
    )
    def test_a_skops_version_outside_what_registration_recorded_is_refused(
        self,
        fleet: Fleet,
        config: RetrainConfig,
        case: str,
        kwargs: dict[str, Any],
        expect: list[str],
    ) -> None:
        fleet.register()
        options = dict(kwargs)
        model = make_pipeline_model(Majority()) if options.pop("model", None) else fleet.model
        if options.pop("edit", None) == "rename":

            def rename(local: Path) -> None:
                (local / "model.skops").rename(local / "model.bin")
                mlmodel = local / "MLmodel"
                mlmodel.write_text(mlmodel.read_text().replace("model.skops", "model.bin"))

            options["edit"] = rename
        version = plant(fleet.registry, model, example=fleet.example, **options)

        with attempt(
            "security", case, config, expect=[f"version {version}", *expect], error=RegistryError
        ):
            ModelRegistry(config).load_model(version)

    def test_a_version_registered_before_the_tag_existed_still_loads_and_serves_a_rollback(
        self, fleet: Fleet, config: RetrainConfig
    ) -> None:
        """Wave-1 versions record no trusted types: the list retrain wrote into their
        MLmodel when saving them is used (whoever could forge it could forge the tag too; the
        code-running types stay refused from both)."""
        old = fleet.to_production(model=make_pipeline_model(Majority()))
        fleet.to_production()
        uri = fleet.registry.tracking_uri
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        tags = client.get_model_version(fleet.registry.name, str(old)).tags
        record = json.loads(tags[RECORD_TAG])
        assert record.pop("trusted_types")  # what a wave-1 version lacks
        client.set_model_version_tag(fleet.registry.name, str(old), RECORD_TAG, json.dumps(record))

        entry = ModelRegistry(config).rollback(reason="back to the old one", to_version=old)

        assert entry.to_version == old
        assert type(ModelRegistry(config).load_model(old)[-1]).__name__ == "Majority"

    def test_registration_records_the_trusted_types_and_loads_with_them(self, fleet: Fleet) -> None:
        version = fleet.register(model=make_pipeline_model(Majority()))

        info = fleet.registry._client.model_version(version)
        assert stored_fields(info.tags)["trusted_types"] == ["tests.registry_builders.Majority"]
        _ModelCache.models.clear()  # as a new process would: download and deserialise
        loaded = ModelRegistry(fleet.registry.config).load_model(version)
        assert len(loaded.predict(fleet.example)) == len(fleet.example)

    def test_registering_a_model_that_needs_a_code_running_type_is_refused(
        self, fleet: Fleet, config: RetrainConfig
    ) -> None:
        fleet.register()
        with attempt(
            "security",
            "registering with trusted types that name builtins.exec",
            config,
            expect=["builtins.exec", "trusted"],
            error=RegistryError,
        ):
            fleet.registry.register(
                fleet.model,
                input_example=fleet.example,
                record=record("retrain_exec"),
                idempotency_key="exec",
                trusted_types=["builtins.exec"],
            )


# --- security: secrets --------------------------------------------------------------------------


class TestSecrets:
    def test_status_hides_the_tracking_uris_password(
        self,
        fleet: Fleet,
        config: RetrainConfig,
        tracking_uri: str,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        fleet.to_production()
        path = write_config(with_password(config, tracking_uri), tmp_path / "secret.yaml")

        code, out, err = cli(capsys, "status", "--config", str(path))
        assert code == 0, err
        assert PASSWORD not in out + err and "alice:***@" in out

        code, out, err = cli(capsys, "status", "--config", str(path), "--json")
        assert code == 0, err
        assert PASSWORD not in out + err
        assert json.loads(out)["tracking_uri"].startswith("http://alice:***@")

    def test_a_registry_error_hides_the_tracking_uris_password(
        self, config: RetrainConfig, tracking_uri: str
    ) -> None:
        secret = with_password(config, tracking_uri)
        with attempt(
            "security",
            "an unknown model on a tracking URI with a password",
            secret,
            expect=["alice:***@", "is not registered"],
            error=RegistryError,
        ):
            ModelRegistry(secret).history()
        with pytest.raises(RegistryError) as caught:
            ModelRegistry(secret).history()
        assert PASSWORD not in str(caught.value)

    def test_an_unreachable_server_error_hides_the_password(
        self,
        config: RetrainConfig,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        dead = with_password(config, f"http://127.0.0.1:{free_port()}")
        path = write_config(dead, tmp_path / "dead.yaml")

        err = cli_attempt(
            capsys,
            "security",
            "retrain history against a dead server whose URI holds a password",
            None,
            ["history", "--config", str(path)],
            code=1,
            expect=["alice:***@", "unreachable"],
        )
        assert PASSWORD not in err


# --- races: a rollback repeated ----------------------------------------------------------------


class TestRepeatedRollback:
    def test_the_same_idempotency_key_returns_the_first_rollback_and_moves_nothing(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        first = fleet.to_production()
        second = fleet.to_production()
        argv = ["rollback", "--reason", "errors up", "--idempotency-key", "ticket-42"]
        argv += ["--config", str(config_file), "--json"]

        code, out, err = cli(capsys, *argv)
        assert code == 0, err
        done = json.loads(out)
        code, out, err = cli(capsys, *argv)  # the client's retry after a timeout
        assert code == 0, err
        again = json.loads(out)

        assert (done["from_version"], done["to_version"]) == (second, first)
        assert again["id"] == done["id"] and again["idempotency_key"] == "ticket-42"
        assert fleet.registry.current()["production"].version == first
        assert [e.op for e in fleet.registry.history()].count("rollback") == 1

    def test_a_repeat_guarded_by_from_is_refused(
        self,
        fleet: Fleet,
        config: RetrainConfig,
        config_file: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        first = fleet.to_production()
        second = fleet.to_production()
        argv = ["rollback", "--from", str(second), "--reason", "errors up"]
        code, _, err = cli(capsys, *argv, "--config", str(config_file))
        assert code == 0, err

        cli_attempt(
            capsys,
            "races",
            "retrain rollback --from N repeated after production left N",
            config,
            [*argv, "--config", str(config_file)],
            code=1,
            expect=[f"production is version {first}", f"not version {second}", "nothing moved"],
        )

    def test_a_key_reused_for_another_target_is_refused(
        self,
        fleet: Fleet,
        config: RetrainConfig,
        config_file: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        first = fleet.to_production()
        second = fleet.to_production()
        fleet.to_production()
        fleet.registry.rollback(reason="first", idempotency_key="k-1")  # v3 -> v2

        cli_attempt(
            capsys,
            "races",
            "an idempotency key reused for a rollback to another version",
            config,
            [
                *("rollback", "--to", str(first), "--reason", "again"),
                *("--idempotency-key", "k-1", "--config", str(config_file)),
            ],
            code=1,
            expect=["'k-1'", f"-> v{second}", f"not to version {first}"],
        )

    def test_the_rollback_dag_uses_its_run_id_as_the_key_and_honours_expected_version(
        self,
        fleet: Fleet,
        config: RetrainConfig,
        config_file: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from tests import airflow_harness as af

        first = fleet.to_production()
        second = fleet.to_production()
        monkeypatch.setenv("RETRAIN_CONFIG", str(config_file))
        af.migrate()
        dag = af.get_dag("retrain_rollback")

        refused = dag.test(run_conf={"reason": "wrong guess", "expected_version": first})
        assert str(refused.state) == "failed"
        assert fleet.registry.current()["production"].version == second

        run = dag.test(run_conf={"reason": "bad feedback", "expected_version": second})
        assert str(run.state) == "success", af.states(run)
        entry = fleet.registry.history()[0]
        key = f"retrain_rollback/{run.run_id}"
        assert (entry.op, entry.to_version, entry.idempotency_key) == ("rollback", first, key)

        # the task retried (same run id): the same entry, nothing moves again
        again = rollback_with_report(
            config, ModelRegistry(config), reason="bad feedback", idempotency_key=key
        )
        assert again.entry.id == entry.id and again.repeated
        assert fleet.registry.current()["production"].version == first
        assert [e.op for e in fleet.registry.history()].count("rollback") == 1


# --- faults: what a crash leaves behind --------------------------------------------------------


class Crash(BaseException):
    """Stands for the process dying."""


def crash_before_announcing(registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """``registry`` dies right after ``create_model_version``, before the staging announcement."""
    moves = registry._moves
    run = moves.run

    def dying(entry: Any, aliases: Any, *, recorded: bool = False) -> Any:
        if entry.op == "register":
            raise Crash
        return run(entry, aliases, recorded=recorded)

    monkeypatch.setattr(moves, "run", dying)


class TestCrashLeftovers:
    def test_a_version_never_announced_is_listed_by_status_and_announced_by_repair(
        self,
        fleet: Fleet,
        config: RetrainConfig,
        config_file: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        serving = fleet.to_production()
        crashing = ModelRegistry(config)
        crash_before_announcing(crashing, monkeypatch)
        with pytest.raises(Crash):
            Fleet(crashing, fleet.model, fleet.example).register()
        stuck = fleet.registry.versions()[0].version
        assert fleet.registry.get_version(stuck).status == "pending"

        code, out, err = cli(capsys, "status", "--config", str(config_file))
        assert code == 0, err
        assert f"v{stuck}" in out and "never announced" in out and "status --repair" in out
        code, out, err = cli(capsys, "status", "--config", str(config_file), "--json")
        assert [v["version"] for v in json.loads(out)["unannounced"]] == [stuck]

        code, out, err = cli(capsys, "status", "--repair", "--config", str(config_file), "--json")
        assert code == 0, err
        status = json.loads(out)
        [entry] = status["repaired"]
        assert (entry["op"], entry["alias"], entry["to_version"]) == ("register", "staging", stuck)
        assert status["unannounced"] == [] and status["aliases"]["staging"]["version"] == stuck
        current = fleet.registry.current()
        assert current["staging"].version == stuck
        assert current["production"].version == serving
        assert ModelRegistry(config).unannounced() == []

    def test_repair_rejects_a_stuck_version_a_newer_one_superseded(
        self, fleet: Fleet, config: RetrainConfig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        crashing = ModelRegistry(config)
        crash_before_announcing(crashing, monkeypatch)
        with pytest.raises(Crash):
            Fleet(crashing, fleet.model, fleet.example).register()
        stuck = fleet.registry.versions()[0].version
        newer = fleet.register()

        [entry] = ModelRegistry(config).repair()

        assert (entry.op, entry.statuses) == ("reject", {stuck: "rejected"})
        assert f"v{newer}" in entry.reason
        assert fleet.registry.get_version(stuck).status == "rejected"
        assert fleet.registry.current()["staging"].version == newer
        assert ModelRegistry(config).repair() == []


SPEC = StreamSpec(weeks=3, rows_per_week=1500, drift_week=None)


class TestFailedDeployRecord:
    @pytest.fixture
    def churn(self, make_config: Callable[..., RetrainConfig], tmp_path: Path) -> RetrainConfig:
        write_stream(tmp_path / "events", SPEC)
        return make_config(
            **churn_sections(
                tmp_path / "events",
                estimator=LOGREG,
                params={"max_iter": 300},
                storage={"work_dir": str(tmp_path / "work")},
            )
        )

    @pytest.mark.parametrize(
        ("fails_at", "stage"),
        [
            pytest.param("canary", "staging", id="failing at canary records the staging version"),
            pytest.param(
                "production", "canary", id="failing at production records the canary version"
            ),
        ],
    )
    def test_a_deploy_failing_after_registration_records_the_version(
        self, churn: RetrainConfig, monkeypatch: pytest.MonkeyPatch, fails_at: str, stage: str
    ) -> None:
        promote = ModelRegistry.promote

        def failing(self: ModelRegistry, version: int | str, to: str, **kwargs: Any) -> Any:
            if to == fails_at:
                raise RegistryUnavailableError("MLflow went away")
            return promote(self, version, to, **kwargs)

        monkeypatch.setattr(ModelRegistry, "promote", failing)

        record = run_record(churn, as_of=SPEC.start + timedelta(weeks=3))

        assert (record["status"], record["failed_step"]) == ("failed", "deploy")
        assert record["model_version"] == "1"
        assert record["deployment"]["version"] == 1
        assert record["deployment"]["stage"] == stage
        assert ModelRegistry(churn).get_version(1).status == stage

    def test_the_dag_records_the_version_when_its_deploy_task_fails_after_registering(
        self,
        churn: RetrainConfig,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from tests import airflow_harness as af

        def failing(self: ModelRegistry, version: int | str, to: str, **kwargs: Any) -> Any:
            raise RegistryError("the canary slot is locked")

        monkeypatch.setattr(ModelRegistry, "promote", failing)
        config = churn.model_copy(
            update={"schedule": churn.schedule.model_copy(update={"retries": 0})}
        )
        monkeypatch.setenv("RETRAIN_CONFIG", str(write_config(config, tmp_path / "c.yaml")))
        af.migrate()

        run = af.get_dag("retrain_pipeline").test(
            run_conf={
                "force": True,
                "reason": "first model",
                "as_of": (SPEC.start + timedelta(weeks=3)).isoformat(),
            }
        )

        assert str(run.state) == "failed"
        assert af.states(run)["deploy"] == "failed"
        [logged] = LogStore.of(config).records()
        assert (logged.status, logged.failed_step, logged.model_version) == (
            "failed",
            "deploy",
            "1",
        )
        assert "version 1 was registered and left in staging" in logged.notes


# --- the registry's refusals through the CLI ----------------------------------------------------


def _production_pair(fleet: Fleet) -> dict[str, int]:
    return {"first": fleet.to_production(), "second": fleet.to_production()}


CLI_REFUSALS = [
    pytest.param(
        "retrain history --limit -1",
        lambda fleet: {},
        ["history", "--limit", "-1"],
        2,
        ["argument --limit", "-1"],
        id="a negative history limit exits 2 naming --limit",
    ),
    pytest.param(
        "retrain rollback --from 0",
        lambda fleet: {},
        ["rollback", "--from", "0", "--reason", "x"],
        2,
        ["argument --from", "0"],
        id="a version 0 expected in production exits 2 naming --from",
    ),
    pytest.param(
        "retrain rollback --reason ' ' (blank)",
        _production_pair,
        ["rollback", "--reason", "  "],
        2,
        ["a reason is required"],
        id="a blank reason is refused",
    ),
    pytest.param(
        "retrain promote a staging version straight to production (canary required)",
        lambda fleet: {"v": fleet.register()},
        ["promote", "{v}", "--to", "production", "--reason", "x"],
        1,
        ["illegal transition for version {v}", "staging -> production", "canary is required"],
        id="staging straight to production is an illegal transition",
    ),
    pytest.param(
        "retrain promote an unknown version",
        lambda fleet: {"v": fleet.register() + 40},
        ["promote", "{v}", "--to", "canary", "--reason", "x"],
        1,
        ["has no version {v}"],
        id="an unknown version is named",
    ),
    pytest.param(
        "retrain promote a rejected version to canary",
        lambda fleet: {"v": fleet.bring_to("rejected")},
        ["promote", "{v}", "--to", "canary", "--reason", "x"],
        1,
        ["illegal transition for version {v}", "rejected -> canary"],
        id="a rejected version cannot be promoted",
    ),
    pytest.param(
        "retrain promote an archived version to production (rollback is the way back)",
        lambda fleet: {"v": fleet.bring_to("archived")},
        ["promote", "{v}", "--to", "production", "--reason", "x"],
        1,
        ["illegal transition for version {v}", "use rollback --to {v}"],
        id="an archived version goes back only by rollback",
    ),
    pytest.param(
        "retrain rollback without a production version",
        lambda fleet: {"v": fleet.register()},
        ["rollback", "--reason", "x"],
        1,
        ["nothing to roll back to", "no production version"],
        id="rollback with nothing in production",
    ),
    pytest.param(
        "retrain rollback from the first production version",
        lambda fleet: {"v": fleet.to_production()},
        ["rollback", "--reason", "x"],
        1,
        ["nothing to roll back to", "version {v}", "first production version"],
        id="rollback with nothing served before",
    ),
    pytest.param(
        "retrain rollback --to the version already in production",
        _production_pair,
        ["rollback", "--to", "{second}", "--reason", "x"],
        1,
        ["version {second}", "already in production"],
        id="rollback to the serving version",
    ),
    pytest.param(
        "retrain rollback --to a version that never served and failed its gate",
        lambda fleet: {**_production_pair(fleet), "v": fleet.register(gate="failed")},
        ["rollback", "--to", "{v}", "--reason", "x"],
        1,
        ["version {v}", "never in production", "'failed'"],
        id="rollback to a never-served version that failed its gate",
    ),
    pytest.param(
        "retrain rollback --to an unknown version",
        lambda fleet: {**_production_pair(fleet), "v": 99},
        ["rollback", "--to", "{v}", "--reason", "x"],
        1,
        ["has no version {v}"],
        id="rollback to an unknown version",
    ),
]


class TestCliRefusals:
    @pytest.mark.parametrize(("case", "setup", "argv", "code", "expect"), CLI_REFUSALS)
    def test_refused_clearly_and_nothing_changes(
        self,
        *,
        fleet: Fleet,
        config: RetrainConfig,
        config_file: Path,
        capsys: pytest.CaptureFixture[str],
        case: str,
        setup: Callable[[Fleet], dict[str, int]],
        argv: list[str],
        code: int,
        expect: list[str],
    ) -> None:
        known = setup(fleet)
        cli_attempt(
            capsys,
            "cli",
            case,
            config if known else None,
            [a.format(**known) for a in argv] + ["--config", str(config_file)],
            code=code,
            expect=[e.format(**known) for e in expect],
        )

    def test_history_of_an_unknown_model_names_it(
        self, config: RetrainConfig, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        cli_attempt(
            capsys,
            "cli",
            "retrain history of a model nothing was registered for",
            None,
            ["history", "--config", str(config_file)],
            code=1,
            expect=[repr(config.model.name), "is not registered"],
        )

    def test_history_limits(
        self, fleet: Fleet, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        fleet.to_production()  # three entries: register, canary, production
        for limit, count in (("0", 3), ("1", 1), ("2", 2), ("5000", 3)):
            code, out, err = cli(
                capsys, "history", "--limit", limit, "--config", str(config_file), "--json"
            )
            assert code == 0, err
            assert len(json.loads(out)) == count, limit

    def test_library_refusals_name_the_argument(self, fleet: Fleet, config: RetrainConfig) -> None:
        fleet.register()
        with attempt("data", "history(limit=-1)", config, expect=["limit", "-1"], error=DataError):
            fleet.registry.history(limit=-1)
        with attempt(
            "data",
            "register with a blank idempotency key",
            config,
            expect=["idempotency_key"],
            error=DataError,
        ):
            fleet.registry.register(
                fleet.model, input_example=fleet.example, record=record(), idempotency_key=" "
            )
        with attempt(
            "data",
            "rollback with a blank idempotency key",
            config,
            expect=["idempotency_key"],
            error=DataError,
        ):
            fleet.registry.rollback(reason="x", idempotency_key=" ")


class TestStoredProfiles:
    def test_a_hostile_profile_stored_with_a_version_is_refused_naming_it(
        self, fleet: Fleet, config: RetrainConfig
    ) -> None:
        fleet.register()

        def nest(local: Path) -> None:
            extra = local / "extra_files"
            extra.mkdir(exist_ok=True)
            (extra / "reference_profile.json").write_text("[" * 100_000 + "]" * 100_000)

        version = plant(
            fleet.registry,
            fleet.model,
            example=fleet.example,
            edit=nest,
            tags={"retrain.reference_profile": "reference_profile.json"},
        )
        with attempt(
            "security",
            "a reference profile nested 100,000 deep stored with a version",
            config,
            expect=[f"reference profile of version {version}", "nested"],
            error=DataError,
        ):
            ModelRegistry(config).reference_profile(version)
