"""The production deployment files, checked by construction: no Docker engine is needed.

``docker-compose.yaml`` is validated against the Compose specification's JSON schema (a copy is
vendored in ``tests/data`` with its licence, so the test is hermetic on a clean clone) and against
the rules of this deployment: the services of the official Airflow 3.x CeleryExecutor file plus
MLflow, health checks, start order, secrets only from ``.env`` and every variable documented in
``.env.example``. The ``Dockerfile`` must bake the project into the image with the lock file.

Each rule is a function that returns the problems it finds; the tests run it on the real files
(expecting none) and on broken copies (expecting the problem), so every check is known to bite.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tools.topology import SETTINGS_FILE, Topology, airflow_env, read_env_file

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY_GUIDE = ROOT / "docs" / "deploy.md"
VENDORED_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
SHARED_SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
LONG_RUNNING = ("postgres", "redis", "mlflow", *AIRFLOW_SERVICES)
ONE_SHOT = ("airflow-init", "mlflow-db-init")
TOOLS = ("airflow-cli",)  # behind a profile, started by hand with `docker compose run`
EXPECTED_SERVICES = frozenset((*LONG_RUNNING, *ONE_SHOT, *TOOLS))
IMAGE_SERVICES = (*AIRFLOW_SERVICES, "airflow-init", "airflow-cli", "mlflow")

SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|_KEY$|TOKEN")
TRACKING_URI = "http://mlflow:5000"


# --- Compose variable interpolation --------------------------------------------------------------

# As in compose-go's template package: `$$` escapes, `$NAME`, `${...}`, and any other `$` is an
# "invalid template" error when Compose loads the file.
_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<braced>[^}]*)\}|)"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


@dataclass(frozen=True)
class VarUse:
    """One ``${NAME<op><arg>}`` (or ``$NAME``) in the compose file, with where it occurs."""

    name: str
    op: str  # "" (plain), ":-" / "-" (default), ":?" / "?" (required), ":+" / "+" (alternative)
    arg: str
    where: str

    @property
    def required(self) -> bool:
        return self.op in (":?", "?")

    @property
    def default(self) -> str | None:
        return self.arg if self.op in (":-", "-") else None


def _strings(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string value in a loaded YAML tree (Compose interpolates values, not keys)."""
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{where}[{index}]")


def scan_variables(doc: Any) -> tuple[list[VarUse], list[str]]:
    """The variables a compose document uses, and the templates Compose would reject."""
    uses: list[VarUse] = []
    invalid: list[str] = []
    for where, text in _strings(doc):
        for match in _TOKEN.finditer(text):
            if match["escaped"]:
                continue
            if match["named"]:
                uses.append(VarUse(match["named"], "", "", where))
                continue
            braced = match["braced"]
            parsed = _BRACED.fullmatch(braced) if braced is not None else None
            if parsed is None or "$" in (parsed["arg"] or ""):
                invalid.append(f"{where}: {match.group(0) or '$'} (escape a literal $ as $$)")
                continue
            uses.append(VarUse(parsed["name"], parsed["op"] or "", parsed["arg"] or "", where))
    return uses, invalid


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's substitution of one string (the subset ``scan_variables`` accepts)."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        parsed = _BRACED.fullmatch(match["braced"] or "")
        assert parsed is not None, f"invalid template {match.group(0)!r}"
        value, op, arg = env.get(parsed["name"]), parsed["op"] or "", parsed["arg"] or ""
        unset_or_empty = not value if op.startswith(":") else value is None
        if op in (":-", "-"):
            return arg if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise LookupError(f"{parsed['name']}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return _TOKEN.sub(substitute, text)


def render(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, Mapping):
        return {key: render(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [render(value, env) for value in node]
    return node


# --- .env.example --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvDoc:
    name: str
    value: str
    comment: str  # the comment line right above the assignment

    @property
    def required(self) -> bool:
        return "Required" in self.comment

    @property
    def optional(self) -> bool:
        return "Optional" in self.comment

    @property
    def secret(self) -> bool:
        return "Required, secret." in self.comment

    @property
    def documented_default(self) -> str | None:
        match = re.search(r"default `([^`]*)`", self.comment)
        return match[1] if match else None


def parse_env_example(text: str) -> dict[str, EnvDoc]:
    docs: dict[str, EnvDoc] = {}
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
        if assignment:
            comment = previous[1:].strip() if previous.startswith("#") else ""
            docs[assignment[1]] = EnvDoc(assignment[1], assignment[2], comment)
        previous = stripped
    return docs


# --- the rules -----------------------------------------------------------------------------------


def services_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    return dict(doc.get("services") or {})


def missing_healthchecks(doc: Mapping[str, Any]) -> list[str]:
    problems = []
    for name in LONG_RUNNING:
        service = services_of(doc).get(name, {})
        test = (service.get("healthcheck") or {}).get("test")
        if not test or test[0] not in ("CMD", "CMD-SHELL"):
            problems.append(f"{name}: no health check command")
        if service.get("restart") != "always":
            problems.append(f"{name}: restart is {service.get('restart')!r}, not 'always'")
    return problems


def _condition_problem(services: Mapping[str, Any], name: str, target: str, spec: Any) -> str:
    condition = (spec or {}).get("condition")
    if target not in services:
        return f"{name} depends on unknown service {target}"
    if target in ONE_SHOT:
        wanted = "service_completed_successfully"
    elif "healthcheck" in services[target]:
        wanted = "service_healthy"
    else:
        return f"{name} -> {target}: {target} has no health check to wait for"
    if condition != wanted:
        return f"{name} -> {target}: {condition}, not {wanted.removeprefix('service_')}"
    return ""


def start_order_problems(doc: Mapping[str, Any]) -> list[str]:
    """Every dependency waits for the right state of a service that exists, without cycles."""
    services = services_of(doc)
    problems = []
    graph: dict[str, list[str]] = {}
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, list):
            problems.append(f"{name}: depends_on is a list, so it waits for nothing")
            depends_on = {}
        graph[name] = list(depends_on)
        problems += [_condition_problem(services, name, t, spec) for t, spec in depends_on.items()]

    def visit(node: str, path: tuple[str, ...]) -> None:
        if node in path:
            problems.append("dependency cycle: " + " -> ".join((*path, node)))
            return
        for nxt in graph.get(node, []):
            visit(nxt, (*path, node))

    for node in graph:
        visit(node, ())
    return sorted(set(problems) - {""})


_ONLY_REQUIRED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}$]*\}")


def secret_problems(doc: Mapping[str, Any], uses: list[VarUse]) -> list[str]:
    """Secrets come only from required variables: no default, no literal value."""
    problems = [
        f"{use.where}: ${{{use.name}{use.op}...}} gives secret {use.name} a default "
        "or makes it optional"
        for use in uses
        if SECRET_NAME.search(use.name) and not use.required
    ]
    problems += [
        f"{use.where}: the error for a missing {use.name} does not point to .env"
        for use in uses
        if use.required and ".env" not in use.arg
    ]
    for where, text in _strings(doc):
        key = where.rsplit(".", 1)[-1]
        is_secret_setting = ".environment." in f".{where}" and SECRET_NAME.search(key)
        if is_secret_setting and not _ONLY_REQUIRED.fullmatch(text):
            problems.append(f"{where}: secret is not exactly one required ${{VAR:?...}}")
        # Required variables become one opaque token (their messages contain spaces), then any
        # password in a URL must be exactly that token.
        masked = _ONLY_REQUIRED.sub("<required>", text)
        for password in re.findall(r"://[^:/@\s]*:([^@\s]*)@", masked):
            if password and password != "<required>":
                problems.append(f"{where}: password in a URL is not a required variable")
    return problems


def _variable_problems(name: str, name_uses: list[VarUse], doc: EnvDoc) -> list[str]:
    problems = []
    if not doc.comment:
        problems.append(f"{name}: no comment line right above it in .env.example")
    forms = {(use.op, "" if use.required else use.arg) for use in name_uses}
    if len(forms) > 1:
        problems.append(f"{name}: used with different defaults/requirements: {sorted(forms)}")
    required = any(use.required for use in name_uses)
    default = next((use.default for use in name_uses if use.default is not None), None)
    if required and not (doc.required and not doc.optional):
        problems.append(f"{name}: required in the compose file, .env.example must say Required")
    if not required and not doc.optional:
        problems.append(f"{name}: has a default, .env.example must say Optional")
    if default is not None and doc.documented_default != default:
        problems.append(
            f"{name}: .env.example documents default {doc.documented_default!r}, "
            f"the compose file uses {default!r}"
        )
    if default is not None and doc.value != default:
        problems.append(f"{name}: .env.example sets {doc.value!r}, not the default {default!r}")
    if SECRET_NAME.search(name) and not doc.secret:
        problems.append(f"{name}: looks like a secret, .env.example must say so")
    if doc.secret and doc.value:
        problems.append(f"{name}: a secret must be empty in .env.example, not {doc.value!r}")
    return problems


def documentation_problems(uses: list[VarUse], docs: Mapping[str, EnvDoc]) -> list[str]:
    """Each variable the compose file uses is documented consistently, and nothing else is."""
    by_name: dict[str, list[VarUse]] = {}
    for use in uses:
        by_name.setdefault(use.name, []).append(use)
    problems = []
    for name, name_uses in sorted(by_name.items()):
        doc = docs.get(name)
        if doc is None:
            problems.append(f"{name} is used in docker-compose.yaml but not in .env.example")
        else:
            problems += _variable_problems(name, name_uses, doc)
    problems += [
        f"{name} is documented in .env.example but docker-compose.yaml never uses it"
        for name in sorted(set(docs) - set(by_name))
    ]
    return problems


# --- Dockerfile ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    user: str  # the USER in effect when it runs


def parse_dockerfile(text: str) -> list[Instruction]:
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    user = "root"
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "USER":
            user = args.strip()
        instructions.append(Instruction(keyword, " ".join(args.split()), user))
    return instructions


def copies(instructions: list[Instruction]) -> list[tuple[list[str], str]]:
    result = []
    for ins in instructions:
        if ins.keyword == "COPY":
            parts = [p for p in ins.args.split() if not p.startswith("--")]
            result.append((parts[:-1], parts[-1]))
    return result


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        bare = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
            ignored = not negate
    return ignored


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict), "docker-compose.yaml is not a mapping"
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return services_of(compose)


@pytest.fixture(scope="module")
def uses(compose: dict[str, Any]) -> list[VarUse]:
    return scan_variables(compose)[0]


@pytest.fixture(scope="module")
def env_docs() -> dict[str, EnvDoc]:
    return parse_env_example(ENV_EXAMPLE.read_text())


@pytest.fixture(scope="module")
def sample_env(env_docs: dict[str, EnvDoc]) -> dict[str, str]:
    """.env.example with every secret filled in, as an operator's .env would be."""
    return {name: doc.value or f"{name.lower()}-0123456789abcdef" for name, doc in env_docs.items()}


@pytest.fixture(scope="module")
def rendered(compose: dict[str, Any], sample_env: dict[str, str]) -> dict[str, Any]:
    return render(compose, sample_env)


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _validator(schema_path: Path) -> jsonschema.Draft7Validator:
    schema = json.loads(schema_path.read_text())
    # The spec declares draft-07 with a `$schema` URL jsonschema does not recognise (no '#').
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _env(service: Mapping[str, Any]) -> dict[str, str]:
    """What the container gets: its ``env_file`` entries, overridden by ``environment``."""
    environment = service.get("environment") or {}
    assert isinstance(environment, dict), "environment must be a mapping"
    merged: dict[str, str] = {}
    for name in service.get("env_file") or []:
        merged.update(read_env_file(ROOT / name))
    return {**merged, **environment}


def _script(service: Mapping[str, Any]) -> str:
    command = service.get("command")
    assert isinstance(command, list), f"command is not a list: {command!r}"
    return command[-1]


# --- tests ---------------------------------------------------------------------------------------


class TestComposeSchema:
    @pytest.mark.parametrize(
        "schema",
        [
            pytest.param(VENDORED_SCHEMA, id="vendored compose spec"),
            *(
                [pytest.param(SHARED_SCHEMA, id="shared compose spec")]
                if SHARED_SCHEMA.exists()
                else []
            ),
        ],
    )
    def test_the_file_is_valid_against_the_compose_spec(
        self, compose: dict[str, Any], schema: Path
    ) -> None:
        errors = sorted(_validator(schema).iter_errors(compose), key=str)
        assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []

    def test_the_validator_rejects_a_misspelt_service_key(self, compose: dict[str, Any]) -> None:
        broken = copy.deepcopy(compose)
        broken["services"]["mlflow"]["helthcheck"] = broken["services"]["mlflow"].pop("healthcheck")
        messages = [e.message for e in _validator(VENDORED_SCHEMA).iter_errors(broken)]
        assert any("helthcheck" in m for m in messages), messages

    def test_the_vendored_schema_ships_with_its_licence(self) -> None:
        licence = VENDORED_SCHEMA.with_name("compose-spec.LICENSE")
        assert "Apache License" in licence.read_text()


class TestServices:
    def test_the_stack_has_exactly_the_expected_services(self, services: dict[str, Any]) -> None:
        assert set(services) == EXPECTED_SERVICES

    @pytest.mark.parametrize(
        ("service", "command"),
        [
            pytest.param("airflow-apiserver", "api-server", id="the api server runs api-server"),
            pytest.param("airflow-scheduler", "scheduler", id="the scheduler runs scheduler"),
            pytest.param(
                "airflow-dag-processor", "dag-processor", id="the dag processor runs dag-processor"
            ),
            pytest.param("airflow-triggerer", "triggerer", id="the triggerer runs triggerer"),
            pytest.param("airflow-worker", "celery worker", id="the worker runs a celery worker"),
        ],
    )
    def test_each_airflow_component_runs_its_command(
        self, services: dict[str, Any], service: str, command: str
    ) -> None:
        assert services[service]["command"] == command

    @pytest.mark.parametrize(
        ("service", "image"),
        [
            pytest.param("postgres", "postgres:16", id="postgres is version 16"),
            pytest.param("mlflow-db-init", "postgres:16", id="the mlflow db init uses psql 16"),
            pytest.param("redis", "redis:7.2-bookworm", id="redis is the 7.2 line"),
        ],
    )
    def test_backing_services_use_the_official_images(
        self, services: dict[str, Any], service: str, image: str
    ) -> None:
        assert services[service]["image"] == image

    def test_every_long_running_service_has_a_health_check_and_restarts(
        self, compose: dict[str, Any]
    ) -> None:
        assert missing_healthchecks(compose) == []

    def test_the_health_check_rule_reports_a_missing_check(self, compose: dict[str, Any]) -> None:
        broken = copy.deepcopy(compose)
        del broken["services"]["airflow-triggerer"]["healthcheck"]
        assert missing_healthchecks(broken) == ["airflow-triggerer: no health check command"]

    @pytest.mark.parametrize(
        "service",
        [pytest.param(s, id=f"{s} runs once and is not restarted") for s in ONE_SHOT],
    )
    def test_one_shot_services_are_not_restarted(
        self, services: dict[str, Any], service: str
    ) -> None:
        assert services[service].get("restart", "no") == "no"

    @pytest.mark.parametrize(
        ("service", "url"),
        [
            pytest.param(
                "airflow-apiserver",
                "http://localhost:8080/api/v2/monitor/health",
                id="the api server is checked on its monitor endpoint",
            ),
            pytest.param(
                "airflow-scheduler",
                "http://localhost:8974/health",
                id="the scheduler is checked on its health server",
            ),
            pytest.param(
                "mlflow", "http://localhost:5000/health", id="mlflow is checked on /health"
            ),
        ],
    )
    def test_http_health_checks_hit_the_documented_endpoints(
        self, services: dict[str, Any], service: str, url: str
    ) -> None:
        test = services[service]["healthcheck"]["test"]
        assert test[0] == "CMD" and "curl" in test and "--fail" in test and test[-1] == url

    def test_the_scheduler_health_server_is_enabled(self, services: dict[str, Any]) -> None:
        env = _env(services["airflow-scheduler"])
        assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"

    @pytest.mark.parametrize(
        "service",
        [pytest.param(s, id=f"{s} is built from this repository") for s in IMAGE_SERVICES],
    )
    def test_airflow_and_mlflow_run_the_image_built_from_the_repository(
        self, services: dict[str, Any], service: str
    ) -> None:
        assert services[service]["build"] == "."
        assert services[service]["image"] == services["airflow-apiserver"]["image"]

    def test_nothing_is_pip_installed_at_container_start(self, compose: dict[str, Any]) -> None:
        offenders = [
            where
            for where, text in _strings(compose)
            if "_PIP_ADDITIONAL_REQUIREMENTS" in where
            or re.search(r"\bpip3? install\b|\buv pip\b", text)
        ]
        assert offenders == []

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            pytest.param("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor", id="the executor is celery"),
            pytest.param(
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                "http://airflow-apiserver:8080/execution/",
                id="tasks reach the execution api on the api server",
            ),
            pytest.param(
                "AIRFLOW__CORE__AUTH_MANAGER",
                "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
                id="logins go through the fab auth manager",
            ),
            pytest.param("AIRFLOW__CORE__LOAD_EXAMPLES", "false", id="no example dags are loaded"),
        ],
    )
    def test_every_airflow_component_shares_the_core_settings(
        self, services: dict[str, Any], key: str, value: str
    ) -> None:
        values = {
            name: _env(services[name]).get(key) for name in (*AIRFLOW_SERVICES, "airflow-init")
        }
        assert values == dict.fromkeys(values, value)

    def test_the_broker_and_result_backend_point_at_redis_and_postgres(
        self, services: dict[str, Any]
    ) -> None:
        env = _env(services["airflow-worker"])
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:")
        assert env["AIRFLOW__CELERY__BROKER_URL"].endswith("@redis:6379/0")
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@postgres/airflow")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres/airflow")

    def test_the_init_service_migrates_and_creates_the_admin_user(
        self, services: dict[str, Any]
    ) -> None:
        init = services["airflow-init"]
        env = _env(init)
        assert env["_AIRFLOW_DB_MIGRATE"] == "true"
        assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"
        assert "_AIRFLOW_WWW_USER_PASSWORD" in env
        assert init["user"] == "0:0"
        script = _script(init)
        assert "/entrypoint airflow version" in script
        assert "airflow db check-migrations" in script
        assert 'retrain config validate "$${RETRAIN_CONFIG}"' in script

    def test_only_the_api_server_and_mlflow_publish_ports_and_only_on_loopback_by_default(
        self, services: dict[str, Any], rendered: dict[str, Any]
    ) -> None:
        published = {name for name, s in services.items() if s.get("ports")}
        assert published == {"airflow-apiserver", "mlflow"}
        for name in published:
            for port in services[name]["ports"]:
                assert port.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:"), port
        assert rendered["services"]["mlflow"]["ports"] == ["127.0.0.1:5000:5000"]
        assert rendered["services"]["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]


class TestStartOrder:
    def test_every_dependency_waits_for_the_right_state_without_cycles(
        self, compose: dict[str, Any]
    ) -> None:
        assert start_order_problems(compose) == []

    @pytest.mark.parametrize(
        ("service", "dependency", "condition"),
        [
            pytest.param(
                "mlflow-db-init",
                "postgres",
                "service_healthy",
                id="the mlflow database is created once postgres is healthy",
            ),
            pytest.param(
                "mlflow",
                "mlflow-db-init",
                "service_completed_successfully",
                id="mlflow starts after its database exists",
            ),
            pytest.param(
                "mlflow", "postgres", "service_healthy", id="mlflow waits for a healthy postgres"
            ),
            pytest.param(
                "airflow-init",
                "postgres",
                "service_healthy",
                id="the airflow init waits for a healthy postgres",
            ),
            pytest.param(
                "airflow-init",
                "redis",
                "service_healthy",
                id="the airflow init waits for a healthy redis",
            ),
            *[
                pytest.param(
                    s,
                    "airflow-init",
                    "service_completed_successfully",
                    id=f"{s} starts after a successful airflow init",
                )
                for s in AIRFLOW_SERVICES
            ],
            *[
                pytest.param(s, dep, "service_healthy", id=f"{s} waits for a healthy {dep}")
                for s in AIRFLOW_SERVICES
                for dep in ("postgres", "redis")
            ],
            pytest.param(
                "airflow-worker",
                "airflow-apiserver",
                "service_healthy",
                id="the celery worker waits for a healthy api server",
            ),
            *[
                pytest.param(s, "mlflow", "service_healthy", id=f"{s} waits for a healthy mlflow")
                for s in ("airflow-worker", "airflow-scheduler", "airflow-triggerer")
            ],
        ],
    )
    def test_dependency(
        self, services: dict[str, Any], service: str, dependency: str, condition: str
    ) -> None:
        assert services[service]["depends_on"][dependency]["condition"] == condition

    @pytest.mark.parametrize(
        ("mutate", "problem"),
        [
            pytest.param(
                lambda s: s["mlflow"]["depends_on"]["mlflow-db-init"].update(
                    condition="service_started"
                ),
                "mlflow -> mlflow-db-init: service_started, not completed_successfully",
                id="waiting only for a one-shot to start is reported",
            ),
            pytest.param(
                lambda s: s["airflow-worker"]["depends_on"]["mlflow"].update(
                    condition="service_started"
                ),
                "airflow-worker -> mlflow: service_started, not healthy",
                id="not waiting for a health check is reported",
            ),
            pytest.param(
                lambda s: s["postgres"].update(
                    depends_on={"mlflow": {"condition": "service_healthy"}}
                ),
                "dependency cycle: mlflow -> postgres -> mlflow",
                id="a dependency cycle is reported",
            ),
            pytest.param(
                lambda s: s["mlflow"].update(depends_on=["postgres"]),
                "mlflow: depends_on is a list, so it waits for nothing",
                id="a plain list of dependencies is reported",
            ),
        ],
    )
    def test_the_start_order_rule_reports_a_broken_order(
        self, compose: dict[str, Any], mutate: Any, problem: str
    ) -> None:
        broken = copy.deepcopy(compose)
        mutate(broken["services"])
        assert problem in start_order_problems(broken)


class TestVariables:
    def test_compose_would_accept_every_dollar_sign(self, compose: dict[str, Any]) -> None:
        assert scan_variables(compose)[1] == []

    def test_every_variable_is_documented_and_every_documented_variable_is_used(
        self, uses: list[VarUse], env_docs: dict[str, EnvDoc]
    ) -> None:
        assert documentation_problems(uses, env_docs) == []

    def test_secrets_are_required_from_env_and_never_written_into_the_file(
        self, compose: dict[str, Any], uses: list[VarUse]
    ) -> None:
        assert secret_problems(compose, uses) == []

    def test_the_file_renders_from_the_example_env_with_secrets_filled_in(
        self, rendered: dict[str, Any], sample_env: dict[str, str]
    ) -> None:
        env = _env(rendered["services"]["airflow-worker"])
        password = sample_env["POSTGRES_PASSWORD"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
            f"postgresql+psycopg2://airflow:{password}@postgres/airflow"
        )
        assert env["AIRFLOW__CELERY__BROKER_URL"] == (
            f"redis://:{sample_env['REDIS_PASSWORD']}@redis:6379/0"
        )

    def test_an_empty_secret_stops_compose_with_a_message(
        self, compose: dict[str, Any], sample_env: dict[str, str]
    ) -> None:
        with pytest.raises(LookupError, match=r"MLFLOW_ADMIN_PASSWORD: set .* in \.env"):
            render(compose, {**sample_env, "MLFLOW_ADMIN_PASSWORD": ""})

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("$$HOME", [], id="an escaped dollar is not a variable"),
            pytest.param("a$NAME", [("NAME", "", "")], id="a bare name is a variable"),
            pytest.param("${A:-x:y}", [("A", ":-", "x:y")], id="a default may contain colons"),
            pytest.param(
                "${B:?set B in .env}", [("B", ":?", "set B in .env")], id="a required one"
            ),
        ],
    )
    def test_the_scanner_reads_compose_templates(
        self, text: str, expected: list[tuple[str, str, str]]
    ) -> None:
        found, invalid = scan_variables({"k": text})
        assert [(u.name, u.op, u.arg) for u in found] == expected
        assert invalid == []

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("echo $(id -u)", id="an unescaped command substitution is invalid"),
            pytest.param("${A:-${B}}", id="a nested default is rejected"),
            pytest.param("cost: 5$", id="a trailing dollar is invalid"),
        ],
    )
    def test_the_scanner_flags_templates_compose_rejects(self, text: str) -> None:
        assert scan_variables({"k": text})[1] != []

    @pytest.mark.parametrize(
        ("doc", "problem"),
        [
            pytest.param(
                {"services": {"x": {"environment": {"DB_PASSWORD": "${DB_PASSWORD:-airflow}"}}}},
                "services.x.environment.DB_PASSWORD: ${DB_PASSWORD:-...} gives secret "
                "DB_PASSWORD a default or makes it optional",
                id="a default password is reported",
            ),
            pytest.param(
                {"services": {"x": {"environment": {"API_SECRET_KEY": "hunter2"}}}},
                "services.x.environment.API_SECRET_KEY: secret is not exactly one required "
                "${VAR:?...}",
                id="a literal secret is reported",
            ),
            pytest.param(
                {"services": {"x": {"environment": {"CONN": "postgresql://u:airflow@db/x"}}}},
                "services.x.environment.CONN: password in a URL is not a required variable",
                id="a literal password inside a url is reported",
            ),
        ],
    )
    def test_the_secret_rule_reports_a_leaked_secret(
        self, doc: dict[str, Any], problem: str
    ) -> None:
        assert problem in secret_problems(doc, scan_variables(doc)[0])

    @pytest.mark.parametrize(
        ("env_example", "problem"),
        [
            pytest.param(
                "",
                "PORT is used in docker-compose.yaml but not in .env.example",
                id="an undocumented variable is reported",
            ),
            pytest.param(
                "PORT=8080\n",
                "PORT: no comment line right above it in .env.example",
                id="a variable without a comment is reported",
            ),
            pytest.param(
                "# Port. Optional; default `8080`.\nPORT=8080\n# Gone. Optional.\nOLD=1\n",
                "OLD is documented in .env.example but docker-compose.yaml never uses it",
                id="a stale documented variable is reported",
            ),
            pytest.param(
                "# Port. Optional; default `80`.\nPORT=8080\n",
                ".env.example documents default '80', the compose file uses '8080'",
                id="a drifted default is reported",
            ),
        ],
    )
    def test_the_documentation_rule_reports_drift(self, env_example: str, problem: str) -> None:
        uses = scan_variables({"ports": ["${PORT:-8080}:8080"]})[0]
        problems = documentation_problems(uses, parse_env_example(env_example))
        assert any(problem in p for p in problems), problems

    def test_a_secret_with_a_value_in_the_example_is_reported(self) -> None:
        uses = scan_variables({"k": "${DB_PASSWORD:?set DB_PASSWORD in .env}"})[0]
        docs = parse_env_example("# DB password. Required, secret.\nDB_PASSWORD=changeme\n")
        assert documentation_problems(uses, docs) == [
            "DB_PASSWORD: a secret must be empty in .env.example, not 'changeme'"
        ]


class TestAirflowEnvironment:
    @pytest.mark.parametrize(
        "service",
        [pytest.param(s, id=f"{s} can reach mlflow and the data") for s in AIRFLOW_SERVICES],
    )
    def test_every_airflow_component_gets_the_retrain_settings(
        self, rendered: dict[str, Any], service: str
    ) -> None:
        env = _env(rendered["services"][service])
        assert env["RETRAIN_TRACKING_URI"] == TRACKING_URI
        assert env["RETRAIN_CONFIG"] == "/opt/airflow/config/retraining.yaml"
        assert env["RETRAIN_DATA_PATH"] == "/opt/airflow/data/events"
        assert env["MLFLOW_TRACKING_USERNAME"] == "retrain"
        assert env["MLFLOW_TRACKING_PASSWORD"] == "mlflow_tracking_password-0123456789abcdef"

    def test_the_config_path_is_the_file_the_image_copies(
        self, dockerfile: list[Instruction]
    ) -> None:
        assert (ROOT / "config" / "retraining.yaml").is_file()
        assert (["config/"], "/opt/airflow/config/") in copies(dockerfile)

    def test_the_config_reads_the_tracking_uri_and_data_path_from_the_environment(self) -> None:
        text = (ROOT / "config" / "retraining.yaml").read_text()
        assert "${RETRAIN_TRACKING_URI" in text
        assert "${RETRAIN_DATA_PATH" in text

    def test_the_baked_in_config_resolves_to_the_compose_services(
        self, rendered: dict[str, Any]
    ) -> None:
        from retrain.config import load_config

        env = _env(rendered["services"]["airflow-worker"])
        config = load_config(ROOT / "config" / "retraining.yaml", env=env)
        assert config.registry.tracking_uri == TRACKING_URI
        assert config.data.source.path == env["RETRAIN_DATA_PATH"]

    def test_the_data_path_is_on_the_shared_data_volume(self, services: dict[str, Any]) -> None:
        for name in AIRFLOW_SERVICES:
            assert "retrain-data:/opt/airflow/data" in services[name]["volumes"], name

    def test_airflow_logs_into_the_same_account_mlflow_creates(
        self, services: dict[str, Any]
    ) -> None:
        airflow_env, mlflow_env = _env(services["airflow-worker"]), _env(services["mlflow"])
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            assert airflow_env[key] == mlflow_env[key], key


class TestMlflowService:
    def test_it_runs_the_tracking_server_with_basic_auth(self, services: dict[str, Any]) -> None:
        script = _script(services["mlflow"])
        assert "exec mlflow server" in script
        assert "--app-name basic-auth" in script
        assert "export MLFLOW_AUTH_CONFIG_PATH=" in script

    def test_its_backend_store_is_postgres(self, services: dict[str, Any]) -> None:
        script = _script(services["mlflow"])
        assert 'export MLFLOW_BACKEND_STORE_URI="$$(db_uri mlflow)"' in script
        assert '"postgresql+psycopg2://mlflow:" +' in script
        assert '"@postgres:5432/" + sys.argv[1]' in script
        assert "sqlite" not in script
        assert "--backend-store-uri" not in script  # the env var keeps the password out of `ps`

    def test_its_users_live_in_postgres_too(self, services: dict[str, Any]) -> None:
        script = _script(services["mlflow"])
        assert 'export MLFLOW_AUTH_DATABASE_URI="$$(db_uri mlflow_auth)"' in script
        assert '"database_uri": os.environ["MLFLOW_AUTH_DATABASE_URI"]' in script

    def test_the_database_init_creates_the_role_and_databases_mlflow_uses(
        self, services: dict[str, Any]
    ) -> None:
        sql = _script(services["mlflow-db-init"])
        assert "CREATE ROLE mlflow LOGIN" in sql
        # The password reaches psql from the environment, not from its command line.
        assert "\\getenv mlflow_password MLFLOW_DB_PASSWORD" in sql
        assert "ALTER ROLE mlflow WITH LOGIN PASSWORD :'mlflow_password'" in sql
        for database in ("mlflow", "mlflow_auth"):
            assert f"CREATE DATABASE {database} OWNER mlflow" in sql
        assert "ON_ERROR_STOP=1" in sql

    @pytest.mark.parametrize(
        ("variable", "source"),
        [
            pytest.param(
                "MLFLOW_AUTH_ADMIN_PASSWORD",
                "MLFLOW_ADMIN_PASSWORD",
                id="the admin password comes from env",
            ),
            pytest.param(
                "MLFLOW_FLASK_SERVER_SECRET_KEY",
                "MLFLOW_FLASK_SERVER_SECRET_KEY",
                id="the flask secret key comes from env",
            ),
            pytest.param(
                "MLFLOW_DB_PASSWORD",
                "MLFLOW_DB_PASSWORD",
                id="the database password comes from env",
            ),
        ],
    )
    def test_its_secrets_are_required_variables(
        self, services: dict[str, Any], variable: str, source: str
    ) -> None:
        assert _env(services["mlflow"])[variable].startswith(f"${{{source}:?")

    def test_it_listens_on_all_interfaces_with_host_and_cors_checks(
        self, rendered: dict[str, Any]
    ) -> None:
        script = _script(rendered["services"]["mlflow"])
        hosts = re.search(r'--allowed-hosts "([^"]*)"', script)
        origins = re.search(r'--cors-allowed-origins "([^"]*)"', script)
        assert "--host 0.0.0.0" in script and "--port 5000" in script
        assert hosts and origins
        allowed = hosts[1].split(",")
        assert "mlflow:5000" in allowed  # the Host header of RETRAIN_TRACKING_URI
        assert "*" not in allowed and "*" not in origins[1].split(",")

    def test_it_proxies_artifacts_into_the_mounted_volume(
        self, services: dict[str, Any], rendered: dict[str, Any]
    ) -> None:
        script = _script(rendered["services"]["mlflow"])
        assert "--serve-artifacts" in script
        assert '--artifacts-destination "/mlflow/artifacts"' in script
        assert "mlflow-artifacts:/mlflow/artifacts" in services["mlflow"]["volumes"]

    def test_its_job_runner_is_off(self, services: dict[str, Any]) -> None:
        assert _env(services["mlflow"])["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


class TestScripts:
    @pytest.mark.parametrize(
        "service",
        [
            pytest.param("airflow-init", id="the airflow init script is valid bash"),
            pytest.param("mlflow-db-init", id="the database init script is valid bash"),
            pytest.param("mlflow", id="the mlflow start script is valid bash"),
        ],
    )
    def test_shell_scripts_parse(self, rendered: dict[str, Any], service: str) -> None:
        bash = shutil.which("bash")
        if bash is None:
            pytest.skip("bash is not installed")
        command = rendered["services"][service]["command"]
        assert "-c" in command
        result = subprocess.run(
            [bash, "-n", "-c", command[-1]], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr

    def test_the_embedded_python_compiles(self, rendered: dict[str, Any]) -> None:
        script = _script(rendered["services"]["mlflow"])
        blocks = re.findall(r"<<'PY'\n(.*?)\nPY\n", script, re.S)
        assert len(blocks) == 1
        compile(blocks[0], "mlflow-start.py", "exec")
        one_liner = re.search(r"python -c '([^']*)'", script)
        assert one_liner
        compile(one_liner[1], "db_uri.py", "exec")


class TestDockerfile:
    def test_it_extends_the_airflow_image_the_project_pins(
        self, dockerfile: list[Instruction]
    ) -> None:
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        froms = [ins.args for ins in dockerfile if ins.keyword == "FROM"]
        assert froms == ["apache/airflow:3.3.2-python3.11"]
        assert "apache-airflow==3.3.2" in pyproject["dependencies"]
        assert pyproject["requires-python"] == ">=3.11,<3.12"

    def test_it_installs_the_project_with_the_lock_file_as_the_airflow_user(
        self, dockerfile: list[Instruction]
    ) -> None:
        installs = [ins for ins in dockerfile if ins.keyword == "RUN" and "pip install" in ins.args]
        assert len(installs) == 1
        install = installs[0]
        assert install.user == "airflow"
        assert "-c /tmp/retrain-src/constraints.txt" in install.args
        assert re.search(r"install .* /tmp/retrain-src ", install.args)
        assert '"apache-airflow==${AIRFLOW_VERSION}"' in install.args
        assert "pip check" in install.args
        copied = copies(dockerfile)
        assert (["pyproject.toml", "constraints.txt", "README.md"], "/tmp/retrain-src/") in copied
        for package in (
            "retrain",
            "retrain_airflow",
        ):  # both installed packages: the DAGs need both
            assert ([f"{package}/"], f"/tmp/retrain-src/{package}/") in copied

    @pytest.mark.parametrize(
        "package",
        [
            pytest.param('"mlflow[auth]"', id="mlflow has its basic auth extra"),
            pytest.param("psycopg2-binary", id="mlflow can reach postgres"),
            pytest.param("boto3", id="mlflow can write artifacts to s3"),
        ],
    )
    def test_it_adds_what_the_mlflow_server_needs(
        self, dockerfile: list[Instruction], package: str
    ) -> None:
        install = next(
            ins for ins in dockerfile if ins.keyword == "RUN" and "pip install" in ins.args
        )
        assert f" {package} " in f" {install.args} "

    @pytest.mark.parametrize(
        ("source", "target"),
        [
            pytest.param("dag[s]/", "/opt/airflow/dags/", id="dags go to the dags folder"),
            pytest.param(
                "plugin[s]/", "/opt/airflow/plugins/", id="plugins go to the plugins folder"
            ),
            pytest.param("config/", "/opt/airflow/config/", id="config goes to the config folder"),
        ],
    )
    def test_it_bakes_in_dags_plugins_and_config(
        self, dockerfile: list[Instruction], source: str, target: str
    ) -> None:
        assert ([source], target) in copies(dockerfile)

    def test_it_ends_as_the_airflow_user(self, dockerfile: list[Instruction]) -> None:
        assert dockerfile[-1].user == "airflow"

    def test_every_copied_path_exists_and_is_in_the_build_context(
        self, dockerfile: list[Instruction]
    ) -> None:
        patterns = [
            line.strip()
            for line in DOCKERIGNORE.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        sources = [src.rstrip("/") for srcs, _ in copies(dockerfile) for src in srcs]
        assert [s for s in sources if dockerignored(s, patterns)] == []
        assert [s for s in sources if "[" not in s and not (ROOT / s).exists()] == []

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param(".env", id="the env file with secrets never enters the build"),
            pytest.param(".git", id="the git history stays out"),
            pytest.param(".venv", id="the local venv stays out"),
            pytest.param(".state", id="local demo state stays out"),
        ],
    )
    def test_the_build_context_excludes(self, path: str) -> None:
        patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
        assert dockerignored(path, [p for p in patterns if p and not p.startswith("#")])


class TestDeployGuide:
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("cp .env.example .env", id="it starts from the example env"),
            pytest.param("docker compose up -d --build", id="it builds and starts the stack"),
            pytest.param("--scale airflow-worker=3", id="it shows how to scale workers"),
            pytest.param("MLFLOW_ARTIFACTS_DESTINATION=s3://", id="it shows how to use s3"),
        ],
    )
    def test_the_guide_covers(self, text: str) -> None:
        assert text in DEPLOY_GUIDE.read_text()

    def test_services_named_in_compose_commands_exist(self, services: dict[str, Any]) -> None:
        guide = DEPLOY_GUIDE.read_text()
        named = set(
            re.findall(r"docker compose (?:exec|run --rm|logs(?: -f)?|restart) ([a-z-]+)", guide)
        )
        named |= set(re.findall(r"--scale ([a-z-]+)=", guide))
        named |= set(re.findall(r"docker compose cp (?:\S+ )?([a-z-]+):/", guide))
        assert named, "the guide names no service"
        assert sorted(named - set(services)) == []


class TestSharedSettings:
    """``deploy/airflow-celery.env`` is the one place of the topology's Airflow settings: the
    compose file reads it and ``make prod-up`` (what tests/topology runs) starts with it."""

    @pytest.mark.parametrize("service", [*AIRFLOW_SERVICES, "airflow-init", "airflow-cli"])
    def test_every_airflow_service_reads_the_file(
        self, services: dict[str, Any], service: str
    ) -> None:
        assert services[service]["env_file"] == [str(SETTINGS_FILE.relative_to(ROOT))]

    def test_no_service_overrides_a_shared_setting(self, services: dict[str, Any]) -> None:
        shared = read_env_file()
        overridden = {
            f"{name}: {key}"
            for name, service in services.items()
            for key in (service.get("environment") or {})
            if key in shared
        }
        assert overridden == set()

    def test_the_native_topology_runs_with_the_same_settings(self, tmp_path: Path) -> None:
        env = airflow_env(Topology(state=tmp_path))
        shared = read_env_file()
        assert {key: env[key] for key in shared} == shared
        assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("A='quoted'\n", "without quotes"),
            ("A=${B}\n", "x.env:1: expected KEY=VALUE"),
            ("A=1\nA=2\n", "set twice"),
            ("not a setting\n", "KEY=VALUE"),
        ],
    )
    def test_the_reader_refuses_what_compose_would_read_differently(
        self, tmp_path: Path, text: str, problem: str
    ) -> None:
        path = tmp_path / "x.env"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(RuntimeError, match=problem):
            read_env_file(path)
