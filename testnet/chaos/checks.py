"""Black-box checks of a finished chaos run, over the HTTP API.

Each check returns a list of :class:`Violation`; an empty list means it held. They read only
what any operator could read from the nodes: block views (hash, app hash, transactions,
commit signers, the committed evidence and whom it accuses), status, ``/v1/validators``
(power, tokens, jailed, tombstoned), the synthesis history per topic, and one test-mode admin
view (``/v1/admin/supply``: the recorded supply against the sum of all balances, which no
public route exposes).

Double signs are known from the chain itself: the evidence committed in blocks. A double sign
that never reaches a block is therefore caught as a *missing* piece of evidence against a
declared Byzantine validator (the twins manifest), not by reading node logs.

Honest nodes are every process except the twins of a Byzantine validator and deliberate
equivocators; agreement is demanded among honest nodes only, and a double sign by a validator
the manifest did *not* declare Byzantine is itself a violation (that is what the negative
control relies on).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

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
            obs.validators[name] = net.get(name, "/v1/validators")["validators"]
        except (ApiError, OSError, ValueError, KeyError) as exc:
            obs.fetch_errors.append(f"{name} supply/validators: {exc}")
        obs.synthesis[name] = _synthesis(net, name)
    if live:
        for height, view in sorted(obs.blocks[live[0]].items()):
            for item in view.get("evidence_items", []):
                obs.evidence.append({**item, "block_height": height})
    return obs


def _synthesis(net: ChaosNetwork, name: str) -> dict[int, dict[int, Any]]:
    """topic id -> nonce -> everything the node's synthesis produced for that closed nonce:
    the network inference (combined, naive, per-inferer, forecast-implied and one-out/one-in
    values, weights, confidence interval), the losses it was scored with, and the reward of
    every actor, as canonical JSON text so any difference in any digit shows."""
    out: dict[int, dict[int, Any]] = {}
    try:
        topics = net.get(name, "/v1/topics")["topics"]
        for topic in topics:
            topic_id = int(topic["id"])
            history = net.get(name, f"/v1/topics/{topic_id}/network-inference/history?limit=500")
            rewards: dict[int, list[Any]] = defaultdict(list)
            for payout in net.get(name, f"/v1/topics/{topic_id}/rewards")["rewards"]:
                rewards[int(payout["nonce"])].append(payout)
            out[topic_id] = {
                int(entry["nonce"]): json.dumps(
                    {
                        "inference": entry,
                        "rewards": sorted(rewards[int(entry["nonce"])], key=json.dumps),
                    },
                    sort_keys=True,
                )
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


def check_double_signs(obs: Observation, byzantine: set[str]) -> list[Violation]:
    """Committed evidence accuses only declared Byzantine validators (``byzantine``: addresses
    of twins); every one of those has committed evidence, and every honest node shows it
    jailed and tombstoned (``/v1/validators``) with no voting power left."""
    out = []
    accused = {e["address"] for e in obs.evidence}
    for address in sorted(accused - byzantine):
        heights = sorted({e["height"] for e in obs.evidence if e["address"] == address})
        out.append(
            Violation(
                "double_sign",
                f"validator {address}, declared honest, double-signed (committed evidence of "
                f"heights {heights})",
            )
        )
    for address in sorted(byzantine | accused):
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
            elif int(record.get("power", 0)) != 0:
                out.append(
                    Violation("slashing", f"{name}: double signer {address} still has power")
                )
    return out


def count_compared_synthesis(obs: Observation) -> int:
    """How many (topic, nonce) network inferences at least two honest nodes both served: the
    synthesis check compares these, so zero means it compared nothing."""
    seen: Counter[tuple[int, int]] = Counter()
    for topics in obs.synthesis.values():
        for topic_id, values in topics.items():
            seen.update((topic_id, nonce) for nonce in values)
    return sum(1 for count in seen.values() if count >= 2)


def check_synthesis(obs: Observation) -> list[Violation]:
    out = []
    nonces: dict[tuple[int, int], dict[str, Any]] = defaultdict(dict)
    for name, topics in obs.synthesis.items():
        for topic_id, values in topics.items():
            for nonce, value in values.items():
                nonces[(topic_id, nonce)][name] = value
    for (topic_id, nonce), by_node in sorted(nonces.items()):
        if len({repr(v) for v in by_node.values()}) > 1:
            shown = {n: str(v)[:300] for n, v in by_node.items()}
            out.append(
                Violation("synthesis", f"topic {topic_id} nonce {nonce}: results differ: {shown}")
            )
    return out
