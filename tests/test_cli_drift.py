"""Tests of ``retrain drift``: exit codes, JSON and HTML output, config, saved profiles, CSV."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.drift_data import CATEGORICAL, NUMERIC, make_drift_data
from retrain.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_TRIGGERED, main
from retrain.config import DriftSettings
from retrain.drift import build_profile


@cache
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    ref, cur, _ = make_drift_data(5_000, seed=3)
    return ref, cur


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ref, cur = frames()
    paths = {
        "ref": tmp_path / "reference.parquet",
        "cur": tmp_path / "current.parquet",
        "ref_csv": tmp_path / "reference.csv",
        "cur_csv": tmp_path / "current.csv",
    }
    ref.to_parquet(paths["ref"])
    cur.to_parquet(paths["cur"])
    ref.to_csv(paths["ref_csv"], index=False)
    cur.to_csv(paths["cur_csv"], index=False)
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["drift", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)


def write_config(path: Path, drift: str = "") -> Path:
    path.write_text(
        f"""
model:
  name: drift-cli-test
  target: label
  features:
    numeric: [num_mean_shift_0_25sd, num_same_normal]
    categorical: [cat_same_three]
data:
  source: {{kind: parquet, path: /nonexistent, event_time_column: event_time}}
registry:
  tracking_uri: http://127.0.0.1:1
{drift}
""",
        encoding="utf-8",
    )
    return path


class TestDriftCommand:
    def test_drift_exits_10_with_the_cli_json_fields(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
    ) -> None:
        code, data = run_json(
            capsys, "--reference", str(files["ref"]), "--current", str(files["cur"])
        )
        assert code == EXIT_TRIGGERED
        assert data["drift_count"] == 5
        assert data["drift_share"] == pytest.approx(0.2)
        names = {f["name"] for f in data["features"]}
        assert names == set(NUMERIC) | set(CATEGORICAL)
        for feature in data["features"]:
            assert {"name", "kind", "severity", "statistics"} <= set(feature)
        drifted = {f["name"] for f in data["features"] if f["severity"] in {"medium", "high"}}
        assert "num_poisson_20_to_23" in drifted

    def test_identical_data_exits_0(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
    ) -> None:
        code, data = run_json(
            capsys, "--reference", str(files["ref"]), "--current", str(files["ref"])
        )
        assert code == EXIT_OK
        assert (data["drift_count"], data["drift_share"]) == (0, 0.0)

    def test_prints_a_table_and_writes_an_html_report(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        html = tmp_path / "report" / "drift.html"
        code, out, _ = run(
            capsys, "--reference", str(files["ref"]), "--current", str(files["cur"]),
            "--html", str(html),
        )  # fmt: skip
        assert code == EXIT_TRIGGERED
        assert "num_poisson_20_to_23" in out
        assert "drift_count (high): 5" in out
        assert str(html) in out
        text = html.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>")
        assert text.count("data:image/png;base64,") == 5

    def test_accepts_a_saved_profile_as_reference(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        ref, _ = frames()
        settings = DriftSettings()
        profile = build_profile(ref, numeric=NUMERIC, categorical=CATEGORICAL, settings=settings)
        saved = profile.save(tmp_path / "profile.json")
        code_a, from_profile = run_json(
            capsys, "--reference", str(saved), "--current", str(files["cur"])
        )
        code_b, from_data = run_json(
            capsys, "--reference", str(files["ref"]), "--current", str(files["cur"])
        )
        assert code_a == code_b == EXIT_TRIGGERED
        assert from_profile["features"] == from_data["features"]

    def test_reads_csv_files(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path]
    ) -> None:
        code, data = run_json(
            capsys, "--reference", str(files["ref_csv"]), "--current", str(files["cur_csv"])
        )
        assert code == EXIT_TRIGGERED
        assert data["drift_count"] == 5

    def test_config_selects_features_and_settings(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        config = write_config(tmp_path / "retraining.yaml")
        code, data = run_json(
            capsys, "--reference", str(files["ref"]), "--current", str(files["cur"]),
            "--config", str(config),
        )  # fmt: skip
        assert code == EXIT_TRIGGERED
        assert [f["name"] for f in data["features"]] == [
            "num_mean_shift_0_25sd", "num_same_normal", "cat_same_three",
        ]  # fmt: skip
        assert data["drift_count"] == 1

        quiet = write_config(
            tmp_path / "quiet.yaml",
            "drift:\n  features:\n    num_mean_shift_0_25sd: {enabled: false}\n",
        )
        code, data = run_json(
            capsys, "--reference", str(files["ref"]), "--current", str(files["cur"]),
            "--config", str(quiet),
        )  # fmt: skip
        assert code == EXIT_OK
        assert data["skipped"] == ["num_mean_shift_0_25sd"]
        assert len(data["features"]) == 2


class TestDriftCommandBadInput:
    def test_a_missing_file_exits_2(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        code, _, err = run(
            capsys, "--reference", str(files["ref"]), "--current", str(tmp_path / "nope.parquet")
        )
        assert code == EXIT_BAD_INPUT
        assert "file or directory not found" in err

    def test_a_column_missing_from_current_data_exits_2_and_names_it(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        _, cur = frames()
        partial = tmp_path / "partial.parquet"
        cur.drop(columns=["num_same_beta"]).to_parquet(partial)
        code, out, err = run(
            capsys, "--reference", str(files["ref"]), "--current", str(partial), "--json"
        )
        assert code == EXIT_BAD_INPUT
        assert "num_same_beta (missing_column)" in err
        data = json.loads(out)  # the report is still printed
        assert data["unchecked"] == ["num_same_beta"]

    def test_a_malformed_profile_exits_2(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        bad = tmp_path / "profile.json"
        bad.write_text('{"format_version": 1, "features": []}')
        code, _, err = run(capsys, "--reference", str(bad), "--current", str(files["cur"]))
        assert code == EXIT_BAD_INPUT
        assert "'features' must be an object" in err

    def test_a_config_feature_missing_from_the_reference_exits_2(
        self, capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
    ) -> None:
        ref, _ = frames()
        slim = tmp_path / "slim.parquet"
        ref.drop(columns=["cat_same_three"]).to_parquet(slim)
        config = write_config(tmp_path / "retraining.yaml")
        code, _, err = run(
            capsys, "--reference", str(slim), "--current", str(files["cur"]),
            "--config", str(config),
        )  # fmt: skip
        assert code == EXIT_BAD_INPUT
        assert "cat_same_three: column not found in the reference data" in err

    def test_reference_and_current_are_required(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exc:
            main(["drift", "--current", "x.parquet"])
        assert exc.value.code == 2
        assert "--reference" in capsys.readouterr().err
