"""Node homes for a chaos run: validators with manifest stakes, joiners, twins, load accounts
and the simulated inference actors.

The validator and joiner homes come from ``alloranet.node.localnet.write_node_homes`` (the very
homes ``testnet up`` writes, in the node's own formats), so the processes under test are exactly
what an operator runs. What is chaos-specific lives here: twin homes (same validator key, own
node key, ports and signer state), funded accounts for the load driver, and the actors of the
inference load (workers, a forecaster, reputers and a faucet that creates the topic).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from alloranet.crypto import PrivateKey, save_key
from alloranet.node.config import VALIDATOR_KEY_FILE
from alloranet.node.genesis import DEFAULT_ACCOUNT_BALANCE
from alloranet.node.home import init_home
from alloranet.node.localnet import (
    FAUCET_BALANCE,
    ActorPlan,
    actor_key,
    create_actor_keys,
    free_ports,
    write_node_homes,
)
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


LABEL = "alloranet-chaos"
#: The inference load's actors: (role, count) as ``testnet up`` writes them.
ACTORS = (("worker", 3), ("forecaster", 1), ("reputer", 2))


def validator_key(seed: int, index: int) -> PrivateKey:
    return PrivateKey.from_label(f"{LABEL}/{seed}/validator/{index}")


def load_account_key(seed: int, index: int) -> PrivateKey:
    return PrivateKey.from_label(f"{LABEL}/{seed}/load/{index}")


def faucet_path(root: Path) -> Path:
    return root / "faucet.json"


def create_homes(
    root: Path, spec: NetworkSpec, chain_id: str
) -> tuple[list[NodeHome], list[ActorPlan]]:
    """Write ``root/node{i}`` for every validator and joiner (in index order) and the actors'
    key files; the load accounts, actors and faucet are funded in genesis."""
    actors = create_actor_keys(root, spec.seed, ACTORS, label=LABEL)
    faucet = actor_key(LABEL, spec.seed, "faucet")
    save_key(faucet_path(root), faucet, None, name="faucet")
    accounts = [(load_account_key(spec.seed, i).address, DEFAULT_ACCOUNT_BALANCE)
                for i in range(LOAD_ACCOUNTS)]  # fmt: skip
    accounts += [(actor_key(LABEL, spec.seed, a.name).address, DEFAULT_ACCOUNT_BALANCE)
                 for a in actors]  # fmt: skip
    accounts.append((faucet.address, FAUCET_BALANCE))
    nodes = write_node_homes(
        root,
        chain_id=chain_id,
        seed=spec.seed,
        stakes=[spec.stake_of(i) * UALLO_PER_ALLO for i in range(spec.validators)],
        joiners=spec.joiners,
        accounts=accounts,
        label=LABEL,
    )
    homes = [NodeHome(n.index, n.name, n.home, n.api, n.p2p, n.key, n.validator) for n in nodes]
    return homes, actors


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
