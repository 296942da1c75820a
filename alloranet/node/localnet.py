"""Homes, keys and genesis for a local multi-node testnet on 127.0.0.1.

Why here and not in testnet/: generating homes needs the node's own config and key formats;
the launcher in testnet/ then treats the result as files and processes only. Keys derive from
the seed (``PrivateKey.from_label``) so a run is reproducible; they are for local use only.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alloranet.crypto import PrivateKey, save_key
from alloranet.errors import ConfigError
from alloranet.node.config import NODE_KEY_FILE
from alloranet.node.genesis import (
    DEFAULT_ACCOUNT_BALANCE,
    DEFAULT_VALIDATOR_STAKE,
    GenesisSpec,
    GenesisValidator,
)
from alloranet.node.home import init_home
from alloranet.p2p.identity import load_peer_id
from alloranet.types import UALLO_PER_ALLO

FAUCET_BALANCE = 10_000_000 * UALLO_PER_ALLO
#: Module parameters of a local testnet: epochs short enough to watch (blocks are ~0.3 s), and a
#: downtime window of 1000 blocks (~5 min, as 100 blocks are at a real chain's pace: a restart or
#: a chaos partition is not downtime) with a 60 s jail.
LOCAL_PARAMS: dict[str, Any] = {
    "emissions": {"min_epoch_length": 4},
    "staking": {"signed_blocks_window": 1000, "downtime_jail_ms": 60_000},
}


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (bound together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class ActorPlan:
    name: str
    role: str  # "worker" | "forecaster" | "reputer"
    index: int
    key: str


@dataclass(frozen=True)
class LocalNode:
    """One written node home. ``validator`` is False for a joiner: a node that holds a funded
    validator key but is not in the genesis set (it may stake and join later)."""

    index: int
    name: str
    home: Path
    api: str
    p2p: str
    key: PrivateKey
    validator: bool


def validator_key(label: str, seed: int, index: int) -> PrivateKey:
    return PrivateKey.from_label(f"{label}/{seed}/validator/{index}")


def actor_key(label: str, seed: int, name: str) -> PrivateKey:
    return PrivateKey.from_label(f"{label}/{seed}/{name}")


def create_actor_keys(
    root: Path, seed: int, counts: Sequence[tuple[str, int]], label: str = "alloranet-testnet"
) -> list[ActorPlan]:
    """Key files under ``root/actors/keys`` for ``counts`` of (role, how many) actors."""
    if any(count < 0 for _, count in counts):
        raise ConfigError("actor counts must not be negative")
    actors = []
    for role, count in counts:
        for i in range(count):
            name = f"{role}{i}"
            path = root / "actors" / "keys" / f"{name}.json"
            save_key(path, actor_key(label, seed, name), None, name=name)
            actors.append(ActorPlan(name, role, i, str(path.resolve())))
    return actors


def write_node_homes(
    root: Path,
    *,
    chain_id: str,
    seed: int,
    stakes: Sequence[int],
    joiners: int = 0,
    accounts: Sequence[tuple[str, int]] = (),
    params: dict[str, Any] | None = None,
    label: str = "alloranet-testnet",
) -> list[LocalNode]:
    """``root/node{i}`` for each genesis validator (self-stake ``stakes[i]`` uallo) and then
    each joiner, every node bootstrapped to all others, one shared genesis.

    Every node key (validators' and joiners') is funded with the default balance on top of
    ``accounts``. Used by ``testnet up`` and by the chaos harness (testnet/chaos/homes.py),
    which adds joiners, manifest stakes and its load accounts."""
    if not stakes:
        raise ConfigError("--validators must be at least 1")
    if joiners < 0:
        raise ConfigError("joiners must not be negative")
    count = len(stakes) + joiners
    ports = free_ports(2 * count)
    homes = [root / f"node{i}" for i in range(count)]
    keys = [validator_key(label, seed, i) for i in range(count)]
    peer_ids = [load_peer_id(home / NODE_KEY_FILE) for home in homes]
    p2p_addrs = [f"/ip4/127.0.0.1/tcp/{ports[2 * i]}/p2p/{peer_ids[i]}" for i in range(count)]
    funded = dict(accounts)
    for key in keys:
        funded.setdefault(key.address, DEFAULT_ACCOUNT_BALANCE)
    genesis = GenesisSpec(
        chain_id=chain_id,
        genesis_time_ms=0,
        validators=tuple(
            GenesisValidator(key.public_key, stake, f"node{i}")
            for i, (key, stake) in enumerate(zip(keys, stakes, strict=False))
        ),
        accounts=tuple(sorted(funded.items())),
        params=dict(LOCAL_PARAMS if params is None else params),
    )
    nodes = []
    for i, home in enumerate(homes):
        result = init_home(
            home,
            moniker=f"node{i}",
            chain_id=chain_id,
            p2p_port=ports[2 * i],
            rpc_port=ports[2 * i + 1],
            bootstrap=tuple(a for j, a in enumerate(p2p_addrs) if j != i),
            preset="local",
            genesis=genesis,
            validator_key=keys[i],
        )
        nodes.append(
            LocalNode(i, f"node{i}", home, result.api, result.p2p_address, keys[i], i < len(stakes))
        )
    return nodes


def create_local_testnet(
    root: Path,
    *,
    validators: int,
    workers: int,
    forecasters: int,
    reputers: int,
    seed: int,
    chain_id: str = "alloranet-local",
    params: dict[str, Any] | None = None,
    stakes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Write every home under ``root`` and return the manifest (testnet/manifest.py schema).

    ``stakes`` (uallo, one per validator) defaults to the same stake for every validator."""
    if validators < 1:
        raise ConfigError("--validators must be at least 1")
    if stakes is not None and (len(stakes) != validators or min(stakes) <= 0):
        raise ConfigError("stakes: give one positive stake per validator")
    if min(workers, forecasters, reputers) < 0:
        raise ConfigError("actor counts must not be negative")
    if (root / "testnet.json").exists():
        raise ConfigError(f"{root} already holds a testnet: `testnet down` and remove it first")
    root.mkdir(parents=True, exist_ok=True)
    counts = (("worker", workers), ("forecaster", forecasters), ("reputer", reputers))
    actors = create_actor_keys(root, seed, counts)
    faucet = actor_key("alloranet-testnet", seed, "faucet")
    faucet_path = root / "faucet.json"
    save_key(faucet_path, faucet, None, name="faucet")
    accounts: list[tuple[str, int]] = [(faucet.address, FAUCET_BALANCE)]
    accounts += [(actor_key("alloranet-testnet", seed, a.name).address, DEFAULT_ACCOUNT_BALANCE)
                 for a in actors]  # fmt: skip
    nodes = write_node_homes(
        root,
        chain_id=chain_id,
        seed=seed,
        stakes=list(stakes) if stakes is not None else [DEFAULT_VALIDATOR_STAKE] * validators,
        accounts=accounts,
        params=params,
    )
    return {
        "chain_id": chain_id,
        "seed": seed,
        "faucet_key": str(faucet_path.resolve()),
        "nodes": [
            {"name": n.name, "home": str(n.home.resolve()), "api": n.api, "p2p": n.p2p}
            for n in nodes
        ],
        "actors": [asdict(a) for a in actors],
        "topic": {},
    }
