"""The crash-point sweep: crash one validator at every WAL write, fsync, signer-state write and
send over its first heights, on real files, restart it from the WAL, and check everything.

Why every point: a crash between "signed" and "logged", or between "logged" and "sent", is
exactly where a replica could come back and sign something different (spec 1.9, CometBFT's
TestWALCrash). Each run must recover, keep going, and never double sign.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from alloranet.consensus.sim.runner import CrashableDisk, Simulation, memory_disk
from alloranet.consensus.sim.scenario import Crash, Scenario
from alloranet.consensus.storage import FailPoints, FileDisk

POWERS = (4, 3, 2, 2)


@dataclass
class SweepResult:
    points: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[int, list[str]]] = field(default_factory=list)


def _scenario(crash_at: int | None) -> Scenario:
    crashes = () if crash_at is None else (Crash(0.0, 0, "failpoint", crash_at, 0.05),)
    return Scenario(
        seed=crash_at or 0,
        powers=POWERS,
        twins=(),
        withholders=(),
        drop=0.0,
        max_delay=0.003,
        partitions=(),
        crashes=crashes,
        skews=(1.0, 1.0, 1.0, 1.0),
        updates=(),
        heal_time=0.6,
        real_crypto=False,
    )


def run_crash_sweep(root: Path, heights: int = 3, real_files: bool = True) -> SweepResult:
    """Crash node 0 at each of its fail points up to its commit of ``heights``."""

    def factory_for(run: int):  # type: ignore[no-untyped-def]
        def factory(node: int, fp: FailPoints) -> CrashableDisk:
            if node == 0 and real_files:
                return FileDisk(root / f"run{run}", fp)
            return memory_disk(node, fp)

        return factory

    baseline = Simulation(_scenario(None), factory_for(0))
    base = baseline.run()
    result = SweepResult()
    if base.violations:
        result.failures.append((0, base.violations))
        return result
    total = baseline.failpoint_counts[0][heights]
    labels = baseline.nodes[0].failpoints.seen[:total]
    for i in range(1, total + 1):
        sim = Simulation(_scenario(i), factory_for(i))
        r = sim.run()
        result.points += 1
        label = labels[i - 1]
        result.labels[label] = result.labels.get(label, 0) + 1
        if sim.nodes[0].incarnation < 2:
            r.violations.append(f"crash point {i} ({label}) was never reached")
        if r.violations:
            result.failures.append((i, r.violations))
        shutil.rmtree(root / f"run{i}", ignore_errors=True)
    shutil.rmtree(root / "run0", ignore_errors=True)
    return result
