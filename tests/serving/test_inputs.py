"""Scoring requests (retrain.serving.inputs): MLflow's formats, and refusals naming the problem."""

from __future__ import annotations

import math
from typing import Any

import pytest

from retrain.config import Features
from retrain.serving.inputs import Limits, RequestError, parse_invocation

FEATURES = Features(numeric=["x1", "x2"], categorical=["segment"])
LIMITS = Limits(max_rows=5)
ROWS = [{"x1": 0.5, "x2": -1, "segment": "a"}, {"x1": None, "x2": 2.0, "segment": None}]


def parse(body: Any, limits: Limits = LIMITS) -> Any:
    return parse_invocation(body, FEATURES, limits)


class TestFormats:
    @pytest.mark.parametrize(
        "body",
        [
            pytest.param(
                {
                    "dataframe_split": {
                        "columns": ["segment", "x2", "x1"],
                        "data": [["a", -1, 0.5], [None, 2.0, None]],
                    }
                },
                id="dataframe_split",
            ),
            pytest.param({"dataframe_records": ROWS}, id="dataframe_records"),
            pytest.param({"instances": ROWS}, id="instances as records"),
            pytest.param({"instances": [[0.5, -1, "a"], [None, 2.0, None]]}, id="instances lists"),
            pytest.param(
                {"inputs": {"x1": [0.5, None], "x2": [-1, 2.0], "segment": ["a", None]}},
                id="inputs columnar",
            ),
        ],
    )
    def test_every_format_gives_the_same_frame(self, body: dict[str, Any]) -> None:
        frame = parse(body).frame
        assert list(frame.columns) == ["x1", "x2", "segment"]
        assert frame["x1"].tolist()[0] == 0.5 and math.isnan(frame["x1"].tolist()[1])
        assert frame["x2"].tolist() == [-1.0, 2.0]
        assert frame["segment"].tolist() == ["a", None]

    def test_ids_per_row(self) -> None:
        parsed = parse(
            {"dataframe_records": ROWS, "entity_ids": ["c1", 7], "request_ids": ["r1", "r2"]}
        )
        assert parsed.entity_ids == ["c1", "7"]
        assert parsed.request_ids == ["r1", "r2"]


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "status", "message"),
        [
            ({"dataframe_records": [{**ROWS[0], "age": 3}]}, 400, "unknown column(s) 'age'"),
            ({"dataframe_records": [{"x1": 1.0, "segment": "a"}]}, 400, "missing column(s) 'x2'"),
            (
                {"dataframe_records": [ROWS[0], {**ROWS[0], "x1": "1.5"}]},
                400,
                "column 'x1' takes a number or null: row 1 has '1.5' (text)",
            ),
            (
                {"dataframe_records": [{**ROWS[0], "segment": 3}]},
                400,
                "column 'segment' takes text or null: row 0 has 3",
            ),
            ({"dataframe_records": [{**ROWS[0], "x2": True}]}, 400, "column 'x2' takes a number"),
            ({"dataframe_records": ROWS * 3}, 413, "6 rows: at most 5 per request"),
            ({"dataframe_records": []}, 400, "missing column(s)"),
            ({"inputs": {"x1": [], "x2": [], "segment": []}}, 400, "no rows"),
            ({"dataframe_records": ROWS, "instances": ROWS}, 400, "exactly one of"),
            ({"rows": ROWS}, 400, "unknown field(s) 'rows'"),
            ([1, 2], 400, "must be a JSON object"),
            ({"dataframe_split": {"columns": ["x1"], "data": [[1, 2]]}}, 400, "row 0 must be"),
            ({"dataframe_records": ROWS, "params": {"t": 1}}, 400, "'params' are not supported"),
            ({"dataframe_records": ROWS, "entity_ids": ["a"]}, 400, "one value per row (2)"),
            ({"dataframe_records": ROWS, "request_ids": ["a", "a"]}, 400, "unique"),
            ({"dataframe_records": ROWS, "request_ids": ["a", None]}, 400, "non-empty id"),
            (
                {"dataframe_split": {"columns": ["x1"], "data": [[1], [2], [1, 2]]}},
                400,
                "'dataframe_split' row 2 must be a list of 1 values",
            ),
            ({"dataframe_records": [ROWS[0], ROWS[1], 3]}, 400, "row 2 must be an object"),
            ({"dataframe_records": [{**ROWS[0], "x1": 10**400}]}, 400, "column 'x1' holds"),
        ],
    )
    def test_named(self, body: Any, status: int, message: str) -> None:
        with pytest.raises(RequestError) as caught:
            parse(body)
        assert caught.value.status == status
        assert message in caught.value.message


class TestColumnar:
    def test_records_of_different_shapes_are_read_as_before(self) -> None:
        rows = [{"x1": 1.0, "x2": 2.0, "segment": "a"}, {"segment": "b", "x2": 3, "x1": None}]
        frame = parse({"dataframe_records": rows}).frame
        assert frame["x2"].tolist() == [2.0, 3.0]
        assert frame["segment"].tolist() == ["a", "b"]
        assert math.isnan(frame["x1"].tolist()[1])

    def test_integers_floats_and_nulls_mix_in_a_numeric_column(self) -> None:
        body = {"instances": [[1, 2**60, "a"], [None, 0.25, "b"], [3.5, -7, None]]}
        frame = parse(body).frame
        assert frame["x1"].tolist()[::2] == [1.0, 3.5] and math.isnan(frame["x1"].tolist()[1])
        assert frame["x2"].tolist() == [float(2**60), 0.25, -7.0]
        assert frame["segment"].tolist() == ["a", "b", None]
