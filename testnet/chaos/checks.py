"""Black-box checks of a finished chaos run, over the HTTP API (and test-mode admin views).

Each check returns a list of :class:`Violation`; an empty list means it held. They read only
what any operator could read from the nodes: block views (hash, app hash, transactions,
commit signers, evidence count), status, the admin views of validator records, supply and
evidence, and the synthesis history per topic.

Honest nodes are every process except the twins of a Byzantine validator and deliberate
equivocators; agreement is demanded among honest nodes only, and a double sign by a validator
the manifest did *not* declare Byzantine is itself a violation (that is what the negative
control relies on).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from testnet import processes
from testnet.chaos.network import ChaosNetwork
from testnet.client import ApiError


@dataclass(frozen=True)
class Violation:
    check: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Observation:
    """Everything the checks look at, fetched once after the run settled."""

    honest: list[str]
    heights: dict[str, int]
    common_height: int
    blocks: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    supply: dict[str, dict[str, Any]] = field(default_factory=dict)
    validators: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    synthesis: dict[str, dict[int, dict[int, Any]]] = field(default_factory=dict)
    fetch_errors: list[str] = field(default_factory=list)
    #: public-key hex prefixes of validators some honest node saw double-signing (its log)
    detected: set[str] = field(default_factory=set)


def observe(net: ChaosNetwork, honest: list[str]) -> Observation:
    heights = {name: net.height(name) for name in honest}
    live = [n for n in honest if heights[n] >= 0]
    common = min((heights[n] for n in live), default=0)
    obs = Observation(live, heights, common)
    for name in live:
        blocks: dict[int, dict[str, Any]] = {}
        for height in range(1, common + 1):
            try:
                blocks[height] = net.get(name, f"/v1/blocks/{height}")
            except (ApiError, OSError, ValueError) as exc:
                obs.fetch_errors.append(f"{name} block {height}: {exc}")
        obs.blocks[name] = blocks
        try:
            obs.supply[name] = net.get(name, "/v1/admin/supply")
            obs.validators[name] = net.get(name, "/v1/admin/validators")["validators"]
        except (ApiError, OSError, ValueError) as exc:
            obs.fetch_errors.append(f"{name} admin views: {exc}")
        obs.synthesis[name] = _synthesis(net, name)
    obs.detected = detect_double_signs(net, live)
    if live:
        reference = live[0]
        for height, view in obs.blocks[reference].items():
            if int(view.get("evidence", 0)) > 0:
                try:
                    items = net.get(reference, f"/v1/admin/evidence/{height}")["evidence"]
                except (ApiError, OSError, ValueError) as exc:
                    obs.fetch_errors.append(f"{reference} evidence {height}: {exc}")
                    continue
                obs.evidence.extend({**item, "block_height": height} for item in items)
    return obs


DETECTED = re.compile(r'"msg": "double-sign evidence against ([0-9a-f]+)"')


def detect_double_signs(net: ChaosNetwork, names: list[str]) -> set[str]:
    """Validators (public-key hex prefixes) an honest node reported as double-signing.

    Why the node logs: a double sign is *observed* by honest nodes (two conflicting signed
    votes arrive); whether evidence of it then reaches a block is exactly what is checked,
    so the set of double signs cannot be taken from the blocks themselves. The node writes
    one structured log line per detection (``alloranet.node.shell``) into its data directory.
    """
    found: set[str] = set()
    for name in names:
        path = processes.log_file(net.root, name)
        if path.exists():
            found.update(DETECTED.findall(path.read_text(errors="replace")))
    return found


def _synthesis(net: ChaosNetwork, name: str) -> dict[int, dict[int, Any]]:
    """topic id -> nonce -> combined network value, from the node's inference history."""
    out: dict[int, dict[int, Any]] = {}
    try:
        topics = net.get(name, "/v1/topics")["topics"]
        for topic in topics:
            topic_id = int(topic["id"])
            history = net.get(name, f"/v1/topics/{topic_id}/network-inference/history?limit=500")
            out[topic_id] = {
                int(entry["nonce"]): entry["network_inferences"]["combined_value"]
                for entry in history["network_inferences"]
            }
    except (ApiError, OSError, ValueError, KeyError, TypeError):
        return out
    return out


def check_agreement(obs: Observation) -> list[Violation]:
    out = []
    for height in range(1, obs.common_height + 1):
        hashes = {n: obs.blocks[n][height]["hash"] for n in obs.honest if height in obs.blocks[n]}
        if len(set(hashes.values())) > 1:
            out.append(Violation("agreement", f"block hashes differ at height {height}: {hashes}"))
    return out


def check_app_hash(obs: Observation) -> list[Violation]:
    out = []
    for height in range(1, obs.common_height + 1):
        hashes = {
            n: obs.blocks[n][height]["app_hash"] for n in obs.honest if height in obs.blocks[n]
        }
        if len(set(hashes.values())) > 1:
            out.append(
                Violation("app_hash", f"app hashes in headers differ at height {height}: {hashes}")
            )
    return out


def check_fetch(obs: Observation) -> list[Violation]:
    """A committed block a node cannot serve is itself a finding (lost or unpersisted data)."""
    return [Violation("observability", e) for e in obs.fetch_errors[:20]]


def included_counts(obs: Observation) -> Counter[str]:
    counts: Counter[str] = Counter()
    if not obs.honest:
        return counts
    for view in obs.blocks[obs.honest[0]].values():
        counts.update(view.get("txs", []))
    return counts


class IncludedTxs:
    """Transaction hashes in the committed blocks of the first node that answers; blocks are
    immutable once committed, so each height is fetched once across calls."""

    def __init__(self, net: ChaosNetwork) -> None:
        self.net = net
        self.by_height: dict[int, list[str]] = {}

    def fetch(self, names: list[str]) -> set[str]:
        for name in names:
            top = self.net.height(name)
            if top < 0:
                continue
            try:
                for height in range(1, top + 1):
                    if height not in self.by_height:
                        view = self.net.get(name, f"/v1/blocks/{height}")
                        self.by_height[height] = list(view.get("txs", []))
            except (ApiError, OSError, ValueError):
                continue
            return {h for txs in self.by_height.values() for h in txs}
        return set()


def check_txs(obs: Observation, acknowledged: set[str]) -> list[Violation]:
    counts = included_counts(obs)
    lost = sorted(h for h in acknowledged if counts[h] == 0)
    twice = sorted(h for h in acknowledged if counts[h] > 1)
    out = []
    if lost:
        out.append(
            Violation("tx_lost", f"{len(lost)} acknowledged txs in no block, e.g. {lost[:3]}")
        )
    if twice:
        out.append(Violation("tx_duplicated", f"{len(twice)} txs in several blocks: {twice[:3]}"))
    return out


def check_supply(obs: Observation) -> list[Violation]:
    out = []
    by_height: dict[int, set[str]] = defaultdict(set)
    for name, supply in obs.supply.items():
        if supply["computed"] != supply["recorded"]:
            out.append(
                Violation(
                    "supply",
                    f"{name} at height {supply['height']}: balances sum to {supply['computed']}"
                    f" but the recorded supply is {supply['recorded']}",
                )
            )
        by_height[int(supply["height"])].add(supply["recorded"])
    for height, values in by_height.items():
        if len(values) > 1:
            out.append(Violation("supply", f"nodes disagree on supply at height {height}"))
    return out


def check_double_signs(
    obs: Observation, byzantine: set[str], validators: dict[str, str]
) -> list[Violation]:
    """Every double sign seen by an honest node, and every Byzantine (twin) validator, has
    committed evidence and a slashed, jailed, tombstoned signer; and no validator declared
    honest double-signed at all. ``validators`` maps address -> public key hex."""
    out = []
    accused = {e["address"] for e in obs.evidence}
    detected = {
        address
        for address, pubkey in validators.items()
        if any(pubkey.startswith(prefix) for prefix in obs.detected)
    }
    for address in sorted((accused | detected) - byzantine):
        heights = sorted({e["height"] for e in obs.evidence if e["address"] == address})
        seen = "committed evidence at heights " + str(heights) if heights else "seen by peers"
        out.append(
            Violation(
                "double_sign", f"validator {address}, declared honest, double-signed ({seen})"
            )
        )
    for address in sorted(byzantine | detected):
        if address not in accused:
            out.append(
                Violation("evidence", f"no committed evidence against double signer {address}")
            )
            continue
        for name, records in obs.validators.items():
            record = next((r for r in records if r["address"] == address), None)
            if record is None or not (record["jailed"] and record["tombstoned"]):
                out.append(
                    Violation("slashing", f"{name}: double signer {address} not jailed/tombstoned")
                )
    return out


def check_synthesis(obs: Observation) -> list[Violation]:
    out = []
    nonces: dict[tuple[int, int], dict[str, Any]] = defaultdict(dict)
    for name, topics in obs.synthesis.items():
        for topic_id, values in topics.items():
            for nonce, value in values.items():
                nonces[(topic_id, nonce)][name] = value
    for (topic_id, nonce), by_node in sorted(nonces.items()):
        if len({repr(v) for v in by_node.values()}) > 1:
            out.append(
                Violation("synthesis", f"topic {topic_id} nonce {nonce}: results differ: {by_node}")
            )
    return out
