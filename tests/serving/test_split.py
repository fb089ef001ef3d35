"""The canary split (retrain.serving.split): share within a point, sticky, stable everywhere."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from retrain.serving.split import CANARY, canary_share, choose_arm

IDS = [f"customer-{i}" for i in range(20_000)]


class TestSplit:
    @pytest.mark.parametrize("fraction", [0.01, 0.1, 0.25, 0.5, 0.9])
    def test_share_within_one_point_over_20000_ids(self, fraction: float) -> None:
        share = sum(choose_arm("churn", i, fraction) == CANARY for i in IDS) / len(IDS)
        assert abs(share - fraction) <= 0.01, share

    def test_sticky_per_id(self) -> None:
        first = [choose_arm("churn", i, 0.1) for i in IDS[:2000]]
        assert [choose_arm("churn", i, 0.1) for i in IDS[:2000]] == first

    def test_the_same_in_another_process_with_another_hash_seed(self) -> None:
        code = (
            "from retrain.serving.split import canary_share; "
            "print(repr([canary_share('churn', f'customer-{i}') for i in range(50)]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "12345", "PATH": ""},
        ).stdout
        assert ast.literal_eval(out) == [canary_share("churn", f"customer-{i}") for i in range(50)]

    def test_a_larger_fraction_only_moves_ids_to_the_canary(self) -> None:
        small = {i for i in IDS if choose_arm("churn", i, 0.1) == CANARY}
        large = {i for i in IDS if choose_arm("churn", i, 0.2) == CANARY}
        assert small < large

    def test_models_split_independently(self) -> None:
        a = {i for i in IDS if choose_arm("churn", i, 0.5) == CANARY}
        b = {i for i in IDS if choose_arm("fraud", i, 0.5) == CANARY}
        overlap = len(a & b) / len(IDS)
        assert abs(overlap - 0.25) < 0.02

    @pytest.mark.parametrize(("fraction", "arm"), [(0.0, "production"), (1.0, "canary")])
    def test_edges(self, fraction: float, arm: str) -> None:
        assert {choose_arm("churn", i, fraction) for i in IDS[:500]} == {arm}
