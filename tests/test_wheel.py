"""The wheel on its own: build it, install it into a fresh venv with the lock file, and load the
DAGs from a user's DAG folder the way a deployment (Astronomer, MWAA, Cloud Composer) would.

* The wheel is built with ``python -m build --wheel`` from a copy of the source tree (without
  ``.venv``, ``.state``, ``build/``, caches), so a stale ``build/lib`` of an earlier build can't
  slip deleted modules into the wheel, and the test writes nothing into the work tree.
* The venv is new (``python -m venv``). The wheel goes in with ``pip install -c constraints.txt``,
  run by the project's pip for the fresh interpreter (``pip --python``; ensurepip's pip takes
  twice as long). No bytecode is compiled (saves a minute; the child compiles what it imports).
* pip's HTTP cache does not help here: the package proxy sends no cache headers, so every fresh
  install downloaded about 220 MB again. The test keeps its own wheelhouse, one per version of
  ``constraints.txt``, under ``$RETRAIN_WHEELHOUSE`` (default ``~/.cache/retrain/wheelhouse``):
  the install runs offline from it (``--no-index``) and fills it with ``pip download`` only when
  something is missing.
* The DAG folder holds one two-line file (``all_dags`` of a config directory with
  ``defaults.yaml`` and two models). A child of the fresh venv's python, with a private
  ``AIRFLOW_HOME``, no examples, and neither the repo nor its venv on ``sys.path``, fills a
  ``DagBag`` from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
MODELS = ("churn-a", "churn-b")
KINDS = (
    "retrain_pipeline",
    "retrain_full_rebuild",
    "retrain_monitor",
    "retrain_rollback",
    "retrain_promote",
)
EXPECTED_DAGS = {f"{kind}__{model}" for kind in KINDS for model in MODELS}
#: Repo folders that are not part of the installed package.
NOT_SHIPPED = ("dags", "tools", "tests", "benchmarks", "plugins", "examples", "config")
#: Left out of the source copy the wheel is built from: at the top, and anywhere.
SKIP_TOP = {".git", ".venv", ".state", "build", "dist", "mlruns", "mlartifacts", ".airflow"}
SKIP_ANY = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".hypothesis",
)  # fmt: skip

pytestmark = pytest.mark.slow


def run(
    args: list[str | Path], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``args`` with no stdin; on failure the assertion shows the command and its output."""
    result = subprocess.run(
        [str(a) for a in args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def _ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(SKIP_ANY(folder, names))
        if Path(folder) == root:
            skipped |= SKIP_TOP & set(names)
        return skipped

    return ignore


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a clean copy of the work tree."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(REPO, source, ignore=_ignore(REPO))
    run([sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", source])
    (built,) = (work / "dist").glob("retrain-*.whl")
    return built


def _wheelhouse() -> Path:
    """Wheels of every locked package, kept between runs (one folder per lock file)."""
    root = Path(
        os.environ.get("RETRAIN_WHEELHOUSE") or Path.home() / ".cache" / "retrain" / "wheelhouse"
    )
    key = hashlib.sha256(CONSTRAINTS.read_bytes()).hexdigest()[:16]
    if root.is_dir():  # older lock files' wheels are never read again
        for old in root.iterdir():
            if old.name != key and re.fullmatch(r"[0-9a-f]{16}", old.name) and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    house = root / key
    house.mkdir(parents=True, exist_ok=True)
    return house


def _fill(house: Path, python: Path, wheel: Path) -> None:
    """Download what ``wheel`` needs under the lock file into ``house`` (one file at a time
    replaced into it, so a concurrent run never reads half a wheel)."""
    with tempfile.TemporaryDirectory(dir=house.parent, prefix=".download-") as tmp:
        pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python]
        run([*pip, "download", "--quiet", "-d", tmp, "-c", CONSTRAINTS, wheel])
        for file in Path(tmp).iterdir():
            if not file.name.startswith("retrain-"):
                file.replace(house / file.name)


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Iterator[Path]:
    """A fresh venv with the wheel and its locked dependencies; yields its python. Removed at
    the end (about 770 MB: pytest would keep the last three runs' copies)."""
    with tempfile.TemporaryDirectory(prefix="retrain-wheel-venv-") as tmp:
        yield _install(Path(tmp) / "venv", wheel)


def _install(root: Path, wheel: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", root])
    python = root / "bin" / "python"
    house = _wheelhouse()
    install: list[str | Path] = [
        *(sys.executable, "-m", "pip", "--python", python, "install", "--quiet"),
        *("--no-index", "--find-links", house, "--no-compile", "-c", CONSTRAINTS, wheel),
    ]
    offline = subprocess.run(
        [str(a) for a in install], stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    if offline.returncode != 0:  # a new lock file or an empty wheelhouse: download, then install
        _fill(house, python, wheel)
        run(install)
    return python


def test_wheel_holds_the_packages_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    expected = {
        f"retrain_airflow/dags/{p.name}" for p in (REPO / "retrain_airflow/dags").glob("*.py")
    }
    assert "retrain_airflow/dags/__init__.py" in expected
    assert expected <= set(names), f"missing from the wheel: {sorted(expected - set(names))}"
    assert {"retrain/__init__.py", "retrain_airflow/__init__.py"} <= set(names)
    tops = {n.split("/", 1)[0] for n in names}
    assert not tops & set(NOT_SHIPPED), f"repo folders in the wheel: {tops & set(NOT_SHIPPED)}"
    assert {t for t in tops if not t.endswith(".dist-info")} == {"retrain", "retrain_airflow"}


@pytest.fixture
def dag_folder(tmp_path: Path) -> Path:
    """A user's DAG folder: one two-line file over a config directory of two models."""
    config = tmp_path / "config"
    config.mkdir()
    base = yaml.safe_load((REPO / "config" / "retraining.yaml").read_text())
    model = {k: v for k, v in base.pop("model").items() if k != "name"}
    (config / "defaults.yaml").write_text(yaml.safe_dump({**base, "model": model}))
    for name in MODELS:
        (config / f"{name}.yaml").write_text(yaml.safe_dump({"model": {"name": name}}))
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "retrain_dags.py").write_text(
        f"from retrain_airflow.dags import all_dags\nglobals().update(all_dags({str(config)!r}))\n"
    )
    return folder


CHILD = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
import airflow, retrain, retrain_airflow, retrain_airflow.dags
modules = (airflow, retrain, retrain_airflow, retrain_airflow.dags)
print(json.dumps({
    "dag_ids": sorted(bag.dag_ids),
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "files": {m.__name__: m.__file__ for m in modules},
    "path": sys.path,
}))
"""


def test_dags_load_from_the_fresh_install(venv: Path, dag_folder: Path, tmp_path: Path) -> None:
    home = tmp_path / "airflow-home"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "RETRAIN_", "VIRTUAL_ENV"))
        and k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONSTARTUP"}
    }
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dag_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PATH": f"{venv.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    # cwd outside the repo: nothing of /work/main can come in through sys.path[0]
    result = run([venv, "-c", CHILD, dag_folder], env=env, cwd=tmp_path)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["import_errors"] == {}
    assert set(report["dag_ids"]) == EXPECTED_DAGS
    site = venv.parent.parent / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site /= "site-packages"
    for module, file in report["files"].items():
        assert Path(file).is_relative_to(site), f"{module} came from {file}, not {site}"
    assert not any(str(REPO) in entry for entry in report["path"]), report["path"]
