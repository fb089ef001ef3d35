from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("airflow", "mlflow", "sklearn", "pandas", "scipy", "pyarrow", "matplotlib")


class TestImportIsLight:
    @pytest.mark.parametrize(
        "statement",
        [
            pytest.param("import retrain", id="the package"),
            pytest.param(
                "import retrain.config, retrain.triggers, retrain.cadence",
                id="config trigger and cadence modules",
            ),
            pytest.param("from retrain import load_config, TriggerPolicy", id="lazy public names"),
            pytest.param(
                "import retrain.drift, retrain.reports", id="the drift and reports packages"
            ),
        ],
    )
    def test_no_heavy_modules(self, statement: str) -> None:
        code = f"import sys; {statement}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == ""

    def test_library_never_imports_airflow(self) -> None:
        from pathlib import Path

        root = Path(__file__).resolve().parents[1] / "retrain"
        offenders = [
            str(p.relative_to(root.parent))
            for p in root.rglob("*.py")
            if any(
                line.lstrip().startswith(("import airflow", "from airflow"))
                for line in p.read_text().splitlines()
            )
        ]
        assert offenders == []

    def test_computation_never_imports_presentation(self) -> None:
        import ast
        from pathlib import Path

        root = Path(__file__).resolve().parents[1] / "retrain"
        offenders = []
        for path in [*(root / "drift").rglob("*.py"), root / "evaluate.py"]:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                else:
                    continue
                offenders += [
                    f"{path.relative_to(root.parent)}: {name}"
                    for name in names
                    if name.startswith(("retrain.reports", "matplotlib"))
                ]
        assert offenders == []

    def test_unknown_attribute(self) -> None:
        import retrain

        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            _ = retrain.nope


class TestOpenMpWaitPolicy:
    """Importing retrain makes OpenMP wait passively (a fit on shared cores) unless told."""

    @pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
    def test_default_and_explicit(self, given: str | None, expected: str) -> None:
        import os

        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if given:
            env["OMP_WAIT_POLICY"] = given
        code = "import os, retrain; print(os.environ['OMP_WAIT_POLICY'])"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        assert result.stdout.strip() == expected
