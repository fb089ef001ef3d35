"""The view's HTML: self-contained pages (inline CSS, inline SVG charts, nothing fetched from
elsewhere). Forms, filters and details work without JavaScript; the one inline script
(:data:`SCRIPT`) only makes links to Airflow pages leave Airflow's sandboxed iframe.

Everything that comes from the registry, the log, the config or Airflow goes through
:func:`esc` (``html.escape`` with quotes) before it reaches a page, URLs are built from
``quote``-d parts, and the pages are served with a ``Content-Security-Policy`` that allows no
script but :data:`SCRIPT` (by its hash), so a ``<script>`` in a reason shows as text and could
not run even if it slipped through. The functions here only format: they read nothing and
import neither MLflow nor Airflow.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from retrain.log import RetrainingRecord
    from retrain.overview import DriftView, ModelOverview, ModelRow, ProductionChange, VersionRow

__all__ = [
    "SCRIPT",
    "SCRIPT_CSP",
    "DagRunView",
    "Links",
    "LogFilter",
    "ModelActions",
    "PageContext",
    "confirm_page",
    "error_page",
    "esc",
    "interval_svg",
    "mlflow_ui_base",
    "model_list_page",
    "model_page",
    "record_page",
    "timeline_svg",
]

#: Rows of the versions and timeline tables shown before "older ..." (collapsed).
SHOWN_ROWS = 20
#: Seconds between reloads of a page that shows a run still queued or running.
REFRESH_SECONDS = 5
_FINISHED = frozenset({"success", "failed"})
_SEVERITY_ORDER = {"high": 0, "medium": 1, "unknown": 2, "low": 3, "none": 4}
_GOOD = frozenset({"deployed", "passed", "success", "promote", "promoted", "production", "none"})
_BAD = frozenset(
    {"failed", "rejected", "rollback", "rolled back", "rolled_back", "high", "error", "false"}
)
_WARN = frozenset(
    {"canary", "staging", "awaiting_approval", "medium", "running", "queued", "forced", "continue"}
)

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1f2328; background: #fff; font-size: 14px; }
header { background: #f6f8fa; border-bottom: 1px solid #d0d7de; padding: .6rem 1.2rem;
  display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
header .crumbs a { color: #0969da; text-decoration: none; }
header .who { margin-left: auto; color: #59636e; font-size: .85rem; }
main { padding: 0 1.2rem 2rem; max-width: 1400px; }
h1 { font-size: 1.35rem; margin: 1rem 0 .4rem; }
h2 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; border-bottom: 1px solid #d8dee4;
  padding-bottom: .2rem; }
h3 { font-size: .95rem; margin: .8rem 0 .3rem; }
nav.sections a { margin-right: .9rem; color: #0969da; font-size: .9rem; }
a { color: #0969da; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .85rem; }
th, td { border: 1px solid #d8dee4; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap, span.nowrap { white-space: nowrap; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .8rem; font-size: .78rem;
  border: 1px solid #d0d7de; background: #f6f8fa; white-space: nowrap; }
.badge.ok { background: #dafbe1; border-color: #4ac26b; color: #116329; }
.badge.bad { background: #ffebe9; border-color: #ff8182; color: #a40e26; }
.badge.warn { background: #fff8c5; border-color: #d4a72c; color: #7d4e00; }
.badge.muted { color: #59636e; }
.cards { display: flex; gap: 1rem; flex-wrap: wrap; }
.card { border: 1px solid #d0d7de; border-radius: .4rem; padding: .6rem .9rem; min-width: 14rem; }
.card .big { font-size: 1.6rem; font-weight: 600; }
.muted { color: #59636e; }
.note, .warning, .error { padding: .5rem .8rem; margin: .6rem 0; }
.note { border-left: 4px solid #0969da; background: #ddf4ff; }
.warning { border-left: 4px solid #d4a72c; background: #fff8c5; }
.error { border-left: 4px solid #cf222e; background: #ffebe9; white-space: pre-wrap; }
.button { display: inline-block; padding: .35rem .8rem; border-radius: .4rem; cursor: pointer;
  border: 1px solid #1f883d; background: #1f883d; color: #fff; text-decoration: none;
  font-size: .9rem; }
.button.danger { background: #cf222e; border-color: #cf222e; }
.button.plain { background: #f6f8fa; color: #1f2328; border-color: #d0d7de; }
.actions { display: flex; gap: .8rem; flex-wrap: wrap; align-items: center; margin: .5rem 0; }
form.filter { display: flex; gap: .6rem; align-items: end; flex-wrap: wrap; margin: .4rem 0; }
form.filter label, form.confirm label { display: flex; flex-direction: column; font-size: .8rem; }
form.confirm textarea { width: min(40rem, 95%); min-height: 4rem; font: inherit; }
details > summary { cursor: pointer; color: #0969da; }
details .inner { padding: .3rem 0 .3rem .8rem; }
ul.reasons { margin: .2rem 0; padding-left: 1.2rem; }
svg { max-width: 100%; height: auto; }
svg text { font-family: inherit; font-size: 11px; fill: #59636e; }
code { font-size: .82rem; background: #f6f8fa; padding: 0 .2rem; border-radius: .2rem; }
"""


#: The pages' only script. Airflow shows the view in an iframe sandboxed without
#: ``allow-top-navigation`` or ``allow-popups``, so a link to an Airflow page (``target="_top"``)
#: could neither leave the frame nor open a tab. This moves the Airflow UI around the frame to
#: the link's page through its own router (same origin: ``history.pushState`` and a
#: ``popstate`` event, no navigation); anywhere else (the view opened on its own, a modified
#: click, an error) the link behaves as a plain link. Allowed by its hash, see :data:`SCRIPT_CSP`.
SCRIPT = """(function () {
  if (window.top === window) return;
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest("a[data-airflow]") : null;
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey ||
        event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    try {
      var outer = window.top, url = new URL(link.href, window.location.href);
      if (url.origin !== outer.location.origin) throw new Error("another site");
      outer.history.pushState(null, "", url.pathname + url.search + url.hash);
      outer.dispatchEvent(new PopStateEvent("popstate", { state: null }));
    } catch (error) {
      window.location.assign(link.href);
    }
  });
})();"""
#: The ``script-src`` that allows :data:`SCRIPT` and nothing else.
SCRIPT_CSP = "'sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode() + "'"


def esc(value: Any) -> str:
    """``value`` as HTML text (``None`` is empty), quotes escaped so it is safe in attributes."""
    return "" if value is None else html.escape(str(value), quote=True)


# --- what the pages are given --------------------------------------------------------------------


def mlflow_ui_base(tracking_uri: str) -> str | None:
    """The MLflow UI's base URL for ``tracking_uri``: an ``http(s)`` URI without user info,
    query or fragment; ``None`` for a file or database store (no UI to link to)."""
    try:
        parts = urlsplit(tracking_uri)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class Links:
    """Where the pages link to.

    ``root``: the app's own mount path (``/retrain`` inside Airflow); ``airflow``: the Airflow
    UI's root path (``""`` on a plain host); ``mlflow``: the MLflow UI's base URL or ``None``.
    """

    root: str = ""
    airflow: str = ""
    mlflow: str | None = None

    def home(self) -> str:
        return f"{self.root}/"

    def model(self, name: str, **query: str) -> str:
        url = f"{self.root}/models/{quote(name, safe='')}"
        return f"{url}?{urlencode(query)}" if query else url

    def action(self, name: str, kind: str) -> str:
        return f"{self.model(name)}/{kind}"

    def record(self, name: str, retraining_id: str) -> str:
        return f"{self.model(name)}/runs/{quote(retraining_id, safe='')}"

    def drift_report(self, name: str, run_id: str) -> str:
        return f"{self.model(name)}/drift-report?{urlencode({'run_id': run_id})}"

    def airflow_dag(self, dag_id: str) -> str:
        return f"{self.airflow}/dags/{quote(dag_id, safe='')}"

    def airflow_run(self, dag_id: str, run_id: str) -> str:
        return f"{self.airflow_dag(dag_id)}/runs/{quote(run_id, safe='')}"

    def run_key(self, run_key: str | None) -> str | None:
        """The Airflow run page of a log record's ``run_key`` (``<dag_id>/<run_id>`` for a DAG
        run; a CLI run's key has no ``/`` and no page)."""
        if not run_key or "/" not in run_key:
            return None
        dag_id, run_id = run_key.split("/", 1)
        return self.airflow_run(dag_id, run_id) if dag_id and run_id else None

    def mlflow_run(self, run_id: str | None) -> str | None:
        if not self.mlflow or not run_id:
            return None
        return f"{self.mlflow}/#/runs/{quote(run_id, safe='')}"

    def mlflow_version(self, model: str, version: int) -> str | None:
        if not self.mlflow:
            return None
        return f"{self.mlflow}/#/models/{quote(model, safe='')}/versions/{version}"


@dataclass(frozen=True)
class DagRunView:
    """An Airflow DAG run as the page shows it."""

    dag_id: str
    run_id: str
    state: str
    run_after: str | None = None
    triggered_by: str | None = None
    user: str | None = None
    conf: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in _FINISHED


@dataclass(frozen=True)
class ModelActions:
    """The model's DAGs (kind -> dag id), which of them the user may trigger, and why a
    triggered run would not start now (dag id -> problem)."""

    dags: Mapping[str, str]
    allowed: frozenset[str] = frozenset()
    dag_problems: Mapping[str, str] = field(default_factory=dict)
    require_approval: bool = False


@dataclass(frozen=True)
class LogFilter:
    """The retraining log's filter (query parameters ``status``, ``trigger``, ``mode``) and how
    many of the newest records were read (``limit``)."""

    status: str | None = None
    trigger: str | None = None
    mode: str | None = None
    limit: int = 50

    def keeps(self, record: RetrainingRecord) -> bool:
        if self.status and record.status != self.status:
            return False
        if self.trigger and not (
            record.trigger == self.trigger or record.trigger.startswith(f"{self.trigger}:")
        ):
            return False
        return not (self.mode and (record.mode or "") != self.mode)

    @property
    def active(self) -> bool:
        return bool(self.status or self.trigger or self.mode)


@dataclass(frozen=True)
class PageContext:
    """What every page needs besides its data: links, the signed-in user, the time."""

    links: Links
    user: str
    now: datetime


# --- small pieces --------------------------------------------------------------------------------


def _parse(at: str | None) -> datetime | None:
    if not at:
        return None
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ago(then: datetime, now: datetime) -> str:
    seconds = (now - then).total_seconds()
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def when(at: str | None, now: datetime | None = None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM UTC`` (the exact value in a tooltip), with its age
    when ``now`` is given; unparsable text is shown as it is."""
    parsed = _parse(at)
    if parsed is None:
        return esc(at or "")
    shown = parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    age = f' <span class="muted">({_ago(parsed, now)})</span>' if now is not None else ""
    return f'<span class="nowrap" title="{esc(at)}">{shown}</span>{age}'


def badge(text: Any, kind: str | None = None) -> str:
    if text is None or text == "":
        return ""
    word = str(text)
    if kind is None:
        low = word.lower()
        kind = (
            "ok" if low in _GOOD else "bad" if low in _BAD else "warn" if low in _WARN else "muted"
        )
    return f'<span class="badge {kind}">{esc(word)}</span>'


def link(href: str | None, text: Any, *, top: bool = False, new_tab: bool = False) -> str:
    """``<a>`` to ``href`` (escaped) or just the text; ``top`` leaves Airflow's iframe (a page
    of the Airflow UI), ``new_tab`` opens another site (MLflow) without a referrer."""
    if not href:
        return esc(text)
    target = ""
    if top:
        target = ' target="_top" data-airflow'

    elif new_tab:
        target = ' target="_blank" rel="noopener noreferrer"'
    return f'<a href="{esc(href)}"{target}>{esc(text)}</a>'


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}g}"
    return esc(value)


def _version(value: int | None) -> str:
    return "none" if value is None else f"v{value}"


def _table(headers: Sequence[str], rows: Iterable[str], *, cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _table_more(headers: Sequence[str], rows: Sequence[str], *, first: int, more: str) -> str:
    """The first ``first`` rows in a table, the rest in a collapsed one (``more``: what)."""
    if len(rows) <= first:
        return _table(headers, rows)
    rest = _table(headers, rows[first:])
    return (
        f"{_table(headers, rows[:first])}<details><summary>{len(rows) - first} {esc(more)}"
        f"</summary>{rest}</details>"
    )


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return badge("yes" if value else "no", "ok" if value else "bad")
    if isinstance(value, float | int):
        return number(value)
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        return esc(", ".join(str(v) for v in value))
    if isinstance(value, dict | list):
        return f"<code>{esc(json.dumps(value, default=str, sort_keys=True))}</code>"
    return esc(value)


def kv_table(data: Mapping[str, Any], *, skip: Iterable[str] = ()) -> str:
    """A two-column table of ``data`` (keys and values escaped; nested values as JSON)."""
    skipped = set(skip)
    rows = [
        f"<tr><th>{esc(key)}</th><td>{_value(value)}</td></tr>"
        for key, value in data.items()
        if key not in skipped and value not in (None, "", [], {})
    ]
    return f"<table>{''.join(rows)}</table>" if rows else ""


def _reasons(items: Iterable[Any]) -> str:
    shown = [f"<li>{esc(item)}</li>" for item in items if item not in (None, "")]
    return f'<ul class="reasons">{"".join(shown)}</ul>' if shown else ""


def _metrics(metrics: Mapping[str, Any]) -> str:
    return ", ".join(
        f'<span class="nowrap">{esc(k)} {number(v)}</span>' for k, v in sorted(metrics.items())
    )


def _document(
    title: str, body: str, ctx: PageContext, *, crumbs: str = "", refresh: bool = False
) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    home = link(ctx.links.home(), "Retraining")
    trail = f"{home} &rsaquo; {crumbs}" if crumbs else home
    read = ctx.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    who = f"signed in as {esc(ctx.user)} · " if ctx.user else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><span class="crumbs">{trail}</span>'
        f'<span class="who">{who}read {read}</span></header>'
        f"<main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )


# --- the model list ------------------------------------------------------------------------------


def model_list_page(
    rows: Sequence[ModelRow],
    ctx: PageContext,
    *,
    config_errors: Mapping[str, str] | None = None,
    config_path: str = "",
    pipelines: Mapping[str, str] | None = None,
) -> str:
    """Every model of the config: production, canary, the newest run (``pipelines``: each
    model's pipeline DAG id, linked)."""
    lines = []
    for row in rows:
        last = row.last_run
        run = ""
        if last is not None:
            run_link = ctx.links.run_key(last.run_key)
            run = (
                f"{badge(last.status)} {link(run_link, last.retraining_id, top=True)}<br>"
                f"{when(last.start_time, ctx.now)} · {esc(last.trigger)}"
            )
        problem = f'<span class="badge bad">error</span> {esc(row.error)}' if row.error else ""
        dag_id = (pipelines or {}).get(row.model)
        dag = link(ctx.links.airflow_dag(dag_id), dag_id, top=True) if dag_id else ""
        lines.append(
            "<tr>"
            f"<td>{link(ctx.links.model(row.model), row.model)}</td>"
            f"<td>{badge(_version(row.production), 'ok' if row.production else 'muted')}</td>"
            f"<td>{badge(_version(row.canary), 'warn' if row.canary else 'muted')}</td>"
            f"<td>{run or '<span class=muted>no run logged</span>'}</td>"
            f"<td>{dag}</td><td>{problem}</td></tr>"
        )
    body = ["<h1>Retraining</h1>"]
    body.append(
        f'<p class="muted">{len(rows)} model{"s" if len(rows) != 1 else ""} in '
        f"<code>{esc(config_path)}</code>. Open a model for its versions, production "
        "timeline, retraining log, drift, canary and rollback.</p>"
    )
    if rows:
        body.append(
            _table(
                ["Model", "Production", "Canary", "Last run", "Pipeline DAG", "Problems"],
                lines,
                cls="models",
            )
        )
    else:
        body.append('<p class="warning">No model config loaded.</p>')
    if config_errors:
        body.append("<h2>Broken model configs</h2>")
        body.append(
            '<p class="muted">These files did not load; their models have no DAGs and are not '
            "listed above.</p>"
        )
        body.extend(
            f'<div class="error"><b>{esc(path)}</b>\n{esc(message)}</div>'
            for path, message in config_errors.items()
        )
    return _document("Retraining", "".join(body), ctx)


# --- the model page ------------------------------------------------------------------------------


def model_page(
    ov: ModelOverview,
    ctx: PageContext,
    *,
    actions: ModelActions,
    log_filter: LogFilter | None = None,
    triggered: DagRunView | None = None,
    triggered_again: bool = False,
    recent: Sequence[DagRunView] = (),
    problems: Sequence[str] = (),
) -> str:
    """One model: what serves, actions, versions, production timeline, log, drift, canary,
    cadence."""
    log_filter = log_filter or LogFilter()
    sections = [
        ("serving", "Serving"),
        ("actions", "Actions"),
        ("versions", "Versions"),
        ("timeline", "Production timeline"),
        ("log", "Retraining log"),
        ("drift", "Drift"),
        ("canary", "Canary"),
        ("cadence", "Cadence"),
    ]
    nav = "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in sections)
    all_problems = [*ov.problems, *problems]
    body = [
        f"<h1>{esc(ov.model)}</h1>",
        f'<nav class="sections">{nav}</nav>',
        _problems(all_problems),
        _serving(ov, ctx),
        _actions(
            ov, ctx, actions, triggered=triggered, triggered_again=triggered_again, recent=recent
        ),
        _versions(ov, ctx),
        _timeline(ov, ctx),
        _log(ov, ctx, log_filter),
        _drift(ov.drift, ov.model, ctx),
        _canary(ov, ctx),
        _cadence(ov),
    ]
    refresh = triggered is not None and not triggered.finished
    return _document(
        f"{ov.model} · Retraining", "".join(body), ctx, crumbs=esc(ov.model), refresh=refresh
    )


def _problems(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{esc(p)}</li>" for p in problems)
    return f'<div class="warning">Some parts could not be read:<ul>{items}</ul></div>'


def _serving(ov: ModelOverview, ctx: PageContext) -> str:
    links = ctx.links
    since = next(
        (c for c in ov.timeline if c.to_version == ov.production and ov.production is not None),
        None,
    )
    prod = "none"
    if ov.production is not None:
        prod = link(
            links.mlflow_version(ov.model, ov.production), f"v{ov.production}", new_tab=True
        )
    since_text = ""
    if since is not None:
        since_text = (
            f'<div class="muted">since {when(since.at, ctx.now)} ({esc(since.op)} by '
            f"{esc(since.actor)})<br>{esc(since.reason)}</div>"
        )
    canary = "none"
    if ov.canary is not None:
        canary = link(links.mlflow_version(ov.model, ov.canary), f"v{ov.canary}", new_tab=True)
    rollback = (
        f'<div class="big">v{ov.rollback_to}</div><div class="muted">served before '
        f"{_version(ov.production)}</div>"
        if ov.rollback_to is not None
        else f'<div class="big">—</div><div class="muted">{esc(ov.rollback_note)}</div>'
    )
    return (
        '<h2 id="serving">What serves now</h2><div class="cards">'
        f'<div class="card"><div class="muted">Production</div><div class="big">{prod}</div>'
        f"{since_text}</div>"
        f'<div class="card"><div class="muted">Canary</div><div class="big">{canary}</div></div>'
        f'<div class="card"><div class="muted">A rollback restores</div>{rollback}</div></div>'
    )


def _run_row(run: DagRunView, links: Links, *, highlight: bool = False) -> str:
    reason = run.conf.get("reason") if isinstance(run.conf, Mapping) else None
    style = ' style="background:#ddf4ff"' if highlight else ""
    return (
        f"<tr{style}><td>{when(run.run_after)}</td><td>{esc(run.dag_id)}</td>"
        f"<td>{link(links.airflow_run(run.dag_id, run.run_id), run.run_id, top=True)}</td>"
        f"<td>{badge(run.state)}</td><td>{esc(run.user)}</td>"
        f"<td>{esc(run.triggered_by)}</td><td>{esc(reason)}</td></tr>"
    )


def _actions(
    ov: ModelOverview,
    ctx: PageContext,
    actions: ModelActions,
    *,
    triggered: DagRunView | None,
    triggered_again: bool,
    recent: Sequence[DagRunView],
) -> str:
    links = ctx.links
    out = ['<h2 id="actions">Actions</h2>']
    if triggered is not None:
        out.append(_triggered_note(triggered, triggered_again, links, actions))
    buttons = []
    rollback_dag = actions.dags["rollback"]
    if ov.production is None or ov.rollback_to is None:
        why = ov.rollback_note or "nothing to roll back to"
        buttons.append(f'<span class="muted">Rollback: {esc(why)}</span>')
    elif "rollback" in actions.allowed:
        buttons.append(
            f'<a class="button danger" href="{esc(links.action(ov.model, "rollback"))}">'
            f"Roll back: production v{ov.production} → v{ov.rollback_to}…</a>"
        )
    else:
        buttons.append(
            f'<span class="muted">Rollback v{ov.production} → v{ov.rollback_to}: you may not '
            f"trigger {esc(rollback_dag)}</span>"
        )
    if ov.canary is not None:
        if "promote" in actions.allowed:
            buttons.append(
                f'<a class="button" href="{esc(links.action(ov.model, "promote"))}">'
                f"Promote canary v{ov.canary} to production…</a>"
            )
        else:
            buttons.append(
                f'<span class="muted">Promote canary v{ov.canary}: you may not trigger '
                f"{esc(actions.dags['promote'])}</span>"
            )
    pipeline = actions.dags["pipeline"]
    buttons.append(
        f'<a class="button plain" href="{esc(links.airflow_dag(pipeline))}" target="_top" '
        "data-airflow>"
        "Run now (the pipeline's Trigger form)</a>"
    )
    rebuild = actions.dags.get("full_rebuild")
    if rebuild:
        buttons.append(link(links.airflow_dag(rebuild), "Full rebuild DAG", top=True))
    out.append(f'<div class="actions">{"".join(buttons)}</div>')
    out.append(
        '<p class="muted">Each action triggers the model\'s DAG as you (it moves the alias, '
        "writes the audit entry and notifies); this page shows the run, then the new state once "
        "it finishes.</p>"
    )
    shown = (triggered.dag_id, triggered.run_id) if triggered else None
    busy = [r for r in recent if not r.finished and (r.dag_id, r.run_id) != shown]
    if busy:
        runs = ", ".join(f"{r.dag_id} {r.run_id} ({r.state})" for r in busy)
        out.append(
            f'<div class="warning">Not finished yet: {esc(runs)}. A rollback started now runs '
            "after it (and refuses if production is no longer the version it showed).</div>"
        )
    for dag_id, problem in actions.dag_problems.items():
        out.append(f'<div class="warning">DAG <code>{esc(dag_id)}</code> is {esc(problem)}.</div>')
    if recent:
        out.append("<h3>Recent runs of the rollback and promotion DAGs</h3>")
        rows = [
            _run_row(
                run,
                links,
                highlight=triggered is not None
                and (run.dag_id, run.run_id) == (triggered.dag_id, triggered.run_id),
            )
            for run in recent
        ]
        out.append(_table(["When", "DAG", "Run", "State", "By", "Triggered by", "Reason"], rows))
    return "".join(out)


def _triggered_note(run: DagRunView, again: bool, links: Links, actions: ModelActions) -> str:
    what = "Rollback" if run.dag_id == actions.dags.get("rollback") else "Promotion"
    run_link = link(links.airflow_run(run.dag_id, run.run_id), run.run_id, top=True)
    head = (
        f"This request had already triggered {esc(what.lower())} run {run_link}; it was not "
        "triggered again."
        if again
        else f"{esc(what)} triggered: run {run_link} of <code>{esc(run.dag_id)}</code>"
        f"{' by ' + esc(run.user) if run.user else ''}."
    )
    if run.finished:
        tail = (
            "It succeeded: the state below is the new one."
            if run.state == "success"
            else "It failed: nothing moved, see its task log in Airflow."
        )
    else:
        tail = (
            f"State: {badge(run.state)}. This page reloads every {REFRESH_SECONDS} s until the run "
            "finishes; the new state shows once it succeeds."
        )
        if what == "Promotion" and actions.require_approval:
            tail += " The promotion waits for a human's approval in Airflow (Required actions)."
    return f'<div class="note">{head} {tail}</div>'


def _versions(ov: ModelOverview, ctx: PageContext) -> str:
    if not ov.versions:
        return '<h2 id="versions">Versions</h2><p class="muted">No version registered yet.</p>'
    rows = [_version_row(v, ov.model, ctx) for v in ov.versions]
    headers = [
        "Version", "Aliases", "Status", "Created", "Data version", "Metrics", "Gate",
        "Retraining id", "Code (git)", "Why trained",
    ]  # fmt: skip
    return (
        f'<h2 id="versions">Versions</h2><p class="muted">{len(ov.versions)} versions, newest '
        f"first.</p>{_table_more(headers, rows, first=SHOWN_ROWS, more='older versions')}"
    )


def _version_row(v: VersionRow, model: str, ctx: PageContext) -> str:
    aliases = " ".join(badge(a) for a in v.aliases)
    mlflow = ctx.links.mlflow_version(model, v.version)
    commit = esc(v.git_commit[:12]) if v.git_commit else ""
    return (
        f"<tr><td>{link(mlflow, f'v{v.version}', new_tab=True)}</td><td>{aliases}</td>"
        f"<td>{badge(v.status)}</td><td>{when(v.created_at)}</td><td>{esc(v.data_version)}</td>"
        f"<td>{_metrics(v.metrics)}</td><td>{badge(v.gate)}</td>"
        f'<td><a href="#run-{esc(v.retraining_id)}">{esc(v.retraining_id)}</a></td>'
        f'<td><code title="{esc(v.git_commit)}">{commit}</code></td>'
        f"<td>{_reasons(v.trigger_reasons)}</td></tr>"
    )


def _timeline(ov: ModelOverview, ctx: PageContext) -> str:
    out = ['<h2 id="timeline">Production timeline</h2>']
    if not ov.timeline:
        out.append('<p class="muted">Production has never moved (no audit history).</p>')
        return "".join(out)
    out.append(timeline_svg(ov.timeline, ctx.now))
    rows = []
    for change in ov.timeline:
        run = change.run_id
        run_cell = link(ctx.links.run_key(run), run, top=True) if run else ""
        rows.append(
            f"<tr><td>{when(change.at, ctx.now)}</td><td>{badge(change.op)}</td>"
            f'<td class="nowrap">{_version(change.from_version)} → '
            f"{_version(change.to_version)}</td><td>{esc(change.actor)}</td>"
            f"<td>{esc(change.reason)}</td><td>{run_cell}</td></tr>"
        )
    headers = ["When", "Operation", "Production", "Who", "Why", "Run"]
    out.append(_table_more(headers, rows, first=SHOWN_ROWS, more="older moves"))
    return "".join(out)


def timeline_svg(
    timeline: Sequence[ProductionChange], now: datetime, *, width: int = 900, height: int = 190
) -> str:
    """Production's version over time as a step line, one dot per move (tooltip: who, why).
    ``timeline`` newest first, as :class:`~retrain.overview.ModelOverview` has it."""
    points = [(t, c) for c in reversed(timeline) if (t := _parse(c.at)) is not None]
    if not points:
        return ""
    versions = sorted(
        {v for _, c in points for v in (c.from_version, c.to_version) if v is not None}
    )
    if not versions:
        return ""
    left, right, top, bottom = 48, 16, 12, 28
    start = points[0][0]
    end = max(now, points[-1][0])
    span = max((end - start).total_seconds(), 1.0)
    low, high = versions[0], versions[-1]

    def x(at: datetime) -> float:
        return left + (width - left - right) * (at - start).total_seconds() / span

    def y(version: int) -> float:
        if high == low:
            return (top + height - bottom) / 2
        return top + (height - top - bottom) * (high - version) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="production version over time">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        'stroke="#d0d7de"/>',
    ]
    step = max(1, math.ceil(len(versions) / 8))
    for version in versions[::step]:
        parts.append(
            f'<text x="{left - 6}" y="{y(version) + 4:.1f}" text-anchor="end">v{version}</text>'
            f'<line x1="{left}" y1="{y(version):.1f}" x2="{width - right}" y2="{y(version):.1f}" '
            'stroke="#f0f2f4"/>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 8}">{esc(start.strftime("%Y-%m-%d"))}</text>'
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end">'
        f"{esc(end.strftime('%Y-%m-%d'))}</text>"
    )
    segments = []
    for i, (at, change) in enumerate(points):
        if change.to_version is None:
            continue
        until = points[i + 1][0] if i + 1 < len(points) else end
        y0 = y(change.to_version)
        segments.append(f"M{x(at):.1f},{y0:.1f} H{x(until):.1f}")
        if i + 1 < len(points) and points[i + 1][1].to_version is not None:
            segments.append(f"V{y(points[i + 1][1].to_version or 0):.1f}")
    parts.append(f'<path d="{" ".join(segments)}" fill="none" stroke="#0969da" stroke-width="2"/>')
    for at, change in points:
        if change.to_version is None:
            continue
        color = "#cf222e" if change.op == "rollback" else "#1f883d"
        tip = (
            f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC · {change.op} "
            f"{_version(change.from_version)} → {_version(change.to_version)} by {change.actor}: "
            f"{change.reason}"
        )
        parts.append(
            f'<circle cx="{x(at):.1f}" cy="{y(change.to_version):.1f}" r="4.5" fill="{color}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    parts.append("</svg>")
    legend = (
        '<div class="muted">● <span style="color:#1f883d">promotion</span> · ● '
        '<span style="color:#cf222e">rollback</span> (hover a dot: who and why)</div>'
    )
    return "".join(parts) + legend


def _log_options(records: Sequence[RetrainingRecord]) -> dict[str, list[str]]:
    triggers = {r.trigger for r in records} | {r.trigger.split(":", 1)[0] for r in records}
    return {
        "status": sorted({r.status for r in records}),
        "trigger": sorted(triggers),
        "mode": sorted({r.mode for r in records if r.mode}),
    }


def _select(name: str, options: Sequence[str], chosen: str | None) -> str:
    items = ['<option value="">any</option>']
    values = list(options) + ([chosen] if chosen and chosen not in options else [])
    for value in values:
        selected = " selected" if value == chosen else ""
        items.append(f'<option value="{esc(value)}"{selected}>{esc(value)}</option>')
    return f'<label>{esc(name)}<select name="{esc(name)}">{"".join(items)}</select></label>'


def _log(ov: ModelOverview, ctx: PageContext, log_filter: LogFilter) -> str:
    out = ['<h2 id="log">Retraining log</h2>']
    records = ov.records
    options = _log_options(records)
    limits = sorted({50, 200, 1000, log_filter.limit})
    limit_options = "".join(
        f'<option value="{n}"{" selected" if n == log_filter.limit else ""}>{n}</option>'
        for n in limits
    )
    out.append(
        f'<form class="filter" method="get" action="{esc(ctx.links.model(ov.model))}#log">'
        f"{_select('status', options['status'], log_filter.status)}"
        f"{_select('trigger', options['trigger'], log_filter.trigger)}"
        f"{_select('mode', options['mode'], log_filter.mode)}"
        f'<label>newest<select name="limit">{limit_options}</select></label>'
        '<button class="button plain" type="submit">Filter</button>'
        f"{link(ctx.links.model(ov.model) + '#log', 'clear') if log_filter.active else ''}"
        "</form>"
    )
    shown = [r for r in records if log_filter.keeps(r)]
    out.append(
        f'<p class="muted">{len(shown)} of the {len(records)} newest records'
        f"{' match the filter' if log_filter.active else ''} (read up to {log_filter.limit}).</p>"
    )
    if not shown:
        return "".join(out)
    rows = [_record_row(r, ov.model, ctx) for r in shown]
    headers = [
        "Started", "Retraining id", "Trigger", "Mode", "Status", "Minutes", "Version",
        "Gate", "A/B", "Runs", "Details",
    ]  # fmt: skip
    out.append(_table(headers, rows, cls="log"))
    return "".join(out)


def _ab_summary(ab: Mapping[str, Any]) -> str:
    if not ab:
        return ""
    winner = ab.get("winner")
    diff = ab.get("difference")
    p = ab.get("p_value")
    text = [badge(winner)] if winner else []
    if isinstance(diff, int | float):
        text.append(f"Δ {number(diff, 3)}")
    if isinstance(p, int | float):
        text.append(f"p {number(p, 3)}")
    return " ".join(text)


def _full(r: RetrainingRecord) -> bool:
    """Whether ``r`` has details to unfold: the log lists compact records (links and the gate's
    status only), the newest few are read in full (the gate's checks, A/B, checklist, drift)."""
    gate_details = bool(set(r.gate) - {"status"})
    return gate_details or bool(r.ab_test or r.checklist or r.drift or r.search)


def _run_links(r: RetrainingRecord, links: Links) -> list[str]:
    out = []
    airflow = links.run_key(r.run_key)
    mlflow = links.mlflow_run(r.mlflow_run_id)
    if airflow:
        out.append(link(airflow, "Airflow run", top=True))
    if mlflow:
        out.append(link(mlflow, "MLflow run", new_tab=True))
    elif r.mlflow_run_id:
        out.append(f'<code title="MLflow run id">{esc(r.mlflow_run_id[:12])}</code>')
    return out


def _record_row(r: RetrainingRecord, model: str, ctx: PageContext) -> str:
    links = ctx.links
    page = link(links.record(model, r.retraining_id), "record")
    if _full(r):
        details = (
            f'<details><summary>details</summary><div class="inner">{_record_details(r)}'
            f"</div></details>{page}"
        )
    else:
        details = page
    gate = r.gate.get("status") if r.gate else None
    minutes = number(r.training_duration_minutes, 3)
    return (
        f'<tr id="run-{esc(r.retraining_id)}"><td>{when(r.start_time)}</td>'
        f"<td>{esc(r.retraining_id)}</td><td>{esc(r.trigger)}</td><td>{esc(r.mode)}</td>"
        f"<td>{badge(r.status)}</td><td class=num>{minutes}</td>"
        f"<td>{esc(r.model_version)}</td><td>{badge(gate)}</td><td>{_ab_summary(r.ab_test)}</td>"
        f"<td>{' · '.join(_run_links(r, links))}</td><td>{details}</td></tr>"
    )


def _rebuild(r: RetrainingRecord) -> str:
    """A full rebuild's search and comprehensive tests ("" for a weekly run)."""
    parts = [_search(r.search)] if r.search else []
    if r.rebuild_tests.get("items"):
        rows = [
            f"<tr><td>{_passed(i.get('passed'), 'passed', 'FAILED')}</td>"
            f"<td>{esc(i.get('name'))}</td><td>{esc(i.get('detail'))}</td></tr>"
            for i in r.rebuild_tests["items"]
        ]
        not_run = r.rebuild_tests.get("not_run") or []
        parts.append(
            "<h3>Full rebuild: comprehensive tests</h3>"
            + _table(["Result", "Test", "Figures"], rows)
            + (_reasons(not_run) if not_run else "")
        )
    return "".join(parts)


def _search(search: Mapping[str, Any]) -> str:
    """A full rebuild's hyperparameter search: what it tried and which parameters were fitted."""
    best, configured = search.get("best_params") or {}, search.get("configured_params") or {}
    names = sorted(set(best) | set(configured))
    rows = [
        f"<tr><td>{esc(n)}</td><td>{esc(configured.get(n))}</td><td>{esc(best.get(n))}</td></tr>"
        for n in names
    ]
    head = (
        f"{esc(search.get('method'))}: {esc(search.get('candidates'))} candidates, "
        f"{esc(search.get('fits'))} fits, {number(search.get('seconds'), 1)} s; CV "
        f"{esc(search.get('scoring'))} {number(search.get('best_score'))} (best) vs "
        f"{number(search.get('configured_score'))} (configured); fitted: "
        f"{esc(search.get('chosen'))}"
    )
    return f"<h3>Hyperparameter search</h3><p>{head}</p>" + _table(
        ["Parameter", "Configured", "Search's best"], rows
    )


def record_page(r: RetrainingRecord, model: str, ctx: PageContext) -> str:
    """One retraining run's full record: why it ran, gate, A/B, checklist, drift, links."""
    links = ctx.links
    back = link(links.model(model) + "#log", "the retraining log")
    body = (
        f"<h1>{esc(r.retraining_id)} {badge(r.status)}</h1>"
        f"<p>{esc(r.trigger)} · {esc(r.mode)} · started {when(r.start_time, ctx.now)} · "
        f"{' · '.join(_run_links(r, links)) or 'no Airflow or MLflow run recorded'}</p>"
        f"{_record_details(r)}<p>Back to {back}.</p>"
    )
    crumbs = f"{link(links.model(model), model)} &rsaquo; {esc(r.retraining_id)}"
    return _document(f"{r.retraining_id} · {model}", body, ctx, crumbs=crumbs)


def _record_details(r: RetrainingRecord) -> str:
    parts = []
    if r.trigger_reasons:
        parts.append(f"<h3>Why it ran</h3>{_reasons(r.trigger_reasons)}")
    facts = {
        "actor": r.actor,
        "as of": r.as_of,
        "ended": r.end_time,
        "data version": r.data_version,
        "new samples": r.new_samples,
        "baseline version": r.baseline_version,
        "forced": r.forced or None,
        "force reason": r.force_reason,
        "run key": r.run_key,
        "MLflow run": r.mlflow_run_id,
    }
    parts.append(kv_table(facts))
    if r.error or r.failed_step:
        parts.append(f'<div class="error">{esc(r.failed_step or "")}: {esc(r.error or "")}</div>')
    if r.notes:
        parts.append(f"<p>{esc(r.notes)}</p>")
    if r.metrics or r.baseline_metrics:
        names = sorted(set(r.metrics) | set(r.baseline_metrics))
        rows = [
            f"<tr><td>{esc(n)}</td><td class=num>{number(r.metrics.get(n))}</td>"
            f"<td class=num>{number(r.baseline_metrics.get(n))}</td></tr>"
            for n in names
        ]
        parts.append("<h3>Metrics</h3>" + _table(["Metric", "Candidate", "Production"], rows))
    if r.gate:
        parts.append(_gate(r.gate))
    if r.ab_test:
        parts.append("<h3>A/B test</h3>" + kv_table(r.ab_test, skip=("details",)))
        if isinstance(r.ab_test.get("reasons"), list):
            parts.append(_reasons(r.ab_test["reasons"]))
    parts.append(_rebuild(r))
    if r.checklist:
        rows = [
            f"<tr><td>{_passed(i.get('passed'), 'met', 'not met')}</td>"
            f"<td>{esc(i.get('title') or i.get('key'))}</td><td>{esc(i.get('evidence'))}</td>"
            f"<td>{esc(i.get('required_for'))}</td></tr>"
            for i in r.checklist
            if isinstance(i, Mapping)
        ]
        parts.append("<h3>Checklist</h3>" + _table(["", "Item", "Evidence", "For"], rows))
    if r.drift:
        parts.append(
            "<h3>Drift</h3>" + kv_table({k: v for k, v in r.drift.items() if k != "severity"})
        )
    if r.online:
        parts.append("<h3>Canary verdict</h3>" + kv_table(r.online))
    if r.deployment:
        parts.append("<h3>Deployment</h3>" + kv_table(r.deployment))
    return "".join(parts)


def _passed(passed: Any, yes: str, no: str) -> str:
    return badge(yes, "ok") if passed else badge(no, "bad")


def _gate(gate: Mapping[str, Any]) -> str:
    out = [f"<h3>Gate {badge(gate.get('status'))}</h3>"]
    if isinstance(gate.get("reasons"), list):
        out.append(_reasons(gate["reasons"]))
    checks = gate.get("checks")
    if isinstance(checks, list) and checks:
        rows = [
            f"<tr><td>{_passed(c.get('passed'), 'pass', 'fail')}</td>"
            f"<td>{esc(c.get('check'))}</td><td class=num>{number(c.get('value'))}</td></tr>"
            for c in checks
            if isinstance(c, Mapping)
        ]
        out.append(_table(["", "Check", "Value"], rows))
    if gate.get("suspicions"):
        out.append("<b>Suspicions</b>" + _reasons(gate["suspicions"]))
    return "".join(out)


def _drift(drift: DriftView | None, model: str, ctx: PageContext) -> str:
    out = ['<h2 id="drift">Drift</h2>']
    if drift is None:
        out.append('<p class="muted">No drift measurement in the retraining log yet.</p>')
        return "".join(out)
    share = drift.drift_share
    summary = (
        f"Measured by {esc(drift.retraining_id)} at {when(drift.at, ctx.now)}: "
        f"{esc(drift.drift_count if drift.drift_count is not None else '?')} drifted feature(s)"
        f"{f' ({share:.0%} of those checked)' if isinstance(share, int | float) else ''}."
    )
    out.append(f"<p>{summary}</p>")
    if drift.mlflow_run_id:
        report = link(ctx.links.drift_report(model, drift.mlflow_run_id), "HTML drift report")
        mlflow = link(ctx.links.mlflow_run(drift.mlflow_run_id), "its MLflow run", new_tab=True)
        out.append(f"<p>{report} (<code>drift_report.html</code>, shown sandboxed) · {mlflow}</p>")
    items = sorted(drift.severity.items(), key=lambda kv: (_SEVERITY_ORDER.get(kv[1], 9), kv[0]))
    rows = [f"<tr><td>{esc(name)}</td><td>{badge(level)}</td></tr>" for name, level in items]
    if rows:
        out.append(_table(["Feature", "Severity"], rows))
    return "".join(out)


def interval_svg(lower: float, upper: float, d_hat: float, *, width: int = 420) -> str:
    """The canary's confidence interval for ``accuracy(canary) - accuracy(production)`` around 0."""
    values = [abs(v) for v in (lower, upper, d_hat) if math.isfinite(v)]
    reach = max([*values, 0.01]) * 1.2
    height, pad = 56, 20

    def x(value: float) -> float:
        clipped = min(max(value, -reach), reach)
        return pad + (width - 2 * pad) * (clipped + reach) / (2 * reach)

    zero = x(0.0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="confidence interval of the accuracy difference">'
        f'<line x1="{zero:.1f}" y1="6" x2="{zero:.1f}" y2="{height - 18}" stroke="#8c959f" '
        'stroke-dasharray="3,3"/>'
        f'<line x1="{x(lower):.1f}" y1="22" x2="{x(upper):.1f}" y2="22" stroke="#0969da" '
        'stroke-width="6" stroke-linecap="round"/>'
        f'<circle cx="{x(d_hat):.1f}" cy="22" r="5" fill="#1f2328"/>'
        f'<text x="{x(lower):.1f}" y="{height - 6}" text-anchor="middle">{lower:+.3f}</text>'
        f'<text x="{x(upper):.1f}" y="{height - 6}" text-anchor="middle">{upper:+.3f}</text>'
        f'<text x="{zero:.1f}" y="{height - 20}" text-anchor="middle">0</text></svg>'
    )


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def looks_svg(looks: Sequence[Any], *, width: int = 640, height: int = 200) -> str:
    """The judge's looks over time: the interval of ``accuracy(canary) - accuracy(production)``
    as a band, its estimate as a line, zero and ``-margin`` as dashed lines."""
    pad_x, pad_y = 48, 16
    lows = [float(look.lower) for look in looks]
    highs = [float(look.upper) for look in looks]
    margin = float(looks[-1].margin) if looks else 0.0
    finite = [v for v in [*lows, *highs, -margin, 0.0] if math.isfinite(v)]
    top, bottom = max(finite) + 0.01, min(finite) - 0.01
    top, bottom = min(top, 1.0), max(bottom, -1.0)

    def x(i: int) -> float:
        return pad_x + (width - 2 * pad_x) * (i / max(len(looks) - 1, 1))

    def y(value: float) -> float:
        clipped = min(max(value, bottom), top)
        return pad_y + (height - 2 * pad_y) * (top - clipped) / (top - bottom)

    band = " ".join(
        [f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(highs)]
        + [f"{x(i):.1f},{y(v):.1f}" for i, v in reversed(list(enumerate(lows)))]
    )
    line = " ".join(f"{x(i):.1f},{y(float(look.d_hat)):.1f}" for i, look in enumerate(looks))
    labels = looks[-1].canary_labels if looks else 0
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="the judge\'s interval over {len(looks)} looks">'
        f'<polygon points="{band}" fill="#0969da" fill-opacity="0.18" stroke="none"/>'
        f'<polyline points="{line}" fill="none" stroke="#1f2328" stroke-width="1.5"/>'
        f'<line x1="{pad_x}" y1="{y(0):.1f}" x2="{width - pad_x}" y2="{y(0):.1f}" '
        'stroke="#8c959f" stroke-dasharray="3,3"/>'
        f'<line x1="{pad_x}" y1="{y(-margin):.1f}" x2="{width - pad_x}" y2="{y(-margin):.1f}" '
        'stroke="#cf222e" stroke-dasharray="5,3"/>'
        f'<text x="4" y="{y(0) + 4:.1f}">0</text>'
        f'<text x="4" y="{y(-margin) + 4:.1f}" fill="#cf222e">-{margin:g}</text>'
        f'<text x="{pad_x}" y="{height - 2}">look 1</text>'
        f'<text x="{width - pad_x}" y="{height - 2}" text-anchor="end">look {len(looks)} '
        f"({labels} canary labels)</text></svg>"
    )


def _canary(ov: ModelOverview, ctx: PageContext) -> str:
    out = ['<h2 id="canary">Canary</h2>']
    verdict = dict(ov.canary_verdict)
    if ov.canary is not None:
        out.append(f"<p>Canary {badge(f'v{ov.canary}', 'warn')} serves a share of the traffic.</p>")
    if ov.canary_looks:
        out.append(
            f"<p>The online judge's {len(ov.canary_looks)} looks at "
            f"v{ov.canary_looks_version}: the interval of the accuracy difference (canary - "
            "production) narrows as labels arrive; it promotes once the band lies above the red "
            "line (-margin) and rolls back once it lies below 0.</p>"
        )
        out.append(looks_svg(ov.canary_looks))
    if not verdict:
        waiting = (
            " yet: the judge has not decided (its looks are in the canary's MLflow run)"
            if ov.canary is not None
            else ""
        )
        out.append(f'<p class="muted">No canary verdict in the retraining log{waiting}.</p>')
        return "".join(out)
    interval = verdict.get("interval")
    lower = upper = None
    if isinstance(interval, list | tuple) and len(interval) == 2:
        lower, upper = _float(interval[0]), _float(interval[1])
    d_hat = _float(verdict.get("d_hat"))
    rows = {
        "decision": verdict.get("decision"),
        "action": verdict.get("action"),
        "at": verdict.get("at"),
        "labels (canary)": verdict.get("canary_labels"),
        "labels (production)": verdict.get("production_labels"),
        "production version": verdict.get("production_version"),
        "accuracy difference (canary - production)": d_hat,
        "interval": None,
    }
    if lower is not None and upper is not None:
        rows["interval"] = f"[{lower:+.4f}, {upper:+.4f}]"
    out.append(
        f"<p>Newest verdict: {badge(verdict.get('decision'))} → {badge(verdict.get('action'))}</p>"
    )
    out.append(kv_table(rows))
    if lower is not None and upper is not None and d_hat is not None:
        out.append(interval_svg(lower, upper, d_hat))
    if isinstance(verdict.get("reasons"), list):
        out.append(_reasons(verdict["reasons"]))
    return "".join(out)


def _cadence(ov: ModelOverview) -> str:
    out = ['<h2 id="cadence">Cadence and next runs</h2>']
    if ov.cadence:
        cadence = dict(ov.cadence)
        reasons = cadence.pop("reasons", None)
        out.append(kv_table(cadence))
        if isinstance(reasons, list):
            out.append(_reasons(reasons))
    else:
        out.append('<p class="muted">No adaptive cadence decision logged yet.</p>')
    if ov.next_runs:
        labels = {"weekly": "Next weekly run", "full_rebuild": "Next full rebuild"}
        rows = [
            f"<tr><th>{esc(labels.get(kind, kind))}</th><td>{when(at)}</td></tr>"
            for kind, at in ov.next_runs.items()
        ]
        out.append(f"<table>{''.join(rows)}</table>")
    return "".join(out)


# --- confirmation and error pages ----------------------------------------------------------------


def confirm_page(
    ov: ModelOverview,
    ctx: PageContext,
    *,
    kind: str,
    dag_id: str,
    request_id: str,
    reason: str = "",
    error: str | None = None,
    dag_problem: str | None = None,
) -> str:
    """The form that asks for a reason and says what will serve: ``kind`` ``rollback`` (production
    -> what a rollback restores) or ``promote`` (the canary -> production)."""
    links = ctx.links
    body = []
    serving: int | None
    if kind == "rollback":
        title = "Roll back production"
        if ov.production is None or ov.rollback_to is None:
            body.append(
                f"<h1>{esc(title)}</h1><div class='warning'>Nothing to roll back to: "
                f"{esc(ov.rollback_note or 'no version is in production')}.</div>"
                f"<p>{link(links.model(ov.model), 'Back to ' + ov.model)}</p>"
            )
            return _document(title, "".join(body), ctx, crumbs=esc(ov.model))
        serving, next_version = ov.production, ov.rollback_to
        hidden = {"expected_version": str(serving), "to_version": str(next_version)}
        statement = (
            f"Production <b>v{serving}</b> → <b>v{next_version}</b>: after the run, "
            f"<b>v{next_version}</b> serves {esc(ov.model)} and v{serving} becomes rolled_back."
        )
        button = f"Roll back to v{next_version}"
        css = "button danger"
    else:
        title = "Promote the canary"
        if ov.canary is None:
            body.append(
                f"<h1>{esc(title)}</h1><div class='warning'>{esc(ov.model)} has no canary.</div>"
                f"<p>{link(links.model(ov.model), 'Back to ' + ov.model)}</p>"
            )
            return _document(title, "".join(body), ctx, crumbs=esc(ov.model))
        serving, next_version = ov.production, ov.canary
        hidden = {"version": str(next_version)}
        statement = (
            f"Production <b>{_version(serving)}</b> → <b>v{next_version}</b>: after the run, the "
            f"canary <b>v{next_version}</b> serves {esc(ov.model)}."
        )
        button = f"Promote v{next_version} to production"
        css = "button"
    hidden["request_id"] = request_id
    refuses = (
        f", and refuses if production is no longer {_version(serving)}"
        if serving is not None and kind == "rollback"
        else ""
    )
    fields = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in hidden.items()
    )
    body.append(f"<h1>{esc(title)} of {esc(ov.model)}</h1>")
    body.append(f'<p class="note">{statement}</p>')
    if error:
        body.append(f'<div class="error">{esc(error)}</div>')
    if dag_problem:
        body.append(
            f'<div class="warning">DAG <code>{esc(dag_id)}</code> is {esc(dag_problem)}.</div>'
        )
    body.append(
        f'<form class="confirm" method="post" action="{esc(links.action(ov.model, kind))}">'
        f"{fields}"
        "<label>Reason (required, 3-500 characters; goes into the audit history and the "
        f'notification)<textarea name="reason" required minlength="3" maxlength="500">'
        f"{esc(reason)}</textarea></label>"
        f'<p class="muted">This triggers <code>{esc(dag_id)}</code> as {esc(ctx.user)}; its task '
        f"checks the version loads and predicts before the alias moves{refuses}.</p>"
        f'<div class="actions"><button class="{css}" type="submit">{esc(button)}</button>'
        f"{link(links.model(ov.model), 'Cancel')}</div></form>"
    )
    return _document(f"{title} · {ov.model}", "".join(body), ctx, crumbs=esc(ov.model))


def error_page(status: int, title: str, message: str, ctx: PageContext) -> str:
    """A plain page saying what went wrong (``message`` already redacted), never a traceback."""
    body = (
        f"<h1>{esc(title)}</h1><div class='error'>{esc(message)}</div>"
        f'<p class="muted">HTTP {status}. {link(ctx.links.home(), "Back to the model list")}</p>'
    )
    return _document(title, body, ctx)
