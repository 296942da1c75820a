"""The chaos report: one JSON document for machines and a short summary for people.

Keys: ``runs`` (every run: name, seed, faults with their measurements, heights committed,
violations), ``violations`` (all of them, each tagged with its run and seed), ``seeds``,
``faults_injected``, ``heights_committed``, ``recovery_s_p50`` / ``recovery_s_max`` (over every
perturbed node's catch-up time), ``first_commit_s_max``, ``votes_again_s_p50`` /
``votes_again_s_max`` (from the restarted node's API answering, the bounded figure),
``votes_again_from_spawn_s_p50`` / ``_max`` (from the process spawn, start-up included),
``synthesis_compared`` and ``bounds``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from testnet.chaos import runner
from testnet.chaos.runner import RunResult


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every reported value was measured)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1], 3)


def _measurements(results: list[RunResult], key: str) -> list[float]:
    return [f.measurements[key] for r in results for f in r.faults if key in f.measurements]


def build_report(results: list[RunResult], factor: float = 1.0) -> dict[str, Any]:
    recovery = [v for r in results for v in r.recovery_s]
    first_commit = _measurements(results, "first_commit_s")
    votes = _measurements(results, "votes_again_s")
    votes_spawn = _measurements(results, "votes_again_from_spawn_s")
    return {
        "runs": [r.to_dict() for r in results],
        "violations": [
            {"run": r.name, "seed": r.seed, **v.to_dict()} for r in results for v in r.violations
        ],
        "seeds": [r.seed for r in results],
        "faults_injected": sum(len(r.faults) for r in results),
        "heights_committed": {r.name: max(r.heights.values(), default=0) for r in results},
        "recovery_s_p50": _percentile(recovery, 0.5),
        "recovery_s_max": _percentile(recovery, 1.0),
        "first_commit_s_max": _percentile(first_commit, 1.0),
        "votes_again_s_p50": _percentile(votes, 0.5),
        "votes_again_s_max": _percentile(votes, 1.0),
        "votes_again_from_spawn_s_p50": _percentile(votes_spawn, 0.5),
        "votes_again_from_spawn_s_max": _percentile(votes_spawn, 1.0),
        "synthesis_compared": sum(r.synthesis_compared for r in results),
        "timeout_factor": factor,
        "bounds": {
            "recovery_s": runner.RECOVERY_BOUND_S * factor,
            "first_commit_s": runner.FIRST_COMMIT_BOUND_S * factor,
            "votes_again_s": runner.VOTE_AGAIN_BOUND_S * factor,
            "liveness_s": runner.LIVENESS_BOUND_S * factor,
        },
    }


def render_summary(report: dict[str, Any]) -> str:
    lines = ["chaos summary", "-------------"]
    for run in report["runs"]:
        mark = "ok  " if run["ok"] else "FAIL"
        lines.append(
            f"{mark} {run['name']:<32} seed {run['seed']:<6} faults {len(run['faults']):<2} "
            f"height {run['height_committed']:<4} txs {run['txs_included']}/"
            f"{run['txs_acknowledged']}  {run['duration_s']:.0f}s"
        )
    lines.append(
        f"recovery p50 {report['recovery_s_p50']}s  max {report['recovery_s_max']}s  "
        f"(bound {report['bounds']['recovery_s']:.0f}s); first commit after heal max "
        f"{report['first_commit_s_max']}s; votes again max {report['votes_again_s_max']}s "
        f"(from spawn {report['votes_again_from_spawn_s_max']}s); "
        f"{report['synthesis_compared']} syntheses compared"
    )
    if report["violations"]:
        lines.append(f"{len(report['violations'])} violation(s):")
        for v in report["violations"]:
            lines.append(f"  [{v['run']} seed {v['seed']}] {v['check']}: {v['message'][:300]}")
    else:
        lines.append("no violations")
    return "\n".join(lines)


def save_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
