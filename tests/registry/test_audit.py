"""The audit history (retrain.registry.audit): one run per entry, newest first, no entry lost
to concurrent writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from retrain.config import parse_config
from retrain.registry import AuditEntry, ModelRegistry
from tests.registry_builders import Fleet, config_dict
from tools.mlflow_server import MlflowServer, free_port


class TestAudit:
    def test_lists_every_alias_move_newest_first_with_who_why_and_run(self, fleet: Fleet) -> None:
        first = fleet.register()
        fleet.registry.promote(first, "canary", reason="checks passed", run_id="run-9")

        newest, oldest = fleet.registry.history()

        assert (oldest.op, oldest.alias, oldest.from_version, oldest.to_version) == (
            "register",
            "staging",
            None,
            first,
        )
        assert (newest.alias, newest.from_version, newest.to_version) == ("canary", None, first)
        assert (newest.actor, newest.reason, newest.run_id) == ("tester", "checks passed", "run-9")
        assert [(m.alias, m.from_version, m.to_version) for m in newest.moves] == [
            ("canary", None, first),
            ("staging", first, None),
        ]
        assert newest.at > oldest.at
        assert fleet.registry.history(limit=1) == [newest]

    def _entry(self, registry: ModelRegistry, n: int) -> AuditEntry:
        from retrain.registry import AliasMove

        return AuditEntry.new(
            op="note",
            moves=(AliasMove("staging", None, None),),
            statuses={},
            reason=f"writer entry {n}",
            run_id=None,
            actor=registry.actor,
        )

    def test_concurrent_writers_lose_no_entry(self, fleet: Fleet) -> None:
        registry = fleet.registry
        fleet.register()
        threads, per_thread = 8, 10

        def write(worker: int) -> None:
            own = ModelRegistry(registry.config, actor=f"writer-{worker}")
            with own._client.calls("test write"):
                for n in range(per_thread):
                    entry = own._audit.write(self._entry(own, worker * per_thread + n))
                    own._audit.finish(entry, "done")

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(write, range(threads)))

        reasons = {e.reason for e in registry.history() if e.op == "note"}
        assert reasons == {f"writer entry {n}" for n in range(threads * per_thread)}

    def test_concurrent_writer_processes_lose_no_entry(self, fleet: Fleet) -> None:
        import multiprocessing

        fleet.register()
        config = fleet.registry.config.model_dump(mode="json", by_alias=True)
        context = multiprocessing.get_context("spawn")
        with context.Pool(3) as pool:
            pool.starmap(_write_entries_in_process, [(config, w, 10) for w in range(3)])

        reasons = {e.reason for e in fleet.registry.history() if e.op == "note"}
        assert reasons == {f"process {w} entry {n}" for w in range(3) for n in range(10)}

    @pytest.mark.slow
    def test_history_survives_a_server_restart(
        self, tmp_path: Path, fitted: Pipeline, example: pd.DataFrame
    ) -> None:
        port = free_port()
        data = config_dict(f"http://127.0.0.1:{port}", "restart-model")
        with MlflowServer(root=tmp_path / "srv", port=port):
            fleet = Fleet(ModelRegistry(parse_config(data), actor="a"), fitted, example)
            fleet.to_production()
            before = fleet.registry.history()

        with MlflowServer(root=tmp_path / "srv", port=port):
            after = ModelRegistry(parse_config(data), actor="b").history()

        assert after == before
        assert len(after) == 3


def _write_entries_in_process(config: dict[str, Any], worker: int, count: int) -> None:
    from retrain.registry import AliasMove

    registry = ModelRegistry(parse_config(config), actor=f"process-{worker}")
    with registry._client.calls("test write"):
        for n in range(count):
            entry = registry._audit.write(
                AuditEntry.new(
                    op="note",
                    moves=(AliasMove("staging", None, None),),
                    statuses={},
                    reason=f"process {worker} entry {n}",
                    run_id=None,
                    actor=registry.actor,
                )
            )
            registry._audit.finish(entry, "done")
