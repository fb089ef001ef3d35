"""The step graph, declared once: it drives ``retrain run``, the DAG's tasks and the log record.

``start -> check -> proceed? -> extract -> validate -> train -> evaluate -> compare -> decide ->
deploy | reject -> finish``

A :class:`Step` names the function that runs it, the type it returns, the earlier steps whose
results it takes (after the services and the run context: ``start``'s until ``check`` has pinned
the baseline in its own), and whether it writes to the registry (the DAG runs those in the
one-slot registry pool). A :class:`Gate` is a decision
between steps: ``proceed`` stops a run cleanly, ``decide`` picks ``deploy`` or ``reject``.
Functions and types are named by import path and loaded when a step runs, so importing this
module (as a DAG file does at parse time) loads nothing heavy.

``start`` and ``finish`` frame the graph: ``start`` makes the run context from the options;
``finish`` always runs, also after a failure, and writes the retraining log.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from retrain.pipeline.results import (
        CheckResult,
        Compared,
        Deployed,
        Evaluated,
        Extracted,
        Rejected,
        Trained,
        Validated,
    )

__all__ = [
    "CHECK",
    "COMPARE",
    "DECIDE",
    "DEPLOY",
    "EVALUATE",
    "EXTRACT",
    "FINISH",
    "GRAPH",
    "PROCEED",
    "REJECT",
    "START",
    "STEPS",
    "TRAIN",
    "VALIDATE",
    "Gate",
    "Node",
    "Results",
    "Step",
    "load",
]

T = TypeVar("T")
START = "start"
FINISH = "finish"


def load(path: str) -> Any:
    """The object at ``"package.module:name"``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Step(Generic[T]):
    """A step: ``function(services, context, *results of inputs) -> result``."""

    name: str
    function: str
    result: str
    doc: str
    after: str
    inputs: tuple[str, ...] = ()
    registry_writes: bool = False

    def run(self) -> Callable[..., T]:
        fn: Callable[..., T] = load(self.function)
        return fn

    def result_type(self) -> type[T]:
        kind: type[T] = load(self.result)
        return kind


@dataclass(frozen=True)
class Gate:
    """A decision between steps from earlier results: ``function(*results of inputs)``.

    Without ``choices`` it returns a bool (``False`` stops the run cleanly); with ``choices``
    it returns the name of the one step that runs next.
    """

    name: str
    function: str
    doc: str
    after: str
    inputs: tuple[str, ...] = ()
    choices: tuple[str, ...] = field(default=())

    def run(self) -> Callable[..., Any]:
        fn: Callable[..., Any] = load(self.function)
        return fn


Node = Step[Any] | Gate

_STEPS = "retrain.pipeline.steps"
_RESULTS = "retrain.pipeline.results"

CHECK: Step[CheckResult] = Step(
    "check",
    f"{_STEPS}.check:check",
    f"{_RESULTS}:CheckResult",
    "Measure live signals (drift, volume, accuracy, age), apply the rules and vetoes, pin the "
    "production version as the run's baseline.",
    after=START,
)
PROCEED = Gate(
    "proceed",
    "retrain.pipeline.gates:proceed",
    "Stop here (cleanly) when nothing triggered the run.",
    after="check",
    inputs=("check",),
)
EXTRACT: Step[Extracted] = Step(
    "extract",
    f"{_STEPS}.extract:extract_step",
    f"{_RESULTS}:Extracted",
    "Read the training window and count new rows since the baseline's watermark.",
    after="proceed",
)
VALIDATE: Step[Validated] = Step(
    "validate",
    f"{_STEPS}.validate:validate_step",
    f"{_RESULTS}:Validated",
    "Check the data contract; fails (no retry) naming every problem.",
    after="extract",
    inputs=("extract",),
)
TRAIN: Step[Trained] = Step(
    "train",
    f"{_STEPS}.train:train_step",
    f"{_RESULTS}:Trained",
    "Fit the preprocessing + estimator pipeline; build the drift reference profile.",
    after="validate",
    inputs=("extract",),
)
EVALUATE: Step[Evaluated] = Step(
    "evaluate",
    f"{_STEPS}.evaluate:evaluate_step",
    f"{_RESULTS}:Evaluated",
    "Score candidate and baseline on the same holdout (a full rebuild: and the comprehensive "
    "tests); apply the gate.",
    after="train",
    inputs=("train", "extract"),
)
COMPARE: Step[Compared] = Step(
    "compare",
    f"{_STEPS}.compare:compare_step",
    f"{_RESULTS}:Compared",
    "Offline A/B: McNemar test and bootstrap CI of the accuracy difference.",
    after="evaluate",
    inputs=("evaluate",),
)
DECIDE = Gate(
    "decide",
    "retrain.pipeline.gates:release_or_reject",
    "Deploy when gate and A/B pass (or the run is forced), else reject.",
    after="compare",
    inputs=("evaluate", "compare"),
    choices=("deploy", "reject"),
)
DEPLOY: Step[Deployed] = Step(
    "deploy",
    f"{_STEPS}.deploy:deploy_step",
    f"{_RESULTS}:Deployed",
    "Register -> staging -> canary -> production, checklist enforced.",
    after="decide",
    inputs=("extract", "validate", "train", "evaluate", "compare"),
    registry_writes=True,
)
REJECT: Step[Rejected] = Step(
    "reject",
    f"{_STEPS}.reject:reject_step",
    f"{_RESULTS}:Rejected",
    "Record why the candidate is not deployed; nothing moves.",
    after="decide",
    inputs=("evaluate", "compare"),
)

#: Every node between ``start`` and ``finish``, in execution order.
GRAPH: tuple[Node, ...] = (
    CHECK,
    PROCEED,
    EXTRACT,
    VALIDATE,
    TRAIN,
    EVALUATE,
    COMPARE,
    DECIDE,
    DEPLOY,
    REJECT,
)
#: The steps (not gates), by name.
STEPS: dict[str, Step[Any]] = {n.name: n for n in GRAPH if isinstance(n, Step)}


def leaves() -> list[str]:
    """Nodes no other node runs after: ``finish`` follows them."""
    followed = {n.after for n in GRAPH}
    return [n.name for n in GRAPH if n.name not in followed]


class Results:
    """The results of the steps that ran, typed by the step that produced them."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, step: Step[T]) -> T | None:
        value: T | None = self._values.get(step.name)
        return value

    def put(self, name: str, value: object) -> None:
        if name not in STEPS:
            raise KeyError(f"no step named {name!r}")
        self._values[name] = value

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def named(self, name: str) -> Any:
        return self._values[name]
