"""Tables and lines people read: decisions, live signals, drift, records, alias moves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table

from retrain.cli.output import console, version_label
from retrain.registry.audit import AuditEntry
from retrain.triggers import Decision

if TYPE_CHECKING:  # both load pandas/numpy: for annotations only (CLI startup stays light)
    from retrain.drift import DriftReport
    from retrain.signals import LiveSignals

__all__ = [
    "age",
    "render_decision",
    "render_drift",
    "render_live",
    "render_models",
    "render_move",
    "render_records",
]


def age(seconds: float) -> str:
    """``3.2d``, ``5.0h``, ``12.0m`` or ``40s``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{max(seconds, 0):.0f}s"


def render_decision(decision: Decision, proceed: bool, reasons: Sequence[str]) -> None:
    out = console()
    verdict = "[bold red]RETRAIN[/]" if proceed else "[bold green]no retraining[/]"
    out.print(f"Decision: {verdict}  (trigger: {decision.trigger}, action: {decision.action})")
    table = Table("signal", "value")
    for name, value in decision.signals.items():
        table.add_row(name, "unknown" if value is None else f"{value:g}")
    out.print(table)
    for reason in reasons:
        out.print(f"  - {reason}")
    for note in decision.notes:
        out.print(f"  [yellow]![/] {note}")
    cadence = decision.cadence
    out.print(
        f"Cadence: {cadence.level} (every {cadence.interval_days:g} days): {cadence.reasons[0]}"
    )


def render_live(live: LiveSignals) -> None:
    out = console()
    version = live.production_version
    out.print(
        f"Live signals as of {live.as_of}: production "
        f"{'v' + str(version) if version else 'none'}, watermark {live.watermark or '-'}"
    )
    if live.drift:
        drifted = ", ".join(live.drift["drifted"]) or "none"
        out.print(f"  drifted features: {drifted}")
    for note in live.notes:
        out.print(f"  [yellow]![/] {note}")


def render_drift(report: DriftReport) -> None:
    colors = {"none": "green", "low": "yellow", "medium": "dark_orange", "high": "red"}
    table = Table(box=None, header_style="bold")
    table.add_column("feature", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    for header in ("PSI", "JS", "W", "missing %"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("status", overflow="fold", min_width=12)
    for f in report.features:
        stats = [f.statistics.get(key) for key in ("psi", "js", "wasserstein")]
        psi, js, wasserstein = ("" if v is None else f"{v:.3f}" for v in stats)
        missing = (
            f"{100 * f.missing_rate_ref:.1f}→{100 * f.missing_rate_cur:.1f}"
            if f.missing_rate_ref is not None and f.missing_rate_cur is not None
            else ""
        )
        severity = f"[{colors.get(f.severity, 'magenta')}]{f.severity}[/]"
        status = f.status if f.status == "ok" else f"{f.status}: {f.message}"
        table.add_row(f.name, severity, psi, js, wasserstein, missing, status)
    out = console()
    out.print(table)
    out.print(
        f"drift_count (high): {report.drift_count}  drift_share (medium+high): "
        f"{report.drift_share:.2f}  ({len(report.checked)} features checked, "
        f"{report.n_ref:,} reference rows, {report.n_cur:,} current rows)"
    )


def render_records(records: list[dict[str, Any]]) -> None:
    table = Table(
        "retraining_id", "trigger", "status", "version", "accuracy", "baseline", "new", "notes"
    )
    for r in records:
        acc = r.get("metrics", {}).get("accuracy")
        base = r.get("baseline_metrics", {}).get("accuracy")
        table.add_row(
            r["retraining_id"],
            r["trigger"],
            r["status"],
            r.get("model_version") or "-",
            f"{acc:.3f}" if acc is not None else "-",
            f"{base:.3f}" if base is not None else "-",
            str(r.get("new_samples") if r.get("new_samples") is not None else "-"),
            r.get("notes") or "",
        )
    console().print(table)


def render_models(
    path: str, models: Sequence[dict[str, Any]], broken: Sequence[dict[str, str]]
) -> None:
    """The models of a config directory, one row each, then each broken model file's error."""
    out = console()
    out.print(f"{len(models)} model{'s' if len(models) != 1 else ''} in {path}", markup=False)
    if models:
        table = Table(box=None)
        table.add_column("model", no_wrap=True)
        for header in ("production", "canary"):
            table.add_column(header, no_wrap=True)
        table.add_column("last run", no_wrap=True)
        for header in ("status", "started (UTC)"):
            table.add_column(header)
        for m in models:
            last = m["last_run"] or {}
            table.add_row(
                m["model"],
                version_label(m["production"]),
                version_label(m["canary"]),
                last.get("retraining_id") or "-",
                last.get("status") or "-",
                (last.get("start_time") or "-")[:16].replace("T", " "),
            )
        out.print(table)
    for b in broken:
        out.print("[red]broken[/] ", end="")
        out.print(f"{b['file']}: {b['error']}", markup=False, highlight=False)


def render_move(verb: str, entry: AuditEntry) -> None:
    console().print(
        f"{verb} {entry.alias}: {version_label(entry.from_version)} -> "
        f"{version_label(entry.to_version)} (audit {entry.id})"
    )
