"""Seeded random chaos manifests: the same seed always yields the same manifest.

Why the run's seed is the manifest's seed: a failing random run is replayed with
``alloranet testnet chaos --random --seed S --runs 1`` (the report names S), which regenerates
the identical network (keys derive from the seed) and the identical schedule.

Schedules stay safe for liveness by construction: every partition leaves one group with more
than two thirds of the stake *or* is short (a no-quorum split heals on its own timer), at most
one validator is down at a time, and every fault with a duration is reverted before the next.
"""

from __future__ import annotations

import random

from testnet.chaos.schema import ChaosManifest, NetworkSpec, Perturbation

#: Fault kinds the generator draws from (join/leave and twins need hand-written manifests).
RANDOM_KINDS = ("partition", "partition_no_quorum", "cut_link", "kill", "pause", "truncate_wal")


def generate_manifest(seed: int, validators: int = 4, faults: int = 2) -> ChaosManifest:
    rng = random.Random(seed)
    spec = NetworkSpec(validators=validators, seed=seed, load_tps=rng.choice((0.0, 2.0, 4.0)))
    schedule: list[Perturbation] = []
    height = rng.randint(3, 5)
    for _ in range(faults):
        kind = rng.choice(RANDOM_KINDS)
        nodes = list(range(validators))
        rng.shuffle(nodes)
        duration = round(rng.uniform(2.0, 8.0), 1)
        if kind == "partition":
            minority = max(1, (validators - 1) // 3)
            groups = (tuple(sorted(nodes[:minority])), tuple(sorted(nodes[minority:])))
            schedule.append(Perturbation("partition", groups=groups, at_height=height,
                                         duration_s=duration))  # fmt: skip
        elif kind == "partition_no_quorum":
            half = validators // 2
            groups = (tuple(sorted(nodes[:half])), tuple(sorted(nodes[half:])))
            schedule.append(Perturbation("partition", groups=groups, at_height=height,
                                         duration_s=min(duration, 5.0)))  # fmt: skip
        elif kind == "cut_link":
            schedule.append(Perturbation("cut_link", nodes=(nodes[0], nodes[1]),
                                         at_height=height, duration_s=duration))  # fmt: skip
        elif kind == "pause":
            target: int | str = "proposer" if rng.random() < 0.5 else nodes[0]
            schedule.append(Perturbation("pause", nodes=(target,), at_height=height,
                                         duration_s=duration))  # fmt: skip
        elif kind == "kill":
            schedule.append(Perturbation("kill", nodes=(nodes[0],), at_height=height,
                                         duration_s=duration))  # fmt: skip
        else:
            schedule.append(Perturbation("truncate_wal", nodes=(nodes[0],), at_height=height,
                                         wal_bytes=rng.randint(1, 400)))  # fmt: skip
        height += rng.randint(2, 4)
    return ChaosManifest(f"random-{seed}", spec, tuple(schedule))
