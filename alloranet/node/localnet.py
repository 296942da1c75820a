"""Homes, keys and genesis for a local multi-node testnet on 127.0.0.1.

Why here and not in testnet/: generating homes needs the node's own config and key formats;
the launcher in testnet/ then treats the result as files and processes only. Keys derive from
the seed (``PrivateKey.from_label``) so a run is reproducible; they are for local use only.
"""

from __future__ import annotations

import socket
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
#: Module parameters of a local testnet: epochs short enough to watch (blocks are ~0.3 s).
LOCAL_PARAMS: dict[str, Any] = {"emissions": {"min_epoch_length": 4}}


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
) -> dict[str, Any]:
    """Write every home under ``root`` and return the manifest (testnet/manifest.py schema)."""
    if validators < 1:
        raise ConfigError("--validators must be at least 1")
    if min(workers, forecasters, reputers) < 0:
        raise ConfigError("actor counts must not be negative")
    if (root / "testnet.json").exists():
        raise ConfigError(f"{root} already holds a testnet: `testnet down` and remove it first")
    root.mkdir(parents=True, exist_ok=True)
    ports = free_ports(2 * validators)
    homes = [root / f"node{i}" for i in range(validators)]
    keys = [
        PrivateKey.from_label(f"alloranet-testnet/{seed}/validator/{i}") for i in range(validators)
    ]
    peer_ids = [load_peer_id(home / NODE_KEY_FILE) for home in homes]
    p2p_addrs = [f"/ip4/127.0.0.1/tcp/{ports[2 * i]}/p2p/{peer_ids[i]}" for i in range(validators)]

    actor_dir = root / "actors" / "keys"
    actors: list[ActorPlan] = []
    for role, count in (("worker", workers), ("forecaster", forecasters), ("reputer", reputers)):
        for i in range(count):
            name = f"{role}{i}"
            key = PrivateKey.from_label(f"alloranet-testnet/{seed}/{name}")
            path = actor_dir / f"{name}.json"
            save_key(path, key, None, name=name)
            actors.append(ActorPlan(name, role, i, str(path.resolve())))
    faucet = PrivateKey.from_label(f"alloranet-testnet/{seed}/faucet")
    faucet_path = root / "faucet.json"
    save_key(faucet_path, faucet, None, name="faucet")

    accounts: list[tuple[str, int]] = [(faucet.address, FAUCET_BALANCE)]
    for plan in actors:
        address = PrivateKey.from_label(f"alloranet-testnet/{seed}/{plan.name}").address
        accounts.append((address, DEFAULT_ACCOUNT_BALANCE))
    for key in keys:
        accounts.append((key.address, DEFAULT_ACCOUNT_BALANCE))
    genesis = GenesisSpec(
        chain_id=chain_id,
        genesis_time_ms=0,
        validators=tuple(
            GenesisValidator(k.public_key, DEFAULT_VALIDATOR_STAKE, f"node{i}")
            for i, k in enumerate(keys)
        ),
        accounts=tuple(sorted(accounts)),
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
            {
                "name": f"node{i}",
                "home": str(home.resolve()),
                "api": result.api,
                "p2p": result.p2p_address,
            }
        )
    return {
        "chain_id": chain_id,
        "seed": seed,
        "faucet_key": str(faucet_path.resolve()),
        "nodes": nodes,
        "actors": [asdict(a) for a in actors],
        "topic": {},
    }
