"""``retrain run``: every step of the graph in one process, in the graph's order.

The same step functions as the DAG's tasks, the same gates, the same record. Each step hands
its result to the next in memory (and :mod:`retrain.handoff` lets a step reuse the frame or
model the previous one wrote instead of decoding the file again); the files are still written.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from retrain.config import RetrainConfig
from retrain.errors import RetrainError
from retrain.handoff import shared_outputs
from retrain.log import RetrainingRecord
from retrain.pipeline.context import RunContext, RunOptions, fallback_context
from retrain.pipeline.graph import CHECK, GRAPH, START, Gate, Results, Step
from retrain.pipeline.services import Progress, Services
from retrain.pipeline.steps.finish import finish
from retrain.pipeline.steps.start import start

__all__ = ["RunOutcome", "context_of", "execute", "run_pipeline"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its log record, where the record went, and the error that failed it."""

    record: RetrainingRecord
    stored_in: str
    error: BaseException | None = None


def context_of(start_ctx: RunContext, results: Results) -> RunContext:
    """The run context a step (or ``finish``) runs with: the one ``check`` pinned the baseline
    in once it ran, else ``start``'s."""
    checked = results.get(CHECK)
    return checked.context if checked is not None else start_ctx


def execute(step: Step[Any], services: Services, start_ctx: RunContext, results: Results) -> Any:
    """Run one step with the run context and its declared inputs taken from ``results``."""
    inputs = [results.named(name) for name in step.inputs]
    return step.run()(services, context_of(start_ctx, results), *inputs)


def run_pipeline(
    config: RetrainConfig,
    options: RunOptions | None = None,
    *,
    services: Services | None = None,
    progress: Progress | None = None,
    sql_url: str | None = None,
    **fields: Any,
) -> RunOutcome:
    """Run the whole graph in-process; returns the outcome with the retraining log record.

    ``options`` (or its ``fields`` as keywords: ``trigger``, ``as_of``, ``force``, ...) are
    validated before anything starts (``DataError``). A failing step, or a failing ``start``,
    does not raise: the outcome carries the error and the record says where, as in the DAG.
    """
    run_options = options if options is not None else RunOptions(**fields)
    services = services or Services.build(config, sql_url=sql_url)
    if progress is not None:
        services = dataclasses.replace(services, progress=progress)
    say = services.progress
    results = Results()
    error: BaseException | None = None
    failed: str | None = None
    with shared_outputs():
        try:
            ctx = start(services, run_options)
        except Exception as exc:  # still leave a record (spooled if MLflow is down)
            _report(START, exc, say)
            ctx = fallback_context(
                config.storage.work_dir,
                run_key=run_options.run_key or "retrain-run",
                trigger=run_options.trigger,
            )
            error, failed = exc, START
        else:
            say(
                START, f"{ctx.retraining_id} (trigger {ctx.trigger}, as of {ctx.as_of.isoformat()})"
            )
            try:
                _walk(services, ctx, results, say)
            except _StepFailedError as failure:
                error, failed = failure.error, failure.step
        message = f"{type(error).__name__}: {error}" if error is not None else None
        record, where = finish(
            services, context_of(ctx, results), results, error=message, failed_step=failed
        )
    return RunOutcome(record, where, error)


class _StepFailedError(Exception):
    def __init__(self, step: str, error: BaseException) -> None:
        self.step, self.error = step, error


def _report(name: str, exc: BaseException, say: Progress) -> None:
    """Say that a step failed; log the traceback of anything but our own, expected errors."""
    if not isinstance(exc, RetrainError):
        logger.error("step %s crashed", name, exc_info=exc)
    say(name, f"FAILED: {type(exc).__name__}: {exc}")


def _walk(services: Services, ctx: RunContext, results: Results, say: Progress) -> None:
    """Run the graph's nodes in order; a gate that says no skips the nodes after it."""
    taken = {START}
    chosen: dict[str, str] = {}
    for node in GRAPH:
        if node.after not in taken or chosen.get(node.after, node.name) != node.name:
            continue
        try:
            if isinstance(node, Gate):
                verdict = node.run()(*(results.named(n) for n in node.inputs))
                if node.choices:
                    chosen[node.name] = str(verdict)
                    taken.add(node.name)
                elif verdict:
                    taken.add(node.name)
                continue
            result = execute(node, services, ctx, results)
        except Exception as exc:
            _report(node.name, exc, say)
            raise _StepFailedError(node.name, exc) from exc
        results.put(node.name, result)
        taken.add(node.name)
        say(node.name, result.summary())
