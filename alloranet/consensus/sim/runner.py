"""The simulation executor: a seeded fake network and manual clock around real replicas.

Every replica is the production :class:`~alloranet.consensus.replica.Replica` (core + WAL +
signer guard) on a :class:`MemoryDisk` whose crash keeps only fsynced bytes plus a random torn
tail. The network drops, delays (and so reorders) and partitions messages; timers run at a
per-node skewed rate. Checkers run on every schedule (see :mod:`.checkers`).
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from alloranet.codec import decode, encode
from alloranet.consensus import timeouts as T
from alloranet.consensus.core import TimeoutEvent
from alloranet.consensus.errors import CrashError
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.replica import Replica
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.sim.scenario import (
    LIVENESS_BOUND_S,
    LIVENESS_HEIGHTS,
    Scenario,
    generate_scenario,
)
from alloranet.consensus.storage import Disk, FailPoints, MemoryDisk
from alloranet.consensus.types import (
    Commit,
    Decision,
    FakeKey,
    KeySigner,
    Proposal,
    Verifier,
    Vote,
    decode_message,
    fake_verify,
    real_verify,
)
from alloranet.consensus.validators import (
    ValidatorSet,
    compute_genesis_sets,
    compute_next_sets,
)
from alloranet.errors import AlloraError

CHAIN_ID = "alloranet-sim"
REBROADCAST_S = 0.15
_HEALED_DELAY = 0.005
_KEY_CACHE: dict[tuple[int, bool], KeySigner] = {}


def get_sim_key(index: int, real: bool) -> KeySigner:
    """Validator key ``index``: Ed25519 (real) or a fast keyed-hash fake."""
    cached = _KEY_CACHE.get((index, real))
    if cached is None:
        if real:
            from alloranet.crypto import PrivateKey

            cached = PrivateKey.from_label(f"sim-validator-{index}").signer()
        else:
            cached = FakeKey(hashlib.sha256(b"sim-validator-%d" % index).digest())
        _KEY_CACHE[(index, real)] = cached
    return cached


class CrashableDisk(Disk, Protocol):
    def crash(self, rng: random.Random) -> None: ...


def memory_disk(node: int, failpoints: FailPoints) -> CrashableDisk:
    return MemoryDisk(failpoints)


class SimApp:
    """A toy chain: values carry (height, round, proposer node, validator updates).

    Its block store and validator sets are durable (they survive crashes), like the one-SQLite-
    transaction commit the node does.
    """

    def __init__(self, sim: Simulation, node: int) -> None:
        self.sim = sim
        self.node = node
        vals, nxt = compute_genesis_sets(sim.genesis)
        self.sets: dict[int, ValidatorSet] = {1: vals}
        self.next_set = nxt
        self.blocks: dict[int, Decision] = {}
        self.last_height = 0

    def get_last_height(self) -> int:
        return self.last_height

    def get_validators(self, height: int) -> ValidatorSet:
        return self.sets[height]

    def propose_value(self, height: int, round_: int) -> bytes:
        ups = self.sim.updates.get(height, ())
        return encode((height, round_, self.node, tuple((k, p) for k, p in ups)))

    def is_valid_value(self, height: int, value: bytes) -> bool:
        return self.sim.decode_value(height, value) is not None

    def commit_value(self, height: int, value: bytes, commit: Commit) -> None:
        decoded = self.sim.decode_value(height, value)
        assert decoded is not None, "committed an invalid value"
        if height != self.last_height + 1:
            raise AssertionError(f"commit of height {height} after {self.last_height}")
        self.blocks[height] = Decision(value, commit)
        self.last_height = height
        cur, self.next_set = compute_next_sets(self.next_set, decoded)
        self.sets[height + 1] = cur
        self.sim.on_commit(self.node, height, value, commit)

    def get_decision(self, height: int) -> Decision | None:
        return self.blocks.get(height)


class SimNode:
    """One node: its durable parts (disk, app) and the current incarnation's replica."""

    def __init__(self, sim: Simulation, node: int) -> None:
        self.sim = sim
        self.node = node
        self.key_index = sim.scenario.key_of(node)
        self.honest = sim.scenario.is_honest_node(node)
        self.failpoints = FailPoints()
        self.disk: CrashableDisk = sim.disk_factory(node, self.failpoints)
        self.restart_after: float | None = None
        self.app = SimApp(sim, node)
        self.incarnation = 0
        self.refusals = 0
        self.alive = False
        self.replica: Replica | None = None
        self.skew = sim.scenario.skews[node]

    def boot(self) -> None:
        from alloranet.consensus.wal import WAL

        self.incarnation += 1
        self.alive = True
        key = get_sim_key(self.key_index, self.sim.scenario.real_crypto)
        signer = SignerGuard(_TimedKey(key, self.sim), self.disk, CHAIN_ID)
        self.replica = Replica(
            CHAIN_ID,
            self.app,
            WAL(self.disk),
            _Outbox(self.sim, self, self.incarnation),
            T.SIMULATION,
            signer,
            self.sim.verifier,
            self.failpoints,
        )
        self.sim.guarded(self, self.replica.start)
        if self.alive:
            self.sim.push(REBROADCAST_S * self.skew, ("tick", self.node, self.incarnation))


class _TimedKey:
    """Wraps a key to time signing (the benchmark splits crypto from the rest)."""

    def __init__(self, key: KeySigner, sim: Simulation) -> None:
        self.key = key
        self.sim = sim

    @property
    def public_key(self) -> bytes:
        return self.key.public_key

    def sign(self, message: bytes) -> bytes:
        t0 = time.process_time()
        try:
            return self.key.sign(message)
        finally:
            self.sim.crypto_seconds += time.process_time() - t0


class _Outbox:
    def __init__(self, sim: Simulation, node: SimNode, incarnation: int) -> None:
        self.sim = sim
        self.node = node
        self.incarnation = incarnation

    def broadcast(self, data: bytes) -> None:
        self.sim.on_broadcast(self.node, data)

    def send(self, peer: str, data: bytes) -> None:
        self.sim.send(self.node.node, int(peer), data)

    def schedule(self, delay: float, event: TimeoutEvent) -> None:
        self.sim.push(delay * self.node.skew, ("timer", self.node.node, self.incarnation, event))

    def penalise(self, peer: str, error: AlloraError) -> None:
        self.sim.penalties.append((self.node.node, int(peer), str(error)))

    def report_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        if self.node.honest:
            self.sim.evidence_keys.add(evidence.key())


@dataclass
class SimResult:
    seed: int
    heights: int  # the lowest final height among honest nodes
    violations: list[str] = field(default_factory=list)
    scenario: Scenario | None = None
    events: int = 0
    crypto_seconds: float = 0.0
    core_seconds: float = 0.0


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        disk_factory: Callable[[int, FailPoints], CrashableDisk] = memory_disk,
    ) -> None:
        self.scenario = scenario
        self.disk_factory = disk_factory
        #: heights every honest node must add after the heal (benchmarks raise it)
        self.liveness_heights = LIVENESS_HEIGHTS
        #: node -> failpoint count when it committed each height (the crash-point sweep)
        self.failpoint_counts: dict[int, dict[int, int]] = {}
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self.now = 0.0
        self._queue: list[tuple[float, int, tuple[Any, ...]]] = []
        self._seq = 0
        self.crypto_seconds = 0.0
        real = scenario.real_crypto
        self.keys = [get_sim_key(i, real).public_key for i in range(scenario.n_keys)]
        self.genesis = [(self.keys[i], p) for i, p in enumerate(scenario.powers) if p > 0]
        self.updates = {h: tuple((self.keys[k], p) for k, p in ups) for h, ups in scenario.updates}
        base: Verifier = real_verify if real else fake_verify

        def timed_verify(pub: bytes, msg: bytes, sig: bytes) -> bool:
            t0 = time.process_time()
            try:
                return base(pub, msg, sig)
            finally:
                self.crypto_seconds += time.process_time() - t0

        self.verifier: Verifier = timed_verify
        self.nodes = [SimNode(self, i) for i in range(scenario.n_nodes)]
        self.penalties: list[tuple[int, int, str]] = []
        self.evidence_keys: set[tuple[bytes, int, int, int]] = set()
        self.violations: list[str] = []
        #: honest key -> (height, round, step) -> sign bytes id seen leaving
        self.signed: dict[tuple[bytes, int, int, int], bytes] = {}
        #: (node, incarnation, key, h, r, type) -> block ids delivered
        self.observed: dict[tuple[int, int, bytes, int, int, int], set[bytes]] = {}
        self.commits: dict[int, dict[int, bytes]] = {}
        self.height_at_heal: dict[int, int] = {}
        self.events = 0

    # --- plumbing ------------------------------------------------------------------------

    def push(self, delay: float, item: tuple[Any, ...]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, item))

    def decode_value(self, height: int, value: bytes) -> tuple[tuple[bytes, int], ...] | None:
        try:
            t = decode(value)
            h, _r, node, ups = t
            if h != height or not (0 <= node < self.scenario.n_nodes):
                return None
            return tuple((pk, p) for pk, p in ups)
        except (AlloraError, ValueError, TypeError):
            return None

    def connected(self, a: int, b: int) -> bool:
        for p in self.scenario.partitions:
            if p.start <= self.now < p.end:
                return any(a in g and b in g for g in p.groups)
        return True

    def faulty_now(self) -> bool:
        return self.now < self.scenario.heal_time

    def guarded(self, node: SimNode, fn: Callable[[], None]) -> None:
        """Run ``fn`` on ``node``; a fail-point crash kills the node there."""
        try:
            fn()
        except CrashError:
            self.crash(node)

    def crash(self, node: SimNode) -> None:
        if not node.alive:
            return
        node.alive = False
        if node.replica is not None:
            node.refusals += node.replica.refusals
        node.replica = None
        node.failpoints.crash_at = None
        node.disk.crash(self.rng)
        if node.restart_after is not None:
            self.push(node.restart_after, ("restart", node.node))
            node.restart_after = None

    # --- network -------------------------------------------------------------------------

    def on_broadcast(self, node: SimNode, data: bytes) -> None:
        msg = decode_message(data)
        own_key = self.keys[node.key_index]
        if isinstance(msg, Vote) and msg.validator == own_key:
            self._check_double_sign(node, msg)
            if node.key_index in self.scenario.withholders:
                return  # a withholding validator keeps its votes to itself
        elif isinstance(msg, Proposal) and msg.proposer == own_key:
            self._check_double_sign(node, msg)
        for other in self.nodes:
            if other.node != node.node:
                self.send(node.node, other.node, data)

    def send(self, src: int, dst: int, data: bytes) -> None:
        if self.faulty_now():
            if self.rng.random() < self.scenario.drop:
                return
            delay = self.rng.uniform(0.0005, self.scenario.max_delay)
        else:
            delay = self.rng.uniform(0.0005, _HEALED_DELAY)
        self.push(delay, ("deliver", src, dst, data))

    def _check_double_sign(self, node: SimNode, msg: Vote | Proposal) -> None:
        if not node.honest:
            return
        if isinstance(msg, Vote):
            key = (msg.validator, msg.height, msg.round, msg.vote_type)
            ident = msg.sign_bytes(CHAIN_ID)
        else:
            key = (msg.proposer, msg.height, msg.round, 0x20)
            ident = msg.sign_bytes(CHAIN_ID)
        old = self.signed.setdefault(key, ident)
        if old != ident:
            self.violations.append(
                f"double sign by honest node {node.node} at (h, r, step) = {key[1:]}"
            )

    def _deliver(self, src: int, dst: int, data: bytes) -> None:
        node = self.nodes[dst]
        if not node.alive or node.replica is None or not self.connected(src, dst):
            return
        replica = node.replica
        if node.honest:
            try:
                msg = decode_message(data)
            except AlloraError:
                msg = None
            if isinstance(msg, Vote) and msg.height == replica.height:
                k = (dst, node.incarnation, msg.validator, msg.height, msg.round, msg.vote_type)
                self.observed.setdefault(k, set()).add(msg.block_id)
        self.guarded(node, lambda: replica.on_message(data, str(src)))

    def on_commit(self, node: int, height: int, value: bytes, commit: Commit) -> None:
        self.commits.setdefault(node, {})[height] = value
        self.failpoint_counts.setdefault(node, {})[height] = self.nodes[node].failpoints.count

    # --- run -----------------------------------------------------------------------------

    def run(self) -> SimResult:
        sc = self.scenario
        for node in self.nodes:
            self.guarded(node, node.boot)
        for c in sc.crashes:
            self.push(c.time, ("crash", c))
        self.push(sc.heal_time, ("heal",))
        deadline = sc.heal_time + LIVENESS_BOUND_S
        healed = False
        while self._queue:
            t, _, item = heapq.heappop(self._queue)
            self.now = t
            if t > deadline:
                break
            self.events += 1
            kind = item[0]
            if kind == "deliver":
                self._deliver(item[1], item[2], item[3])
            elif kind == "timer" or kind == "tick":
                node = self.nodes[item[1]]
                if node.alive and node.incarnation == item[2] and node.replica is not None:
                    r = node.replica
                    if kind == "timer":
                        self.guarded(node, lambda r=r, e=item[3]: r.on_timeout(e))  # type: ignore[misc]
                    else:
                        self.guarded(node, r.rebroadcast)
                        self.push(REBROADCAST_S * node.skew, item)
            elif kind == "crash":
                c = item[1]
                node = self.nodes[c.node]
                if node.alive:
                    node.restart_after = c.restart_after  # counted from the actual crash
                    if c.mode == "now":
                        self.crash(node)
                    else:
                        node.failpoints.crash_at = node.failpoints.count + c.k
            elif kind == "restart":
                node = self.nodes[item[1]]
                node.failpoints.crash_at = None
                if not node.alive:
                    self.guarded(node, node.boot)
            elif kind == "heal":
                healed = True
                for node in self.nodes:
                    node.failpoints.crash_at = None
                    node.restart_after = None
                    if not node.alive:
                        self.guarded(node, node.boot)
                self.height_at_heal = {n.node: n.app.last_height for n in self.nodes if n.honest}
            if healed and self._live_enough():
                break
        return self._finish()

    def _target(self) -> int:
        return max(self.height_at_heal.values(), default=0) + self.liveness_heights

    def _live_enough(self) -> bool:
        target = self._target()
        return all(n.app.last_height >= target for n in self.nodes if n.honest)

    # --- checkers ----------------------------------------------------------------------

    def _finish(self) -> SimResult:
        from alloranet.consensus.sim.checkers import run_checkers

        run_checkers(self)
        honest = [n for n in self.nodes if n.honest]
        core = sum(n.replica.step_seconds for n in self.nodes if n.replica is not None)
        return SimResult(
            self.scenario.seed,
            min(n.app.last_height for n in honest) if honest else 0,
            self.violations,
            self.scenario,
            self.events,
            self.crypto_seconds,
            core,
        )


def run_schedule(seed: int, byzantine_over: bool = False) -> SimResult:
    """Generate the schedule of ``seed`` and run it."""
    return Simulation(generate_scenario(seed, byzantine_over)).run()


def run_schedules(count: int, seed: int, byzantine_over: bool = False) -> list[SimResult]:
    return [run_schedule(seed + i, byzantine_over) for i in range(count)]
