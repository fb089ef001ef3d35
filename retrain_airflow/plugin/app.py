"""The Retraining view's FastAPI app (mounted by Airflow's api-server at ``/retrain``).

Pages (server-rendered, :mod:`retrain_airflow.plugin.render`):

* ``GET /`` every model of ``$RETRAIN_CONFIG``: production, canary, the newest run;
* ``GET /models/{name}`` one model (``?status=&trigger=&mode=&limit=`` filter its log);
* ``GET /models/{name}/rollback`` and ``/promote``: the confirmation forms;
* ``GET /models/{name}/runs/{retraining_id}`` one retraining run's full record;
* ``GET /models/{name}/drift-report?run_id=`` the newest drift report, served sandboxed.

Actions: ``POST /models/{name}/rollback`` and ``/promote`` trigger the model's rollback or
promotion DAG as the signed-in user and redirect (303) to the model page, which shows the run
and reloads until it finishes. The view never moves an alias itself.

Security (Airflow does not authenticate plugin apps):

* every route depends on the Airflow user (``GetUserDep``: the UI's ``_token`` cookie or a
  bearer JWT): anonymous 401, a bad token 403;
* reading a model needs ``GET`` on its pipeline DAG's runs; an action needs ``POST`` on the DAG
  *it triggers*. Airflow's ``requires_access_dag`` resolves its DAG id from a fixed
  ``param_dag_id`` or a ``dag_id`` path/query parameter, but here the DAG depends on the model
  (``retrain_rollback__<model>`` in a directory config), so :class:`AirflowDagAccess` resolves
  the id from the config first and then runs ``requires_access_dag(..., param_dag_id=<that
  id>)`` itself (a user-supplied ``dag_id`` parameter would let a caller pick the DAG checked);
* every POST checks that ``Origin`` (else ``Referer``) names this host (403 otherwise), on top
  of the cookie's ``SameSite=Lax``; a request with a bearer token and neither header passes
  (browsers never add a bearer token on their own);
* a double submit triggers one run (the form's ``request_id`` makes the run id);
* pages carry a ``Content-Security-Policy`` that runs no script but the view's own (by hash);
  everything from the registry, the log and Airflow is escaped.

Errors: an unreachable MLflow (503), a broken config (500), Airflow refusing a run (409/422)
become an HTML page with the redacted message, never a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import urlsplit

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from retrain.config import CONFIG_ENV, RetrainConfig
from retrain.config.catalog import Catalog
from retrain.errors import ConfigError, RegistryUnavailableError, RetrainError
from retrain.redact import redact
from retrain_airflow.dags.targets import Target, load_targets
from retrain_airflow.definitions import config_path
from retrain_airflow.plugin import URL_PREFIX
from retrain_airflow.plugin.actions import (
    DAG_BASES,
    ActionError,
    AirflowRuns,
    RunStore,
    new_request_id,
    valid_request_id,
)
from retrain_airflow.plugin.render import (
    SCRIPT_CSP,
    DagRunView,
    Links,
    LogFilter,
    ModelActions,
    PageContext,
    confirm_page,
    error_page,
    mlflow_ui_base,
    model_list_page,
    model_page,
    record_page,
)

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

    from retrain.log import RetrainingRecord
    from retrain.overview import ModelOverview, ModelRow

__all__ = [
    "AirflowDagAccess",
    "DagAccess",
    "MlflowSource",
    "OverviewSource",
    "create_app",
    "dag_access",
    "overview_source",
    "run_store",
]

logger = logging.getLogger(__name__)

#: Headers of every page: no script but the view's own (by hash), framed only by this origin
#: (the Airflow UI), forms only to this origin, nothing cached.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        f"default-src 'none'; script-src {SCRIPT_CSP}; style-src 'unsafe-inline'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: Headers of the drift report (HTML written from data, shown as a document of its own): a
#: sandbox without scripts, an opaque origin, inline styles and data: images only.
REPORT_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_RECORDS = 1000
REASON_MIN, REASON_MAX = 3, 500
DRIFT_REPORT = "drift_report.html"


# --- what the routes read through (dependencies tests and benchmarks can override) -------------


class OverviewSource(Protocol):
    """Where the pages' registry and log data come from."""

    def overview(self, config: RetrainConfig, *, records: int) -> ModelOverview: ...

    def row(self, config: RetrainConfig) -> ModelRow: ...

    def record(self, config: RetrainConfig, retraining_id: str) -> RetrainingRecord | None: ...

    def drift_report(self, config: RetrainConfig, run_id: str) -> str | None: ...


#: Log records read in full for the model page (gate, A/B, checklist, links); older rows link to
#: their record's page (``LogStore.records`` lists the compact form only).
DETAILED = 5


class MlflowSource:
    """:class:`OverviewSource` on the config's MLflow server (``retrain.overview``)."""

    def overview(self, config: RetrainConfig, *, records: int) -> ModelOverview:
        from retrain.log import LogStore  # noqa: PLC0415 - MLflow only once a page is asked for
        from retrain.overview import model_overview  # noqa: PLC0415
        from retrain.registry import ModelRegistry  # noqa: PLC0415

        page = model_overview(
            config,
            registry=ModelRegistry(config),
            log=LogStore.of(config),
            records=records,
            detailed=DETAILED,
        )
        full = {r.retraining_id: r for r in page.detailed}
        rows = tuple(full.get(r.retraining_id, r) for r in page.records)
        return dataclasses.replace(page, records=rows)

    def row(self, config: RetrainConfig) -> ModelRow:
        from retrain.log import LogStore  # noqa: PLC0415
        from retrain.overview import model_row  # noqa: PLC0415
        from retrain.registry import ModelRegistry  # noqa: PLC0415

        return model_row(config, registry=ModelRegistry(config), log=LogStore.of(config))

    def record(self, config: RetrainConfig, retraining_id: str) -> RetrainingRecord | None:
        from retrain.log import LogStore  # noqa: PLC0415

        return LogStore.of(config).get(retraining_id)

    def drift_report(self, config: RetrainConfig, run_id: str) -> str | None:
        """The ``drift_report.html`` artifact of ``run_id``, if that run is one of the model's
        (its pipeline, monitor or log experiment); ``None`` when it is not or has none."""
        from mlflow.exceptions import MlflowException  # noqa: PLC0415

        from retrain.tracking import bounded, tracking_client  # noqa: PLC0415

        client = tracking_client(config)
        ours = {
            config.experiment_name,
            f"{config.experiment_name}/monitor",
            config.log_experiment_name,
        }
        with bounded(config, f"reading the drift report of MLflow run {run_id}"):
            try:
                run = client.get_run(run_id)
            except MlflowException as exc:
                if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    return None
                raise
            experiment = client.get_experiment(run.info.experiment_id)
            if experiment is None or experiment.name not in ours:
                return None
            names = {item.path for item in client.list_artifacts(run_id)}
            if DRIFT_REPORT not in names:
                return None
            with tempfile.TemporaryDirectory(prefix="retrain-drift-") as tmp:
                path = client.download_artifacts(run_id, DRIFT_REPORT, tmp)
                return Path(path).read_text(encoding="utf-8", errors="replace")


def overview_source() -> OverviewSource:
    return MlflowSource()


def run_store() -> RunStore:
    return AirflowRuns()


class DagAccess(Protocol):
    """Whether the signed-in user may act on a DAG's runs."""

    def allowed(self, method: ResourceMethod, dag_id: str) -> bool: ...


class AirflowDagAccess:
    """:class:`DagAccess` through Airflow's ``requires_access_dag`` (the auth manager)."""

    def __init__(self, request: Request, user: BaseUser) -> None:
        self.request = request
        self.user = user

    def allowed(self, method: ResourceMethod, dag_id: str) -> bool:
        check = requires_access_dag(method, DagAccessEntity.RUN, param_dag_id=dag_id)
        try:
            check(self.request, self.user)
        except HTTPException as exc:
            if exc.status_code == 403:
                return False
            raise
        return True


def dag_access(request: Request, user: GetUserDep) -> DagAccess:
    return AirflowDagAccess(request, user)


SourceDep = Annotated[OverviewSource, Depends(overview_source)]
RunsDep = Annotated[RunStore, Depends(run_store)]
AccessDep = Annotated[DagAccess, Depends(dag_access)]


def catalog() -> tuple[Catalog, list[Target]]:
    """The config's models, read afresh for each request (an edit shows at once)."""
    return load_targets()


CatalogDep = Annotated[tuple[Catalog, list[Target]], Depends(catalog)]


def _target(name: str, loaded: tuple[Catalog, list[Target]]) -> Target:
    found, targets = loaded
    for target in targets:
        if target.name == name:
            return target
    for path, error in found.errors.items():
        if Path(path).stem == name:
            raise ConfigError([redact(str(error))], source=None)
    known = ", ".join(t.name for t in targets) or "none"
    raise HTTPException(404, f"no model {name!r} in the config (models: {known})")


def model_target(name: str, user: GetUserDep, access: AccessDep, loaded: CatalogDep) -> Target:
    """The model of the path, if the user may read its runs (``GET`` on its pipeline DAG)."""
    target = _target(name, loaded)
    dag_id = target.dag_id(DAG_BASES["pipeline"])
    if not access.allowed("GET", dag_id):
        raise HTTPException(403, f"you may not read the runs of {dag_id}")
    return target


def may_trigger(kind: str) -> Callable[..., Target]:
    """A dependency: the model of the path, if the user may trigger its ``kind`` DAG (``POST``
    on that DAG's runs, checked by ``requires_access_dag`` with the DAG id resolved here)."""

    def check(name: str, user: GetUserDep, access: AccessDep, loaded: CatalogDep) -> Target:
        target = _target(name, loaded)
        dag_id = target.dag_id(DAG_BASES[kind])
        if not access.allowed("POST", dag_id):
            raise HTTPException(403, f"you may not trigger {dag_id}")
        return target

    check.__name__ = f"may_trigger_{kind}"
    return check


may_rollback = may_trigger("rollback")
may_promote = may_trigger("promote")


def _hosts(request: Request) -> set[str]:
    hosts = {request.headers.get("host", "").lower()}
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:
        hosts |= {h.strip().lower() for h in forwarded.split(",")}
    return hosts - {""}


def same_origin(request: Request, user: GetUserDep) -> None:
    """Refuse (403) a write whose ``Origin`` (else ``Referer``) is another site."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return  # a browser never adds a bearer token by itself: not a cross-site form
        raise HTTPException(403, "refused: the request has neither an Origin nor a Referer header")
    try:
        netloc = urlsplit(source).netloc.lower()
    except ValueError:
        netloc = ""
    if source == "null" or not netloc or netloc not in _hosts(request):
        raise HTTPException(403, f"refused: a write from another site ({source[:200]})")


SameOrigin = Annotated[None, Depends(same_origin)]


# --- helpers ------------------------------------------------------------------------------------


def _links(request: Request, config: RetrainConfig | None = None) -> Links:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    airflow = root.removesuffix(URL_PREFIX) if root.endswith(URL_PREFIX) else ""
    mlflow = mlflow_ui_base(config.registry.tracking_uri) if config is not None else None
    return Links(root=root, airflow=airflow, mlflow=mlflow)


def _context(
    request: Request, user: BaseUser | None, config: RetrainConfig | None = None
) -> PageContext:
    name = user.get_name() if user is not None else ""
    return PageContext(links=_links(request, config), user=name, now=datetime.now(UTC))


def _page(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status_code, headers=PAGE_HEADERS)


def _error(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    ctx = _context(request, None)
    return _page(error_page(status, title, redact(message), ctx), status)


def _retrain_error(request: Request, exc: RetrainError) -> HTMLResponse:
    if isinstance(exc, RegistryUnavailableError):
        return _error(request, 503, "MLflow is unreachable", str(exc))
    if isinstance(exc, ConfigError):
        source = f"(${CONFIG_ENV} = {config_path()})"
        return _error(request, 500, "The retrain config is broken", f"{exc}\n{source}")
    return _error(request, 502, "MLflow refused the request", str(exc))


def _http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
    titles = {
        401: "Not signed in",
        403: "Not allowed",
        404: "Not found",
        405: "Method not allowed",
        422: "Bad request",
    }
    response = _error(
        request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail)
    )
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


class _SafeRoute(APIRoute):
    """Turns whatever a route (or a dependency) raises into an HTML page: known errors with
    their message and status, anything else as a 500 without its traceback (logged)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def safe(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                return _http_error(request, exc)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                    for e in exc.errors()
                )
                return _error(request, 422, "Bad request", problems)
            except ActionError as exc:
                return _error(request, exc.status_code, "Airflow refused the action", exc.message)
            except RetrainError as exc:
                return _retrain_error(request, exc)
            except Exception as exc:
                # the message may hold hosts, paths or SQL: the log gets it, the page a reference
                ref = secrets.token_hex(4)
                logger.exception(
                    "retrain view [%s]: %s %s failed", ref, request.method, request.url.path
                )
                return _error(
                    request,
                    500,
                    "Unexpected error",
                    f"{type(exc).__name__} (reference {ref}: the api-server log has the details)",
                )

        return safe


def _rows(source: OverviewSource, targets: Sequence[Target]) -> list[ModelRow]:
    if len(targets) <= 1:
        return [source.row(t.config) for t in targets]
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        return list(pool.map(lambda t: source.row(t.config), targets))


def _actions(
    target: Target, access: DagAccess, runs: RunStore, problems: list[str]
) -> ModelActions:
    dags = {kind: target.dag_id(base) for kind, base in DAG_BASES.items()}
    allowed = frozenset(k for k in ("rollback", "promote") if access.allowed("POST", dags[k]))
    try:
        dag_problems = runs.dag_problems([dags["rollback"], dags["promote"], dags["pipeline"]])
    except Exception as exc:
        logger.warning("retrain view: reading DAG states failed: %s", exc)
        problems.append(redact(f"Airflow's database (DAG states): {exc}"))
        dag_problems = {}
    return ModelActions(
        dags=dags,
        allowed=allowed,
        dag_problems=dag_problems,
        require_approval=target.config.deployment.require_approval,
    )


def _reason_problem(reason: str) -> str | None:
    if len(reason) < REASON_MIN:
        return (
            f"Give a reason of at least {REASON_MIN} characters (it goes into the audit history)."
        )
    if len(reason) > REASON_MAX:
        return f"The reason is {len(reason)} characters long; at most {REASON_MAX}."
    return None


def _version_field(value: str, what: str, *, required: bool) -> int | None:
    text = value.strip()
    if not text:
        if required:
            raise HTTPException(400, f"{what} is missing: reload the confirmation page")
        return None
    if not text.isdigit() or int(text) < 1:
        raise HTTPException(400, f"{what} must be a version number, not {text[:20]!r}")
    return int(text)


# --- the routes ---------------------------------------------------------------------------------

router = APIRouter(route_class=_SafeRoute)


@router.get("/", response_class=HTMLResponse)
def model_list(
    *,
    request: Request,
    user: GetUserDep,
    access: AccessDep,
    source: SourceDep,
    loaded: CatalogDep,
) -> HTMLResponse:
    found, targets = loaded
    readable = [t for t in targets if access.allowed("GET", t.dag_id(DAG_BASES["pipeline"]))]
    rows = _rows(source, readable)
    errors = {str(path): redact(str(error)) for path, error in found.errors.items()}
    content = model_list_page(
        rows,
        _context(request, user),
        config_errors=errors,
        config_path=str(found.root),
        pipelines={t.name: t.dag_id(DAG_BASES["pipeline"]) for t in readable},
    )
    failed = bool(rows) and all(row.error for row in rows)
    return _page(content, 503 if failed else 200)


def _triggered(
    runs: RunStore, actions: ModelActions, action: str | None, run_id: str | None
) -> tuple[DagRunView | None, list[DagRunView], list[str]]:
    """The run an action just triggered (``action``, ``run_id`` of the redirect), the recent
    runs of the model's rollback and promotion DAGs, and what could not be read."""
    problems: list[str] = []
    triggered: DagRunView | None = None
    recent: list[DagRunView] = []
    try:
        if action and run_id:
            triggered = runs.find(actions.dags[action], run_id)
            if triggered is None:
                problems.append(f"run {run_id} of {actions.dags[action]} was not found")
        recent = runs.recent([actions.dags["rollback"], actions.dags["promote"]], 10)
    except Exception as exc:
        logger.warning("retrain view: reading DAG runs failed: %s", exc)
        problems.append(redact(f"Airflow's database (DAG runs): {exc}"))
    return triggered, recent, problems


@router.get("/models/{name}", response_class=HTMLResponse)
def model(
    *,
    request: Request,
    user: GetUserDep,
    target: Annotated[Target, Depends(model_target)],
    access: AccessDep,
    source: SourceDep,
    runs: RunsDep,
    status: Annotated[str | None, Query(max_length=100)] = None,
    trigger: Annotated[str | None, Query(max_length=200)] = None,
    mode: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_RECORDS)] = 50,
    action: Annotated[str | None, Query(pattern="^(rollback|promote)$")] = None,
    run_id: Annotated[str | None, Query(max_length=250)] = None,
    again: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    config = target.config
    problems: list[str] = []
    actions = _actions(target, access, runs, problems)
    # the run's state before the registry: a run that finishes in between shows as running
    # (the page reloads) instead of as done over the old state
    triggered, recent, more = _triggered(runs, actions, action, run_id)
    overview = source.overview(config, records=limit)
    content = model_page(
        overview,
        _context(request, user, config),
        actions=actions,
        log_filter=LogFilter(
            status=status or None, trigger=trigger or None, mode=mode or None, limit=limit
        ),
        triggered=triggered,
        triggered_again=again,
        recent=recent,
        problems=[*problems, *more],
    )
    return _page(content)


def _confirm(
    request: Request,
    user: BaseUser,
    target: Target,
    *,
    kind: str,
    source: OverviewSource,
    runs: RunStore,
    request_id: str | None = None,
    reason: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The confirmation form of ``kind`` (a fresh ``request_id`` unless re-shown)."""
    dag_id = target.dag_id(DAG_BASES[kind])
    try:
        dag_problem = runs.dag_problems([dag_id]).get(dag_id)
    except Exception as exc:
        dag_problem = redact(f"unknown to this page (Airflow's database: {exc})")
    content = confirm_page(
        source.overview(target.config, records=1),
        _context(request, user, target.config),
        kind=kind,
        dag_id=dag_id,
        request_id=request_id or new_request_id(),
        reason=reason,
        error=error,
        dag_problem=dag_problem,
    )
    return _page(content, status_code)


def _trigger(
    request: Request,
    user: BaseUser,
    target: Target,
    *,
    kind: str,
    source: OverviewSource,
    runs: RunStore,
    reason: str,
    request_id: str,
    conf: dict[str, Any],
) -> Response:
    """Trigger the model's ``kind`` DAG once per ``request_id``; 303 to the model page."""
    if not valid_request_id(request_id):
        raise HTTPException(400, "the form's request_id is missing or malformed: reload the form")
    problem = _reason_problem(reason)
    if problem:
        return _confirm(
            request, user, target, kind=kind, source=source, runs=runs,
            request_id=request_id, reason=reason, error=problem, status_code=422,
        )  # fmt: skip
    dag_id = target.dag_id(DAG_BASES[kind])
    name = user.get_name()
    done = runs.trigger(
        dag_id, request_id=request_id, conf={"reason": reason, **conf}, user=name, note=reason
    )
    logger.info(
        "retrain view: %s %s run %s of %s",
        name,
        "triggered" if done.created else "re-submitted (not triggered again)",
        done.run.run_id,
        dag_id,
    )
    query = {"action": kind, "run_id": done.run.run_id}
    if not done.created:
        query["again"] = "true"
    # no fragment: the page's refresh reloads its own URL, and a URL with one only scrolls
    return RedirectResponse(_links(request).model(target.name, **query), 303)


@router.get("/models/{name}/rollback", response_class=HTMLResponse)
def rollback_form(
    *,
    request: Request,
    user: GetUserDep,
    target: Annotated[Target, Depends(may_rollback)],
    source: SourceDep,
    runs: RunsDep,
) -> HTMLResponse:
    return _confirm(request, user, target, kind="rollback", source=source, runs=runs)


@router.post("/models/{name}/rollback")
def rollback(
    *,
    request: Request,
    user: GetUserDep,
    _origin: SameOrigin,
    target: Annotated[Target, Depends(may_rollback)],
    source: SourceDep,
    runs: RunsDep,
    reason: Annotated[str, Form(max_length=5000)] = "",
    expected_version: Annotated[str, Form(max_length=20)] = "",
    to_version: Annotated[str, Form(max_length=20)] = "",
    request_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    conf = {
        "to_version": _version_field(to_version, "to_version", required=False),
        "expected_version": _version_field(expected_version, "expected_version", required=True),
    }
    return _trigger(
        request, user, target, kind="rollback", source=source, runs=runs,
        reason=reason.strip(), request_id=request_id, conf=conf,
    )  # fmt: skip


@router.get("/models/{name}/promote", response_class=HTMLResponse)
def promote_form(
    *,
    request: Request,
    user: GetUserDep,
    target: Annotated[Target, Depends(may_promote)],
    source: SourceDep,
    runs: RunsDep,
) -> HTMLResponse:
    return _confirm(request, user, target, kind="promote", source=source, runs=runs)


@router.post("/models/{name}/promote")
def promote(
    *,
    request: Request,
    user: GetUserDep,
    _origin: SameOrigin,
    target: Annotated[Target, Depends(may_promote)],
    source: SourceDep,
    runs: RunsDep,
    reason: Annotated[str, Form(max_length=5000)] = "",
    version: Annotated[str, Form(max_length=20)] = "",
    request_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    conf = {"version": _version_field(version, "version", required=True)}
    return _trigger(
        request, user, target, kind="promote", source=source, runs=runs,
        reason=reason.strip(), request_id=request_id, conf=conf,
    )  # fmt: skip


@router.get("/models/{name}/runs/{retraining_id}", response_class=HTMLResponse)
def record(
    *,
    request: Request,
    user: GetUserDep,
    target: Annotated[Target, Depends(model_target)],
    source: SourceDep,
    retraining_id: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:+-]{1,128}$")],
) -> HTMLResponse:
    """One retraining run's full record (the log lists compact records)."""
    found = source.record(target.config, retraining_id)
    if found is None:
        raise HTTPException(404, f"no retraining {retraining_id!r} in the log of {target.name}")
    return _page(record_page(found, target.name, _context(request, user, target.config)))


@router.get("/models/{name}/drift-report")
def drift_report(
    *,
    user: GetUserDep,
    target: Annotated[Target, Depends(model_target)],
    source: SourceDep,
    run_id: Annotated[str, Query(pattern="^[A-Za-z0-9_-]{1,64}$")],
) -> Response:
    """The run's ``drift_report.html``, as a sandboxed document (no scripts, opaque origin)."""
    text = source.drift_report(target.config, run_id)
    if text is None:
        raise HTTPException(404, f"MLflow run {run_id} of {target.name} has no {DRIFT_REPORT}")
    return HTMLResponse(text, headers=REPORT_HEADERS)


# --- the app ------------------------------------------------------------------------------------


async def _not_found(request: Request, exc: Exception) -> Response:
    """A path no route serves (what routes raise is turned into pages by ``_SafeRoute``)."""
    if isinstance(exc, StarletteHTTPException):
        return _http_error(request, exc)
    return _error(request, 500, "Unexpected error", type(exc).__name__)  # pragma: no cover


@cache
def create_app() -> FastAPI:
    """The view's app (one per process, built on the first request)."""
    app = FastAPI(title="retrain: Retraining view", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, _not_found)
    return app
