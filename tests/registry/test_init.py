"""The package (retrain.registry): importing it loads no heavy library; its names resolve lazily."""

from __future__ import annotations

import pytest


class TestImport:
    def test_importing_the_registry_modules_loads_no_heavy_library(self) -> None:
        import subprocess
        import sys

        heavy = ("airflow", "mlflow", "sklearn", "pandas", "skops")
        code = (
            "import sys, retrain.registry, retrain.notify, tools.mlflow_server; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )

        assert result.stdout.strip() == ""

    def test_every_public_name_resolves(self) -> None:
        from retrain import registry

        assert sorted(registry._EXPORTS) == sorted(registry.__all__)
        for name in registry.__all__:
            assert getattr(registry, name) is vars(registry)[name]  # resolved once, then cached

    def test_unknown_attribute(self) -> None:
        from retrain import registry

        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            _ = registry.nope
