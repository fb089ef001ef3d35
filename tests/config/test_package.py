"""The package: its public names, light imports, and the layering of its modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import retrain.config

PACKAGE = Path(retrain.config.__file__).parent
# croniter: the cron parser Airflow's CronTriggerTimetable itself uses (Airflow depends on it, so
# it is always installed); checking schedule crons with it at load means the DAG file is never
# the first to find a bad cron. Small (about 50 ms to import, with dateutil).
THIRD_PARTY = {"pydantic", "pydantic_core", "yaml", "croniter"}
RETRAIN = {
    "retrain.conditions",
    "retrain.constants",
    "retrain.errors",
    "retrain.redact",
}  # all light


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


class TestPublicNames:
    def test_every_public_name_resolves(self) -> None:
        missing = [name for name in retrain.config.__all__ if not hasattr(retrain.config, name)]
        assert missing == []

    def test_unknown_attribute(self) -> None:
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            _ = retrain.config.nope


class TestImports:
    def test_reference_generator_is_imported_on_first_use(self) -> None:
        code = (
            "import sys, retrain.config; loaded = 'retrain.config.reference' in sys.modules; "
            "retrain.config.reference_rows; "
            "print(loaded, 'retrain.config.reference' in sys.modules)"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.split() == ["False", "True"]

    @pytest.mark.parametrize("module", sorted(p.stem for p in PACKAGE.glob("*.py")))
    def test_modules_import_only_the_standard_library_pydantic_and_yaml(self, module: str) -> None:
        outside = {
            name
            for name in _imports(module)
            if name.split(".")[0] not in sys.stdlib_module_names | THIRD_PARTY
            and name not in RETRAIN
            and not name.startswith("retrain.config.")
        }
        assert outside == set()

    def test_schema_imports_neither_the_loader_nor_the_reference(self) -> None:
        inner = {
            module: {name for name in _imports(module) if name.startswith("retrain.config.")}
            for module in ("schema", "loader", "reference")
        }
        assert inner == {
            "schema": set(),
            "loader": {"retrain.config.schema"},
            "reference": {"retrain.config.schema"},
        }
