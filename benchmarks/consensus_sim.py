"""Simulated consensus throughput with real Ed25519, and where a height's CPU goes.

Runs N validators (4 and 7, unequal stakes) in the in-process simulator with no faults, real
Ed25519 signatures, the production replica (core + WAL on a memory disk + signer guard), and
reports heights per second of wall time plus the CPU per height split into signing/verifying,
the pure core's ``step``, and the rest (shell, codec, simulated network). The reference is the
crypto itself: ``core / crypto`` is the ratio printed. Target: core under 20% of a height's CPU.

Usage: python benchmarks/consensus_sim.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

from alloranet.consensus.sim.runner import Simulation
from alloranet.consensus.sim.scenario import Scenario

POWERS = {4: (5, 3, 2, 1), 7: (9, 7, 5, 4, 3, 2, 1)}


def measure(n: int, heights: int) -> dict[str, float]:
    sc = Scenario(
        seed=n,
        powers=POWERS[n],
        twins=(),
        withholders=(),
        drop=0.0,
        max_delay=0.002,
        partitions=(),
        crashes=(),
        skews=(1.0,) * n,
        updates=(),
        heal_time=0.0,
        real_crypto=True,
    )
    sim = Simulation(sc)
    sim.liveness_heights = heights
    w0, c0 = time.perf_counter(), time.process_time()
    result = sim.run()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if result.violations:
        raise SystemExit(f"violations in the benchmark run: {result.violations}")
    done = result.heights
    crypto, core = result.crypto_seconds, result.core_seconds
    return {
        "heights": done,
        "heights_per_s": done / wall,
        "cpu_ms_per_height": 1000 * cpu / done,
        "crypto_ms_per_height": 1000 * crypto / done,
        "core_ms_per_height": 1000 * core / done,
        "rest_ms_per_height": 1000 * (cpu - crypto - core) / done,
        "core_share": core / cpu,
        "core_vs_crypto": core / crypto if crypto else 0.0,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer heights (a smoke run)")
    args = p.parse_args()
    heights = 20 if args.quick else 200
    rows = {n: measure(n, heights) for n in (4, 7)}
    print(
        f"{'validators':>10} {'heights':>8} {'heights/s':>10} {'cpu ms/h':>9} "
        f"{'crypto':>8} {'core':>8} {'rest':>8} {'core share':>10} {'core/crypto':>11}"
    )
    for n, r in rows.items():
        print(
            f"{n:>10} {r['heights']:>8.0f} {r['heights_per_s']:>10.1f} "
            f"{r['cpu_ms_per_height']:>9.2f} {r['crypto_ms_per_height']:>8.2f} "
            f"{r['core_ms_per_height']:>8.2f} {r['rest_ms_per_height']:>8.2f} "
            f"{100 * r['core_share']:>9.1f}% {r['core_vs_crypto']:>11.2f}"
        )
    total_cpu = sum(r["cpu_ms_per_height"] * r["heights"] for r in rows.values())
    total_core = sum(r["core_ms_per_height"] * r["heights"] for r in rows.values())
    print(
        json.dumps(
            {
                "heights_per_s_4": round(rows[4]["heights_per_s"], 2),
                "heights_per_s_7": round(rows[7]["heights_per_s"], 2),
                "core_cpu_share": round(total_core / total_cpu, 4),
                "core_cpu_share_4": round(rows[4]["core_share"], 4),
                "core_cpu_share_7": round(rows[7]["core_share"], 4),
                "crypto_ms_per_height_4": round(rows[4]["crypto_ms_per_height"], 3),
                "crypto_ms_per_height_7": round(rows[7]["crypto_ms_per_height"], 3),
                "core_vs_crypto_4": round(rows[4]["core_vs_crypto"], 3),
                "core_vs_crypto_7": round(rows[7]["core_vs_crypto"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
