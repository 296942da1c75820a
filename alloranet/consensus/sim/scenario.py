"""Seeded fault schedules: who holds which stake, who is twinned, and what goes wrong when.

Why a plain data object generated from one seed: a failing schedule is replayed exactly from
its seed (``python -m alloranet.consensus.sim --seed S --schedules 1``), and the object printed
with the failure says what the schedule did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Liveness bound (simulated seconds): after the last fault heals, every honest node must
#: commit at least LIVENESS_HEIGHTS more heights within this time.
LIVENESS_BOUND_S = 15.0
LIVENESS_HEIGHTS = 2


@dataclass(frozen=True)
class Partition:
    start: float
    end: float
    groups: tuple[frozenset[int], ...]


@dataclass(frozen=True)
class Crash:
    time: float
    node: int
    #: "now": killed between events; "failpoint": at the k-th next write/fsync/rename/send
    mode: str
    k: int
    restart_after: float


@dataclass(frozen=True)
class Scenario:
    seed: int
    powers: tuple[int, ...]  # genesis powers of validator keys 0..n-1 (0 = joins later)
    #: node i (i >= n_keys) runs key twins[i - n_keys]
    twins: tuple[int, ...]
    #: keys that withhold their votes (Byzantine): they sign but never send, from this time
    withholders: tuple[int, ...]
    drop: float
    max_delay: float
    partitions: tuple[Partition, ...]
    crashes: tuple[Crash, ...]
    skews: tuple[float, ...]  # per node timer-rate factor
    #: height -> ((key index, new power), ...) proposed in that block's value
    updates: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]
    heal_time: float
    real_crypto: bool

    @property
    def n_keys(self) -> int:
        return len(self.powers)

    @property
    def n_nodes(self) -> int:
        return len(self.powers) + len(self.twins)

    def key_of(self, node: int) -> int:
        return node if node < self.n_keys else self.twins[node - self.n_keys]

    def is_honest_node(self, node: int) -> bool:
        k = self.key_of(node)
        return k not in self.twins and k not in self.withholders

    def describe(self) -> str:
        return (
            f"seed={self.seed} powers={self.powers} twins={self.twins} "
            f"withholders={self.withholders} drop={self.drop:.2f} max_delay={self.max_delay:.3f} "
            f"partitions={len(self.partitions)} crashes={len(self.crashes)} "
            f"updates={self.updates} heal={self.heal_time:.2f} real_crypto={self.real_crypto}"
        )


def _random_groups(rng: random.Random, nodes: list[int]) -> tuple[frozenset[int], ...]:
    k = rng.choice((2, 2, 3))
    groups: list[set[int]] = [set() for _ in range(k)]
    for n in nodes:
        groups[rng.randrange(k)].add(n)
    return tuple(frozenset(g) for g in groups if g)


def generate_scenario(seed: int, byzantine_over: bool = False) -> Scenario:
    """A schedule with 4-7 validators and unequal stakes.

    Normal schedules keep Byzantine power (twinned plus withholding keys) below 1/3 so every
    checker must pass. With ``byzantine_over`` one key holding more than 1/3 is twinned and the
    twins are split across a partition: the self-test expects the checkers to fire.
    """
    rng = random.Random(seed)
    n = rng.randint(4, 7)
    powers = [rng.randint(1, 10) for _ in range(n)]
    twins: list[int] = []
    withholders: list[int] = []
    if byzantine_over:
        total_others = sum(powers[1:])
        powers[0] = total_others + rng.randint(0, total_others)  # >= 1/2 of the total
        twins = [0]
    else:
        order = list(range(n))
        rng.shuffle(order)
        total = sum(powers)
        byz = 0
        for k in order:
            if rng.random() < 0.35 and 3 * (byz + powers[k]) < total:
                byz += powers[k]
                (twins if rng.random() < 0.6 else withholders).append(k)
    # One key may join later (power 0 at genesis) through a validator-set update.
    updates: dict[int, list[tuple[int, int]]] = {}
    joiner = None
    if not byzantine_over and rng.random() < 0.3:
        joiner = n
        powers.append(0)
        updates.setdefault(rng.randint(1, 4), []).append((joiner, rng.randint(1, 5)))
    if not byzantine_over and rng.random() < 0.4:
        honest = [k for k in range(n) if k not in twins and k not in withholders]
        k = rng.choice(honest)
        new_power = rng.randint(1, 12)
        byz = sum(powers[b] for b in (*twins, *withholders))
        total_after = sum(powers) - powers[k] + new_power  # before any joiner: the worst case
        if 3 * byz < total_after:  # keep Byzantine power below 1/3 after the change
            updates.setdefault(rng.randint(1, 5), []).append((k, new_power))
    n_nodes = len(powers) + len(twins)
    nodes = list(range(n_nodes))
    heal = rng.uniform(0.3, 1.5)
    partitions: list[Partition] = []
    t = 0.0
    while rng.random() < 0.7 and t < heal:
        start = t + rng.uniform(0, 0.3)
        end = min(heal, start + rng.uniform(0.1, 0.8))
        if byzantine_over:
            twin_node = len(powers)
            others = [x for x in nodes if x not in (0, twin_node)]
            rng.shuffle(others)
            cut = rng.randint(1, len(others) - 1)
            groups: tuple[frozenset[int], ...] = (
                frozenset([0, *others[:cut]]),
                frozenset([twin_node, *others[cut:]]),
            )
        else:
            groups = _random_groups(rng, nodes)
        partitions.append(Partition(start, end, groups))
        t = end
    if byzantine_over and not partitions:
        twin_node = len(powers)
        partitions.append(
            Partition(0.0, heal, (frozenset([0, 1]), frozenset([twin_node, *range(2, n)])))
        )
    crashes: list[Crash] = []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        node = rng.randrange(n_nodes)
        at = rng.uniform(0, heal * 0.9)
        restart = rng.uniform(0.01, max(0.02, heal - at))
        mode = "failpoint" if rng.random() < 0.6 else "now"
        crashes.append(Crash(at, node, mode, rng.randint(1, 12), restart))
    return Scenario(
        seed=seed,
        powers=tuple(powers),
        twins=tuple(twins),
        withholders=tuple(withholders),
        drop=rng.choice((0.0, 0.0, 0.05, 0.2, 0.4)),
        max_delay=rng.choice((0.002, 0.01, 0.03, 0.08)),
        partitions=tuple(partitions),
        crashes=tuple(crashes),
        skews=tuple(rng.uniform(0.7, 1.4) for _ in nodes),
        updates=tuple(sorted((h, tuple(u)) for h, u in updates.items())),
        heal_time=heal,
        real_crypto=rng.random() < 0.15,
    )
