"""The step graph is one consistent declaration: names, order, functions and types agree."""

from __future__ import annotations

import inspect
import typing

import pytest

from retrain.pipeline import graph, results
from retrain.pipeline.context import RunContext
from retrain.pipeline.services import Services

NODES = {node.name: node for node in graph.GRAPH}


class TestDeclaration:
    def test_every_node_follows_a_node_that_runs_before_it(self) -> None:
        seen = {graph.START}
        for node in graph.GRAPH:
            assert node.after in seen, f"{node.name} runs after {node.after}, declared later"
            seen.add(node.name)

    def test_inputs_are_steps_that_run_before_the_node(self) -> None:
        order = [graph.START, *NODES]
        for node in graph.GRAPH:
            for name in node.inputs:
                assert name in graph.STEPS, f"{node.name} takes {name}, which is not a step"
                assert order.index(name) < order.index(node.name)

    def test_branch_choices_are_the_nodes_that_follow_the_branch(self) -> None:
        for node in graph.GRAPH:
            if isinstance(node, graph.Gate) and node.choices:
                followers = {n.name for n in graph.GRAPH if n.after == node.name}
                assert set(node.choices) == followers

    def test_finish_follows_the_leaves(self) -> None:
        assert graph.leaves() == ["deploy", "reject"]


class TestFunctions:
    @pytest.mark.parametrize("name", list(graph.STEPS))
    def test_a_step_takes_services_context_and_its_inputs_typed_as_they_are_produced(
        self, name: str
    ) -> None:
        step = graph.STEPS[name]
        fn = step.run()
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        assert params[:2] == ["services", "ctx"]
        assert hints["services"] is Services and hints["ctx"] is RunContext
        assert len(params) == 2 + len(step.inputs), f"{name}: {params} vs inputs {step.inputs}"
        for param, produced_by in zip(params[2:], step.inputs, strict=True):
            assert hints[param] is graph.STEPS[produced_by].result_type(), (name, param)

    @pytest.mark.parametrize("name", list(graph.STEPS))
    def test_a_step_returns_its_declared_result_type(self, name: str) -> None:
        step = graph.STEPS[name]
        hints = typing.get_type_hints(step.run())
        assert hints["return"] is step.result_type()

    @pytest.mark.parametrize("gate", [n for n in graph.GRAPH if isinstance(n, graph.Gate)])
    def test_a_gate_takes_its_inputs(self, gate: graph.Gate) -> None:
        fn = gate.run()  # gates name the result types for annotations only: resolve them here
        hints = typing.get_type_hints(fn, localns=vars(results))
        params = list(inspect.signature(fn).parameters)
        assert [hints[p] for p in params] == [graph.STEPS[n].result_type() for n in gate.inputs]
