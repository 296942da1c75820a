"""Crash at every WAL write, fsync, signer-state write and send over 3 heights; all recover."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from alloranet.consensus.sim.sweep import run_crash_sweep


def _check(root: Path) -> None:
    result = run_crash_sweep(root, heights=3)
    assert not result.failures, result.failures[:5]
    for label in ("cs.wal.write", "cs.wal.fsync", "priv_validator_state.fsync", "send"):
        assert result.labels.get(label, 0) >= 3, result.labels
    assert result.points == sum(result.labels.values()) >= 60


def test_crash_point_sweep_on_real_files_in_tmpfs() -> None:
    # Real files, real fsync and rename; on tmpfs so that ~100 restarts stay fast.
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=base) as d:
        _check(Path(d))


@pytest.mark.slow
def test_crash_point_sweep_on_disk(tmp_path: Path) -> None:
    _check(tmp_path)
