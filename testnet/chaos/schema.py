"""Chaos manifests: a network and a schedule of perturbations, in TOML, with typed loading.

Example::

    name = "partition-minority"
    [network]
    validators = 4
    stakes = [100, 100, 100, 100]   # ALLO each (optional; default 100 each)
    seed = 7
    twins = []          # validator indexes run as two processes sharing one key (Byzantine)
    equivocators = []   # negative control: validators started with --test-unsafe-equivocate
    late = []           # validator indexes started only by a "start" perturbation
    twins_start_late = false  # twins wait for a "start" perturbation with twin = true
    joiners = 0         # extra full nodes that may join the set ("join"/"leave" perturbations)
    load_tps = 4        # bank transfers per second submitted while faults happen
    settle_blocks = 3   # blocks every honest node must commit after the last heal

    [[perturbation]]
    kind = "partition"          # see KINDS
    at_height = 4               # or at_s = 2.5 (seconds after the network is up)
    groups = [[0], [1, 2, 3]]   # node indexes
    duration_s = 10             # heal after this long (faults with a reverse only)

Why explicit indexes and not names: the seeded generator and a replay must produce the same
network byte for byte; node ``i`` is always ``node{i}`` with the key derived from the seed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: kind -> does it take ``duration_s`` (and a reverse action after it)?
KINDS: dict[str, bool] = {
    "partition": True,  # groups: the network splits; heal after duration_s
    "cut_link": True,  # nodes = [a, b]: only that link is dropped
    "kill": True,  # nodes: SIGKILL, restart after duration_s
    "pause": True,  # nodes (or "proposer"): SIGSTOP, SIGCONT after duration_s
    "truncate_wal": False,  # nodes: SIGKILL, cut wal_bytes off the WAL tail, restart
    "start": False,  # nodes: start late nodes
    "join": False,  # nodes: full nodes stake and become validators (restarted to sign)
    "leave": False,  # nodes: validators unbond everything and leave the set
}


class ChaosManifestError(Exception):
    """A manifest that cannot describe a run; the message names the field."""


@dataclass(frozen=True)
class NetworkSpec:
    validators: int = 4
    stakes: tuple[int, ...] = ()
    seed: int = 1
    twins: tuple[int, ...] = ()
    equivocators: tuple[int, ...] = ()
    late: tuple[int, ...] = ()
    twins_start_late: bool = False
    joiners: int = 0
    load_tps: float = 4.0
    settle_blocks: int = 3

    @property
    def node_count(self) -> int:
        return self.validators + self.joiners

    def stake_of(self, index: int) -> int:
        return self.stakes[index] if self.stakes else 100


@dataclass(frozen=True)
class Perturbation:
    kind: str
    nodes: tuple[int | str, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    at_height: int | None = None
    at_s: float | None = None
    duration_s: float = 0.0
    wal_bytes: int = 64
    twin: bool = False

    def describe(self) -> str:
        where = f"h{self.at_height}" if self.at_height is not None else f"t+{self.at_s}s"
        what = f"groups={[list(g) for g in self.groups]}" if self.groups else f"nodes={self.nodes}"
        span = f" for {self.duration_s}s" if self.duration_s else ""
        twin = " (twin)" if self.twin else ""
        return f"{self.kind} {what}{twin} at {where}{span}"


@dataclass(frozen=True)
class ChaosManifest:
    name: str
    network: NetworkSpec
    perturbations: tuple[Perturbation, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        net = self.network
        return {
            "name": self.name,
            "network": {
                "validators": net.validators,
                "stakes": list(net.stakes),
                "seed": net.seed,
                "twins": list(net.twins),
                "equivocators": list(net.equivocators),
                "late": list(net.late),
                "twins_start_late": net.twins_start_late,
                "joiners": net.joiners,
                "load_tps": net.load_tps,
                "settle_blocks": net.settle_blocks,
            },
            "perturbation": [
                {
                    k: v
                    for k, v in {
                        "kind": p.kind,
                        "nodes": list(p.nodes),
                        "groups": [list(g) for g in p.groups],
                        "at_height": p.at_height,
                        "at_s": p.at_s,
                        "duration_s": p.duration_s,
                        "wal_bytes": p.wal_bytes,
                        "twin": p.twin or None,
                    }.items()
                    if v is not None and v != []
                }
                for p in self.perturbations
            ],
        }


def _int_list(raw: Any, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw
    ):
        raise ChaosManifestError(f"{where} must be a list of non-negative integers")
    return tuple(raw)


def _number(raw: Any, where: str, minimum: float = 0.0) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < minimum:
        raise ChaosManifestError(f"{where} must be a number >= {minimum}")
    return float(raw)


def _bool(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise ChaosManifestError(f"{where} must be true or false")
    return raw


def _int(raw: Any, where: str, minimum: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise ChaosManifestError(f"{where} must be an integer >= {minimum}")
    return raw


_NETWORK_KEYS = {f for f in NetworkSpec.__dataclass_fields__}
_PERTURBATION_KEYS = {
    "kind", "nodes", "groups", "at_height", "at_s", "duration_s", "wal_bytes", "twin"
}  # fmt: skip


def parse_network(raw: Any) -> NetworkSpec:
    if not isinstance(raw, dict):
        raise ChaosManifestError("[network] must be a table")
    unknown = sorted(set(raw) - _NETWORK_KEYS)
    if unknown:
        raise ChaosManifestError(f"[network] unknown key {unknown[0]!r}")
    spec = NetworkSpec(
        validators=_int(raw.get("validators", 4), "[network] validators", 1),
        stakes=_int_list(raw.get("stakes", []), "[network] stakes"),
        seed=_int(raw.get("seed", 1), "[network] seed"),
        twins=_int_list(raw.get("twins", []), "[network] twins"),
        equivocators=_int_list(raw.get("equivocators", []), "[network] equivocators"),
        late=_int_list(raw.get("late", []), "[network] late"),
        twins_start_late=_bool(raw.get("twins_start_late", False), "[network] twins_start_late"),
        joiners=_int(raw.get("joiners", 0), "[network] joiners"),
        load_tps=_number(raw.get("load_tps", 4.0), "[network] load_tps"),
        settle_blocks=_int(raw.get("settle_blocks", 3), "[network] settle_blocks", 1),
    )
    if spec.stakes and len(spec.stakes) != spec.validators:
        raise ChaosManifestError("[network] stakes needs one entry per validator")
    if spec.stakes and min(spec.stakes) < 1:
        raise ChaosManifestError("[network] stakes must be at least 1 ALLO")
    for name in ("twins", "equivocators", "late"):
        for index in getattr(spec, name):
            if index >= spec.validators:
                raise ChaosManifestError(f"[network] {name}: no validator {index}")
    return spec


def parse_perturbation(raw: Any, index: int, network: NetworkSpec) -> Perturbation:
    where = f"perturbation {index}"
    if not isinstance(raw, dict):
        raise ChaosManifestError(f"{where} must be a table")
    unknown = sorted(set(raw) - _PERTURBATION_KEYS)
    if unknown:
        raise ChaosManifestError(f"{where}: unknown key {unknown[0]!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ChaosManifestError(f"{where}: kind must be one of {sorted(KINDS)}, got {kind!r}")
    nodes_raw = raw.get("nodes", [])
    if not isinstance(nodes_raw, list):
        raise ChaosManifestError(f"{where}: nodes must be a list")
    nodes: list[int | str] = []
    for item in nodes_raw:
        if item == "proposer" and kind == "pause":
            nodes.append("proposer")
        elif isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            if item >= network.node_count:
                raise ChaosManifestError(f"{where}: no node {item}")
            nodes.append(item)
        else:
            raise ChaosManifestError(f"{where}: bad node {item!r}")
    groups = tuple(
        _int_list(g, f"{where}: groups[{i}]") for i, g in enumerate(raw.get("groups", []))
    )
    if kind == "partition":
        if len(groups) < 2:
            raise ChaosManifestError(f"{where}: a partition needs at least two groups")
        flat = [n for g in groups for n in g]
        if len(flat) != len(set(flat)) or any(n >= network.node_count for n in flat):
            raise ChaosManifestError(f"{where}: groups must be disjoint existing nodes")
    elif not nodes:
        raise ChaosManifestError(f"{where}: {kind} needs nodes")
    if kind == "cut_link" and len(nodes) != 2:
        raise ChaosManifestError(f"{where}: cut_link needs exactly two nodes")
    if raw.get("twin") and any(not isinstance(n, int) or n not in network.twins for n in nodes):
        raise ChaosManifestError(f"{where}: twin = true needs nodes listed in [network] twins")
    at_height = raw.get("at_height")
    at_s = raw.get("at_s")
    if (at_height is None) == (at_s is None):
        raise ChaosManifestError(f"{where}: give exactly one of at_height and at_s")
    duration = _number(raw.get("duration_s", 0.0), f"{where}: duration_s")
    if KINDS[kind] and duration <= 0:
        raise ChaosManifestError(f"{where}: {kind} needs duration_s > 0")
    return Perturbation(
        kind=kind,
        nodes=tuple(nodes),
        groups=groups,
        at_height=None if at_height is None else _int(at_height, f"{where}: at_height", 1),
        at_s=None if at_s is None else _number(at_s, f"{where}: at_s"),
        duration_s=duration,
        wal_bytes=_int(raw.get("wal_bytes", 64), f"{where}: wal_bytes", 1),
        twin=_bool(raw.get("twin", False), f"{where}: twin"),
    )


def parse_chaos_manifest(raw: dict[str, Any], default_name: str = "manifest") -> ChaosManifest:
    unknown = sorted(set(raw) - {"name", "network", "perturbation"})
    if unknown:
        raise ChaosManifestError(f"unknown top-level key {unknown[0]!r}")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise ChaosManifestError("name must be a non-empty string")
    network = parse_network(raw.get("network", {}))
    items = raw.get("perturbation", [])
    if not isinstance(items, list):
        raise ChaosManifestError("[[perturbation]] must be an array of tables")
    perturbations = tuple(parse_perturbation(p, i, network) for i, p in enumerate(items))
    return ChaosManifest(name, network, perturbations)


def load_chaos_manifest(path: Path) -> ChaosManifest:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ChaosManifestError(f"{path}: no such manifest") from None
    except tomllib.TOMLDecodeError as exc:
        raise ChaosManifestError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_chaos_manifest(raw, path.stem)
    except ChaosManifestError as exc:
        raise ChaosManifestError(f"{path}: {exc}") from None
