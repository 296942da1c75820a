"""Run many schedules, optionally across processes (CI has two cores)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from alloranet.consensus.sim.runner import run_schedule


@dataclass
class Summary:
    heights: int = 0
    violations: int = 0
    failures: list[tuple[int, str, list[str]]] = field(default_factory=list)


def _run_range(args: tuple[int, int, bool]) -> Summary:
    start, count, over = args
    s = Summary()
    for seed in range(start, start + count):
        r = run_schedule(seed, over)
        s.heights += r.heights
        if r.violations:
            s.violations += len(r.violations)
            desc = r.scenario.describe() if r.scenario else ""
            s.failures.append((seed, desc, r.violations))
    return s


def run_many(count: int, seed: int, byzantine_over: bool = False, jobs: int = 1) -> Summary:
    """Run schedules ``seed .. seed+count-1``; seeds are the same whatever ``jobs`` is."""
    if jobs <= 1:
        return _run_range((seed, count, byzantine_over))
    chunk = max(1, count // (jobs * 4))
    parts = [
        (s, min(chunk, seed + count - s), byzantine_over) for s in range(seed, seed + count, chunk)
    ]
    total = Summary()
    with ProcessPoolExecutor(jobs) as pool:
        for part in pool.map(_run_range, parts):
            total.heights += part.heights
            total.violations += part.violations
            total.failures.extend(part.failures)
    total.failures.sort()
    return total
