"""Bad configs: each refused at load time with the file and key named, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain.config import load_config
from retrain.errors import ConfigError
from tests.reliability.harness import attempt

GOOD = Path(__file__).resolve().parents[2] / "config" / "retraining.yaml"


class TestYaml:
    @pytest.mark.parametrize(
        ("case", "text", "expect"),
        [
            pytest.param(
                "a key given twice",
                GOOD.read_text() + "\nstorage: {work_dir: /tmp/a}\nstorage: {work_dir: /tmp/b}\n",
                "duplicate key",
                id="duplicate key",
            ),
            pytest.param(
                "a Python tag",
                "model: !!python/object/apply:os.system ['true']\n",
                "python/object",
                id="python tag",
            ),
        ],
    )
    def test_a_malformed_file_is_refused_naming_it(
        self, tmp_path: Path, case: str, text: str, expect: str
    ) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        with attempt("config", case, None, expect=[str(path), expect], error=ConfigError):
            load_config(path)
