"""One chaos run: start the network, drive load, play the schedule, measure recovery, check.

Why measure inside the run: recovery times are only meaningful against the moment a fault was
lifted, which only the runner knows. Bounds (multiplied by ``ALLORANET_TIMEOUT_FACTOR``):

- a partitioned or paused node is back at the network's height within ``RECOVERY_BOUND_S``
  of the heal (issue 7 asks for 20 s, aiming for 5 s);
- after a no-quorum partition heals the first commit comes within ``FIRST_COMMIT_BOUND_S``;
- a killed validator votes again (its precommit in a block's last commit) within
  ``VOTE_AGAIN_BOUND_S`` of its restart, counted from the moment its API answers (process
  start-up of a Python node is reported separately, as ``spawn_to_ready_s``);
- every honest node commits ``settle_blocks`` more blocks within ``LIVENESS_BOUND_S`` of the
  last heal.

A bound exceeded is a violation, like a failed safety check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alloranet.chain.msgs import MsgCreateValidator, MsgUndelegate
from alloranet.chain.tx import sign_tx
from alloranet.codec import sha256
from testnet.chaos import checks
from testnet.chaos.homes import JOINER_STAKE, LOAD_ACCOUNTS, faucet_path, load_account_key
from testnet.chaos.inference import InferenceLoad
from testnet.chaos.load import LoadDriver
from testnet.chaos.network import ChaosError, ChaosNetwork
from testnet.chaos.schema import ChaosManifest, Perturbation
from testnet.client import ApiError, post_json, try_get_json

RECOVERY_BOUND_S = 20.0
FIRST_COMMIT_BOUND_S = 5.0
VOTE_AGAIN_BOUND_S = 3.0
LIVENESS_BOUND_S = 20.0
START_TIMEOUT_S = 90.0


@dataclass
class FaultRecord:
    kind: str
    description: str
    height: int
    nodes: list[str]
    measurements: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    name: str
    seed: int
    manifest: dict[str, Any]
    faults: list[FaultRecord] = field(default_factory=list)
    violations: list[checks.Violation] = field(default_factory=list)
    heights: dict[str, int] = field(default_factory=dict)
    recovery_s: list[float] = field(default_factory=list)
    txs_acknowledged: int = 0
    txs_included: int = 0
    #: pieces of double-sign evidence in the honest nodes' blocks
    evidence_committed: int = 0
    #: (topic, nonce) network inferences compared across at least two honest nodes
    synthesis_compared: int = 0
    #: the inference load's receipts: worker payloads and reputer losses included in blocks
    inferences_included: int = 0
    losses_included: int = 0
    inference_error: str | None = None
    duration_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.violations and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seed": self.seed,
            "ok": self.ok,
            "error": self.error,
            "duration_s": round(self.duration_s, 2),
            "heights": self.heights,
            "height_committed": max(self.heights.values(), default=0),
            "faults": [
                {
                    "kind": f.kind,
                    "description": f.description,
                    "height": f.height,
                    "nodes": f.nodes,
                    **{k: round(v, 3) for k, v in f.measurements.items()},
                }
                for f in self.faults
            ],
            "recovery_s": [round(r, 3) for r in self.recovery_s],
            "txs_acknowledged": self.txs_acknowledged,
            "txs_included": self.txs_included,
            "evidence_committed": self.evidence_committed,
            "synthesis_compared": self.synthesis_compared,
            "inferences_included": self.inferences_included,
            "losses_included": self.losses_included,
            "inference_error": self.inference_error,
            "violations": [v.to_dict() for v in self.violations],
            "manifest": self.manifest,
        }


class ChaosRun:
    """Plays one manifest on a fresh :class:`ChaosNetwork` under ``root``."""

    def __init__(
        self, manifest: ChaosManifest, root: Path, log: Callable[[str], None] = lambda _: None
    ) -> None:
        self.manifest = manifest
        self.net = ChaosNetwork(root, manifest.network)
        self.log = log
        self.result = RunResult(manifest.name, manifest.network.seed, manifest.to_dict())
        self.load: LoadDriver | None = None
        self.inference: InferenceLoad | None = None
        self.down: set[str] = set()  # processes this schedule has stopped or not started yet
        self.byzantine = {f"node{i}" for i in manifest.network.twins} | {
            f"node{i}-twin" for i in manifest.network.twins
        }
        # Equivocators are *not* declared: they are the broken nodes the checks must catch.

    # --- helpers --------------------------------------------------------------------------

    def violation(self, check: str, message: str) -> None:
        self.result.violations.append(checks.Violation(check, message))

    def honest(self) -> list[str]:
        return [n for n in self.net.names if n not in self.byzantine]

    def live(self) -> list[str]:
        return [n for n in self.net.names if n not in self.down and n not in self.net.paused]

    def live_honest(self) -> list[str]:
        return [n for n in self.live() if n not in self.byzantine]

    def network_height(self) -> int:
        return max((self.net.height(n) for n in self.live()), default=0)

    def bound(self, seconds: float) -> float:
        return seconds * self.net.factor

    def _names(self, p: Perturbation) -> list[str]:
        out = []
        for node in p.nodes:
            name = self._proposer() if node == "proposer" else self.net.name_of(int(node))
            out.append(f"{name}-twin" if p.twin else name)
        return out

    def _proposer(self) -> str:
        """The node whose validator proposed the latest block (it proposes again in turn)."""
        for name in self.live_honest():
            status = self.net.status(name)
            if status is None:
                continue
            block = try_get_json(f"{self.net.api(name)}/v1/blocks/latest")
            if not isinstance(block, dict):
                continue
            for candidate in self.net.names:
                if self.net.homes[candidate].validator_key.address == block["proposer"]:
                    return candidate.removesuffix("-twin")
        raise ChaosError("could not find the latest block's proposer")

    # --- the run --------------------------------------------------------------------------

    def execute(self) -> RunResult:
        started = time.monotonic()
        try:
            self._execute()
        except ChaosError as exc:
            self.result.error = str(exc)
            self.violation("run", f"the run could not complete: {exc}")
        finally:
            if self.load is not None:
                self.load.stop()
            self._stop_inference()
            self.net.stop_all()
            self.result.duration_s = time.monotonic() - started
            self.result.recovery_s = [
                f.measurements["recovery_s"]
                for f in self.result.faults
                if "recovery_s" in f.measurements
            ]
        return self.result

    def _execute(self) -> None:
        spec = self.manifest.network
        self.net.create()
        initial = self.net.initial()
        self.down = set(self.net.names) - set(initial)
        self.net.start_many(initial)
        self.net.wait_up(initial, START_TIMEOUT_S)
        self.net.wait_height(initial, 2, START_TIMEOUT_S)
        self.log(f"  network up: {len(initial)} processes at height {self.network_height()}")
        keys = [load_account_key(spec.seed, i) for i in range(LOAD_ACCOUNTS)]
        self.load = LoadDriver(
            self.net.chain_id,
            keys,
            lambda: [self.net.api(n) for n in self.live()],
            spec.load_tps,
            spec.seed,
        )
        self.load.start()
        apis = [self.net.api(n) for n in initial
                if n not in self.byzantine and self.net.homes[n].genesis_validator]  # fmt: skip
        self.inference = InferenceLoad(self.net.actors, faucet_path(self.net.root), apis, spec.seed)
        self.inference.start()
        t0 = time.monotonic()
        for perturbation in self.manifest.perturbations:
            self._wait_trigger(perturbation, t0)
            self._apply(perturbation)
        self._settle()
        self.load.stop()
        self._stop_inference()
        included_txs = checks.IncludedTxs(self.net)
        included = self.load.wait_included(
            lambda: included_txs.fetch(self.live_honest()),
            lambda: [self.net.api(n) for n in self.live()],
            self.bound(30.0),
        )
        self.result.txs_acknowledged = len(self.load.record.acknowledged)
        self.result.txs_included = len(set(self.load.record.acknowledged) & included)
        self._check()

    def _stop_inference(self) -> None:
        if self.inference is None:
            return
        self.inference.stop()
        record = self.inference.record
        self.result.inferences_included = record.count("inference")
        self.result.losses_included = record.count("losses")
        self.result.inference_error = record.error
        self.inference = None

    def _wait_trigger(self, p: Perturbation, t0: float) -> None:
        if p.at_height is not None:
            height = p.at_height
            self.net.wait_for(
                f"height {height} before {p.kind}",
                lambda: self.network_height() >= height,
                START_TIMEOUT_S,
            )
        elif p.at_s is not None:
            at = t0 + p.at_s
            self.net.wait_for(f"t+{p.at_s}s", lambda: time.monotonic() >= at, p.at_s + 5.0)

    def _hold(self, seconds: float) -> None:
        """A fault's duration is part of the experiment, so it is a timed hold by design."""
        time.sleep(seconds)

    def _apply(self, p: Perturbation) -> None:
        height = self.network_height()
        record = FaultRecord(p.kind, p.describe(), height, [])
        self.result.faults.append(record)
        self.log(f"  h{height}: {p.describe()}")
        if p.kind == "partition":
            record.nodes = [self.net.name_of(i) for g in p.groups for i in g]
            self.net.partition(p.groups)
            self._hold(p.duration_s)
            self._heal(record, record.nodes)
        elif p.kind == "cut_link":
            names = self._names(p)
            record.nodes = names
            self.net.cut_link(int(p.nodes[0]), int(p.nodes[1]))
            self._hold(p.duration_s)
            self._heal(record, names)
        elif p.kind == "pause":
            names = self._names(p)
            record.nodes = names
            for name in names:
                self.net.pause(name)
            self._hold(p.duration_s)
            before = self.network_height()
            healed = time.monotonic()
            for name in names:
                self.net.resume(name)
            self._measure_catch_up(record, names, before, healed)
        elif p.kind in ("kill", "truncate_wal"):
            names = self._names(p)
            record.nodes = names
            for name in names:
                self.net.kill(name)
                self.down.add(name)
            if p.kind == "truncate_wal":
                record.measurements["wal_bytes_cut"] = float(
                    sum(self.net.truncate_wal(n, p.wal_bytes) for n in names)
                )
            else:
                self._hold(p.duration_s)
            self._restart(record, names)
        elif p.kind == "start":
            names = self._names(p)
            record.nodes = names
            self._restart(record, names)
        elif p.kind == "join":
            record.nodes = self._names(p)
            for name in record.nodes:
                self._join(record, name)
        elif p.kind == "leave":
            record.nodes = self._names(p)
            for name in record.nodes:
                self._leave(record, name)

    def _heal(self, record: FaultRecord, names: list[str]) -> None:
        before = self.network_height()
        healed = time.monotonic()
        self.net.heal()
        self.net.wait_for(
            "a commit after the heal",
            lambda: self.network_height() > before,
            self.bound(LIVENESS_BOUND_S),
            interval=0.05,
        )
        first = time.monotonic() - healed
        record.measurements["first_commit_s"] = first
        self._measure_catch_up(record, names, before, healed)

    def _measure_catch_up(
        self, record: FaultRecord, names: list[str], target: int, since: float
    ) -> None:
        """Time until every named node is at least at ``target`` (the network's height when
        the fault was lifted); a violation beyond the recovery bound."""
        try:
            self.net.wait_for(
                f"{names} back at height {target}",
                lambda: all(self.net.height(n) >= target for n in names),
                self.bound(RECOVERY_BOUND_S),
                interval=0.05,
            )
            record.measurements["recovery_s"] = time.monotonic() - since
        except ChaosError as exc:
            record.measurements["recovery_s"] = time.monotonic() - since
            self.violation("recovery", f"{record.description}: {exc}")

    def _restart(self, record: FaultRecord, names: list[str]) -> None:
        target = self.network_height()
        spawned = time.monotonic()
        for name in names:
            self.net.start(name)
        self.net.wait_up(names, START_TIMEOUT_S)
        ready = time.monotonic()
        record.measurements["spawn_to_ready_s"] = ready - spawned
        for name in names:
            self.down.discard(name)
        self._measure_catch_up(record, names, target, ready)
        validators = [n for n in names if self.net.homes[n].genesis_validator]
        if validators and record.kind != "start":
            self._measure_votes(record, validators, ready, spawned)

    def _measure_votes(
        self, record: FaultRecord, names: list[str], since: float, spawned: float | None = None
    ) -> None:
        """Time from ``since`` (a monotonic instant: the restarted node's API answered) until
        the validator's precommit is in a committed block's last commit; also reported from
        ``spawned`` (the process start) as ``votes_again_from_spawn_s``.

        The precommit for height H travels in block H+1, whose header time is the proposer's
        wall clock right after H committed: that header time, not the moment this poller
        happened to see the block, dates the vote."""
        addresses = {self.net.homes[n].validator_key.address for n in names}
        since_wall = time.time() - (time.monotonic() - since)
        next_height = max(self.network_height(), 1)
        voted_at: dict[str, float] = {}

        def votes() -> bool:
            nonlocal next_height
            for name in self.live_honest():
                top = self.net.height(name)
                if top < 0:
                    continue
                while next_height <= top:
                    block = try_get_json(f"{self.net.api(name)}/v1/blocks/{next_height}")
                    if not isinstance(block, dict):
                        break
                    for address in addresses & set(block.get("last_commit_signers", [])):
                        voted_at.setdefault(address, int(block["time_ms"]) / 1000.0)
                    next_height += 1
                break
            return set(voted_at) >= addresses

        try:
            self.net.wait_for(f"{names} voting again", votes, self.bound(30.0), interval=0.1)
        except ChaosError as exc:
            self.violation("vote_again", f"{record.description}: {exc}")
            return
        elapsed = max(0.0, max(voted_at.values()) - since_wall)
        record.measurements["votes_again_s"] = elapsed
        if spawned is not None:
            spawned_wall = since_wall - (since - spawned)
            record.measurements["votes_again_from_spawn_s"] = max(voted_at.values()) - spawned_wall
        if elapsed > self.bound(VOTE_AGAIN_BOUND_S):
            self.violation(
                "vote_again",
                f"{record.description}: voted again {elapsed:.1f}s after its API came up "
                f"(bound {self.bound(VOTE_AGAIN_BOUND_S):.1f}s)",
            )

    def _submit(self, name: str, msgs: list[Any]) -> None:
        key = self.net.homes[name].validator_key
        api = self.net.api(self.live_honest()[0])
        account = try_get_json(f"{api}/v1/accounts/{key.address}")
        sequence = int(account["sequence"]) if isinstance(account, dict) else 0
        tx = sign_tx(key, self.net.chain_id, sequence, 0, msgs)
        try:
            post_json(f"{api}/v1/txs", {"tx": tx.hex()})
        except (ApiError, OSError) as exc:
            raise ChaosError(f"{name}: staking transaction refused: {exc}") from None
        tx_hash = sha256(tx).hex()
        self.net.wait_for(
            f"{name}'s staking tx included",
            lambda: try_get_json(f"{api}/v1/txs/{tx_hash}") is not None,
            self.bound(30.0),
        )

    def _join(self, record: FaultRecord, name: str) -> None:
        """A full node stakes, becomes a validator, and is restarted so it signs."""
        if name in self.down:
            self._restart(record, [name])
        key = self.net.homes[name].validator_key
        self._submit(name, [MsgCreateValidator(key.public_key, JOINER_STAKE)])
        joined_at = self.network_height()
        self.net.wait_height(self.live_honest(), joined_at + 3, self.bound(30.0))
        self.net.kill(name)
        spawned = time.monotonic()
        self.net.start(name)
        self.net.wait_up([name], START_TIMEOUT_S)
        ready = time.monotonic()
        self._measure_votes(record, [name], ready, spawned)
        record.measurements["join_height"] = float(joined_at)

    def _leave(self, record: FaultRecord, name: str) -> None:
        key = self.net.homes[name].validator_key
        records = self.net.get(self.live_honest()[0], "/v1/validators")["validators"]
        mine = next((r for r in records if r["address"] == key.address), None)
        if mine is None or int(mine["tokens"]) == 0:
            raise ChaosError(f"{name} is not a validator with tokens: cannot leave")
        self._submit(name, [MsgUndelegate(key.public_key, int(mine["tokens"]))])
        record.measurements["leave_height"] = float(self.network_height())

    def _settle(self) -> None:
        """Liveness: after the last fault every honest live node commits more blocks."""
        names = self.live_honest()
        target = self.network_height() + self.manifest.network.settle_blocks
        try:
            self.net.wait_height(names, target, self.bound(LIVENESS_BOUND_S))
        except ChaosError as exc:
            self.violation("liveness", f"after the last heal: {exc}")

    def _check(self) -> None:
        # The checks compare heights every honest node has; a transaction the load saw
        # included in the newest block must be among them, so wait for laggards to get there.
        target = self.network_height()
        try:
            self.net.wait_height(self.live_honest(), target, self.bound(LIVENESS_BOUND_S))
        except ChaosError as exc:
            self.violation("liveness", f"honest nodes did not all reach height {target}: {exc}")
        obs = checks.observe(self.net, self.live_honest())
        self.result.heights = {n: h for n, h in obs.heights.items()}
        self.result.evidence_committed = len(obs.evidence)
        self.result.synthesis_compared = checks.count_compared_synthesis(obs)
        assert self.load is not None
        spec = self.manifest.network
        byzantine = {self.net.homes[f"node{i}"].validator_key.address for i in spec.twins}
        for found in (
            checks.check_fetch(obs),
            checks.check_agreement(obs),
            checks.check_app_hash(obs),
            checks.check_txs(obs, set(self.load.record.acknowledged)),
            checks.check_supply(obs),
            checks.check_double_signs(obs, byzantine),
            checks.check_synthesis(obs),
        ):
            self.result.violations.extend(found)


def run_manifest(
    manifest: ChaosManifest, root: Path, log: Callable[[str], None] = lambda _: None
) -> RunResult:
    return ChaosRun(manifest, root, log).execute()
