"""The README names only commands, keys, DAGs and targets that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retrain.cli import build_parser
from retrain.config import reference_rows
from tools.update_readme import render

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SECTIONS = {key.split(".")[0].split(" ")[0] for key, *_ in reference_rows()}


def _subcommands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    names = set(action.choices)
    config = action.choices["config"]
    sub = next(a for a in config._actions if a.dest == "config_command")
    names |= {f"config {name}" for name in sub.choices}
    return names


def _config_keys() -> set[str]:
    keys = set()
    for key, *_ in reference_rows():
        keys.add(re.sub(r" \(kind: \w+\)", "", key))
    return keys


class TestReadme:
    def test_config_reference_is_generated_from_the_schema(self) -> None:
        assert render(README) == README, "run: .venv/bin/python tools/update_readme.py"

    def test_every_cli_command_exists(self) -> None:
        named = set(re.findall(r"(?:`|\$ )retrain ((?:config )?[a-z]+)", README))
        missing = sorted(named - _subcommands())
        assert missing == [], f"README names commands that do not exist: {missing}"
        assert _subcommands() - {"config"} <= named, "every command is documented"

    def test_every_config_key_exists(self) -> None:
        keys = _config_keys()
        named = {
            k
            for k in re.findall(r"`([a-z_]+(?:\.[a-z_<>]+)+)`", README)
            if k.split(".")[0] in SECTIONS
        }
        missing = sorted(n for n in named if n not in keys)
        assert named, "the README names config keys"
        assert missing == [], f"README names config keys that do not exist: {missing}"

    def test_every_dag_exists(self) -> None:
        table = set(re.findall(r"^\| `(retrain_[a-z_]+)` \|", README, re.MULTILINE))
        files = {p.stem for p in (REPO / "dags").glob("retrain_*.py")}
        assert table == files, "the DAG table lists exactly the DAGs in dags/"

    @pytest.mark.parametrize("target", sorted(set(re.findall(r"`make ([a-z-]+)", README))))
    def test_every_make_target_exists(self, target: str) -> None:
        makefile = (REPO / "Makefile").read_text()
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target
