"""``retrain run``: every step of the graph in one process, in the graph's order.

The same step functions as the DAG's tasks, the same gates, the same record. Each step hands
its result to the next in memory (and :mod:`retrain.handoff` lets a step reuse the frame or
model the previous one wrote instead of decoding the file again); the files are still written.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from retrain.config import RetrainConfig
from retrain.errors import is_retryable
from retrain.handoff import shared_outputs
from retrain.log import RetrainingRecord
from retrain.pipeline.context import RunContext, RunOptions
from retrain.pipeline.graph import CHECK, DEPLOY, GRAPH, START, Gate, Results, Step
from retrain.pipeline.services import Progress, Services
from retrain.pipeline.steps.finish import finish
from retrain.pipeline.steps.start import start

__all__ = [
    "Progress",
    "RunOutcome",
    "execute",
    "latest_context",
    "run_pipeline",
    "step_context",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its log record, where the record went, and the error that failed it."""

    record: RetrainingRecord
    stored_in: str
    error: BaseException | None = None


def step_context(step: Step[Any], start_ctx: RunContext, results: Results) -> RunContext:
    """The run context a step runs with: ``start``'s, or the one its context step returned."""
    if step.context == START:
        return start_ctx
    context: RunContext = results.named(step.context).context
    return context


def latest_context(start_ctx: RunContext, results: Results) -> RunContext:
    """The newest context of a run (``finish`` uses it): pinned by ``check`` once it ran."""
    if CHECK.name in results:
        return step_context(DEPLOY, start_ctx, results)
    return start_ctx


def execute(step: Step[Any], services: Services, ctx: RunContext, results: Results) -> Any:
    """Run one step with its declared inputs taken from ``results``."""
    inputs = [results.named(name) for name in step.inputs]
    return step.run()(services, ctx, *inputs)


def run_pipeline(
    config: RetrainConfig,
    *,
    services: Services | None = None,
    progress: Progress | None = None,
    sql_url: str | None = None,
    **options: Any,
) -> RunOutcome:
    """Run the whole graph in-process; returns the outcome with the retraining log record.

    ``options`` are :class:`~retrain.pipeline.context.RunOptions` (``trigger``, ``run_key``,
    ``as_of``, ``force``, ``force_reason``, ``skip_ab``, ``target_stage``, ``window_days``,
    ``trigger_reasons``, ``approval``); bad values raise ``DataError`` before anything starts.
    A failing step does not raise: the outcome carries the error and the record says where.
    """
    run_options = RunOptions(**options)
    services = services or Services.build(config, sql_url=sql_url)
    if progress is not None:
        services = dataclasses.replace(services, progress=progress)
    say = services.progress
    with shared_outputs():
        ctx = start(services, run_options)
        say(START, f"{ctx.retraining_id} (trigger {ctx.trigger}, as of {ctx.as_of.isoformat()})")
        results = Results()
        error: BaseException | None = None
        failed: str | None = None
        try:
            _walk(services, ctx, results, say)
        except _StepFailedError as failure:
            error, failed = failure.error, failure.step
        message = f"{type(error).__name__}: {error}" if error is not None else None
        record, where = finish(
            services, latest_context(ctx, results), results, error=message, failed_step=failed
        )
    return RunOutcome(record, where, error)


class _StepFailedError(Exception):
    def __init__(self, step: str, error: BaseException) -> None:
        self.step, self.error = step, error


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
            result = execute(node, services, step_context(node, ctx, results), results)
        except Exception as exc:
            if is_retryable(exc):
                logger.error("step %s crashed:\n%s", node.name, traceback.format_exc())
            say(node.name, f"FAILED: {type(exc).__name__}: {exc}")
            raise _StepFailedError(node.name, exc) from exc
        results.put(node.name, result)
        taken.add(node.name)
        say(node.name, result.summary())
