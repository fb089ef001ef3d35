"""``retrain run``: every step of the graph in one process, in the graph's order.

The same step functions as the DAG's tasks, the same gates, the same record. Each step hands
its result to the next in memory (and :mod:`retrain.handoff` lets a step reuse the frame or
model the previous one wrote instead of decoding the file again); the files are still written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from retrain.config import RetrainConfig
from retrain.constants import Stage
from retrain.errors import RetrainError, UnknownModelError
from retrain.handoff import shared_outputs
from retrain.lease import ProductionMovedError
from retrain.log import RetrainingRecord
from retrain.pipeline.context import RunContext, RunOptions, fallback_context
from retrain.pipeline.graph import CHECK, GRAPH, START, Gate, Results, Step
from retrain.pipeline.services import Progress, Services
from retrain.pipeline.steps.finish import finish
from retrain.pipeline.steps.start import start

__all__ = [
    "RunOutcome",
    "Terminated",
    "context_of",
    "execute",
    "execute_held",
    "run_pipeline",
    "terminate_on_signals",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: its log record, where the record went, and the error that failed it."""

    record: RetrainingRecord
    stored_in: str
    error: BaseException | None = None


class Terminated(BaseException):
    """A signal ended the run (raised in the main thread by :func:`terminate_on_signals`).

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` of a step or a
    library swallows it, and the pipeline still writes the record.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")


class _Termination:
    """Whether a signal may interrupt the run now (not while ``finish`` writes the record)."""

    armed = False
    received: int | None = None


@contextlib.contextmanager
def terminate_on_signals(
    signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP),
) -> Iterator[type[_Termination]]:
    """While the block runs, the first of ``signums`` raises :class:`Terminated` in the main
    thread, so :func:`run_pipeline` fails the run "terminated by signal" and still writes its
    record, closes its MLflow run and gives its lease back; a signal while the record is being
    written is remembered (``received``) but interrupts nothing. Only in the main thread (a
    no-op elsewhere, e.g. inside an Airflow task, which has its own handling)."""
    if threading.current_thread() is not threading.main_thread():
        yield _Termination
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        _Termination.received = _Termination.received or signum
        if _Termination.armed:
            _Termination.armed = False
            raise Terminated(signum)

    previous = {signum: signal.signal(signum, handler) for signum in signums}
    _Termination.armed, _Termination.received = True, None
    try:
        yield _Termination
    finally:
        _Termination.armed = False
        for signum, old in previous.items():
            signal.signal(signum, old)


def context_of(start_ctx: RunContext, results: Results) -> RunContext:
    """The run context a step (or ``finish``) runs with: the one ``check`` pinned the baseline
    in once it ran, else ``start``'s."""
    checked = results.get(CHECK)
    return checked.context if checked is not None else start_ctx


def execute(step: Step[Any], services: Services, start_ctx: RunContext, results: Results) -> Any:
    """Run one step with the run context and its declared inputs taken from ``results``."""
    inputs = [results.named(name) for name in step.inputs]
    return step.run()(services, context_of(start_ctx, results), *inputs)


def execute_held(
    step: Step[Any], services: Services, start_ctx: RunContext, results: Results
) -> Any:
    """:func:`execute`; a step that writes to the registry holds the model's lease, and runs
    only if production is still the version the run's ``check`` pinned.

    Runs of one model train in parallel and commit one at a time: a run whose production moved
    meanwhile (another run deployed) compared its candidate against an old baseline, and fails
    with :class:`~retrain.lease.ProductionMovedError` (retryable: running again compares against
    the new production) before it registers anything. A production version this run itself
    registered (a retried deploy) is no move.
    """
    if not step.registry_writes:
        return execute(step, services, start_ctx, results)
    ctx = context_of(start_ctx, results)
    with services.lease.hold(f"{ctx.run_key}:{step.name}", retraining_id=ctx.retraining_id):
        _production_unmoved(services, ctx)
        return execute(step, services, start_ctx, results)


def _production_unmoved(services: Services, ctx: RunContext) -> None:
    if not ctx.pinned:
        return
    try:
        production = services.registry.current(Stage.PRODUCTION).get(Stage.PRODUCTION)
    except UnknownModelError:
        production = None
    now = production.version if production is not None else None
    if now == ctx.baseline_version:
        return
    if production is not None and production.record.retraining_id == ctx.retraining_id:
        return
    pinned = f"version {ctx.baseline_version}" if ctx.baseline_version else "no production"
    by = f" by {production.record.retraining_id}" if production is not None else ""
    raise ProductionMovedError(
        f"production of model {services.config.model.name} moved since this run's check: "
        f"it compared against {pinned}, production is now "
        f"{f'version {now}' if now else 'unset'}{by}; nothing was registered (run again to "
        "compare against the new production)"
    )


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
    A step that writes to the registry holds the model's lease (:mod:`retrain.lease`): it waits
    for another run's, and fails with :class:`~retrain.lease.LeaseHeldError` (retryable) if that
    is held too long. A :class:`Terminated` run (see :func:`terminate_on_signals`) fails at the
    step it was in.
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
        except (Exception, Terminated) as exc:  # still leave a record (spooled if MLflow is down)
            _report(START, exc, say)
            ctx = fallback_context(
                config.storage.work_dir,
                run_key=run_options.run_key or "retrain-run",
                trigger=run_options.trigger,
            )
            error, failed = exc, START
        else:
            try:
                as_of = ctx.as_of.isoformat()
                say(START, f"{ctx.retraining_id} (trigger {ctx.trigger}, as of {as_of})")
                _walk(services, ctx, results, say)
            except _StepFailedError as failure:
                error, failed = failure.error, failure.step
            except Terminated as exc:  # between two steps
                _report("run", exc, say)
                error, failed = exc, "run"
        _Termination.armed = False  # the record is written whatever arrives now
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
    if not isinstance(exc, RetrainError | Terminated):
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
            result = execute_held(node, services, ctx, results)
        except (Exception, Terminated) as exc:
            _report(node.name, exc, say)
            raise _StepFailedError(node.name, exc) from exc
        results.put(node.name, result)
        taken.add(node.name)
        say(node.name, result.summary())
