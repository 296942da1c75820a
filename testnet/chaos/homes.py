"""Node homes for a chaos run: validators with manifest stakes, joiners, twins, load accounts.

Why not ``testnet up``'s homes: a chaos run needs per-validator stakes, full nodes that join the
set later, twin homes (same validator key, own node key, ports and signer state) and funded
accounts for the load driver. The files are the node's own formats (``alloranet.node.home``), so
the processes under test are exactly what an operator runs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from alloranet.crypto import PrivateKey
from alloranet.node.config import NODE_KEY_FILE, VALIDATOR_KEY_FILE
from alloranet.node.genesis import DEFAULT_ACCOUNT_BALANCE, GenesisSpec, GenesisValidator
from alloranet.node.home import init_home
from alloranet.node.localnet import LOCAL_PARAMS, free_ports
from alloranet.p2p.identity import load_peer_id
from alloranet.types import UALLO_PER_ALLO
from testnet.chaos.schema import NetworkSpec

LOAD_ACCOUNTS = 4
#: A joiner's self-stake: small, so a joiner that has not restarted to sign cannot stall the set.
JOINER_STAKE = 10 * UALLO_PER_ALLO


@dataclass(frozen=True)
class NodeHome:
    index: int
    name: str
    home: Path
    api: str
    p2p: str
    validator_key: PrivateKey
    genesis_validator: bool


def validator_key(seed: int, index: int) -> PrivateKey:
    return PrivateKey.from_label(f"alloranet-chaos/{seed}/validator/{index}")


def load_account_key(seed: int, index: int) -> PrivateKey:
    return PrivateKey.from_label(f"alloranet-chaos/{seed}/load/{index}")


def create_homes(root: Path, spec: NetworkSpec, chain_id: str) -> list[NodeHome]:
    """Write ``root/node{i}`` for every validator and joiner; returns them in index order."""
    count = spec.node_count
    ports = free_ports(2 * count)
    keys = [validator_key(spec.seed, i) for i in range(count)]
    homes = [root / f"node{i}" for i in range(count)]
    peer_ids = [load_peer_id(home / NODE_KEY_FILE) for home in homes]
    p2p = [f"/ip4/127.0.0.1/tcp/{ports[2 * i]}/p2p/{peer_ids[i]}" for i in range(count)]
    accounts = [(load_account_key(spec.seed, i).address, DEFAULT_ACCOUNT_BALANCE)
                for i in range(LOAD_ACCOUNTS)]  # fmt: skip
    accounts += [(key.address, DEFAULT_ACCOUNT_BALANCE) for key in keys]
    genesis = GenesisSpec(
        chain_id=chain_id,
        genesis_time_ms=0,
        validators=tuple(
            GenesisValidator(keys[i].public_key, spec.stake_of(i) * UALLO_PER_ALLO, f"node{i}")
            for i in range(spec.validators)
        ),
        accounts=tuple(sorted(accounts)),
        params=dict(LOCAL_PARAMS),
    )
    out = []
    for i, home in enumerate(homes):
        result = init_home(
            home,
            moniker=f"node{i}",
            chain_id=chain_id,
            p2p_port=ports[2 * i],
            rpc_port=ports[2 * i + 1],
            bootstrap=tuple(a for j, a in enumerate(p2p) if j != i),
            preset="local",
            genesis=genesis,
            validator_key=keys[i],
        )
        out.append(NodeHome(i, f"node{i}", home, result.api, p2p[i], keys[i], i < spec.validators))
    return out


def create_twin_home(root: Path, original: NodeHome, others: list[NodeHome]) -> NodeHome:
    """A second home for ``original``'s validator: same validator key and genesis, its own
    node key, ports, data directory and therefore its own signer state (a Byzantine twin)."""
    home = root / f"{original.name}-twin"
    p2p_port, rpc_port = free_ports(2)
    genesis_path = original.home / "genesis.json"
    from alloranet.node.genesis import load_genesis

    result = init_home(
        home,
        moniker=f"{original.name}-twin",
        chain_id=load_genesis(genesis_path).chain_id,
        p2p_port=p2p_port,
        rpc_port=rpc_port,
        bootstrap=tuple(o.p2p for o in others),
        preset="local",
        genesis=load_genesis(genesis_path),
        validator_key=original.validator_key,
    )
    shutil.copyfile(genesis_path, home / "genesis.json")
    assert (home / VALIDATOR_KEY_FILE).exists()
    return NodeHome(
        original.index,
        f"{original.name}-twin",
        home,
        result.api,
        result.p2p_address,
        original.validator_key,
        True,
    )
