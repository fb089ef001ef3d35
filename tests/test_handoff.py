from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrain.handoff import recall, remember, shared_outputs


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A file just written by a step."""
    written = tmp_path / "a.bin"
    written.write_bytes(b"x")
    return written


def test_nothing_is_remembered_outside_the_block(path: Path) -> None:
    remember(path, "value")
    assert recall(path) is None
    with shared_outputs():
        assert recall(path) is None, "remembered before the block: not kept"


def test_recall_inside_the_block_then_dropped(path: Path) -> None:
    value = object()
    with shared_outputs():
        remember(path, value)
        assert recall(path) is value
        assert recall(path.parent / "." / "a.bin") is value, "same file, another spelling"
        assert recall(path.parent / "b.bin") is None
    assert recall(path) is None


def test_a_changed_or_removed_file_is_read_again(path: Path) -> None:
    with shared_outputs():
        remember(path, "old")
        path.write_bytes(b"longer")
        assert recall(path) is None, "size changed"
        remember(path, "new")
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert recall(path) is None, "modification time changed"
        remember(path, "newer")
        path.unlink()
        assert recall(path) is None


def test_blocks_nest_without_leaking(path: Path) -> None:
    with shared_outputs():
        remember(path, "outer")
        with shared_outputs():
            assert recall(path) is None
            remember(path, "inner")
        assert recall(path) == "outer"
