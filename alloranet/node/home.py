"""A node's home directory: ``alloranet init`` and the local testnet's homes.

Layout::

    HOME/config.toml          the node's options, commented (alloranet.node.config)
    HOME/genesis.json         the chain's first state (shared by every node of a chain)
    HOME/node_key.json        libp2p identity (0600): the peer id others dial
    HOME/validator_key.json   consensus signing key (0600)
    HOME/data/                blocks and state (SQLite), consensus WAL, signer state
    HOME/keys/                account keys (``alloranet keys``)

Why keys are never overwritten: a validator key that changes under a running chain is a
different validator, and a replaced signer state is how double signs happen. ``init`` on an
existing home refuses unless told to rewrite the config and genesis only.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alloranet.crypto import PrivateKey, load_key, save_key
from alloranet.errors import ConfigError
from alloranet.node.config import (
    CONFIG_FILE,
    DATA_DIR,
    GENESIS_FILE,
    NODE_KEY_FILE,
    TIMEOUT_PRESETS,
    VALIDATOR_KEY_FILE,
    ConsensusSection,
    NodeConfig,
    P2PSection,
    RpcSection,
    render_config_toml,
)
from alloranet.node.genesis import GenesisSpec, save_genesis, single_validator_genesis
from alloranet.p2p.identity import load_peer_id


@dataclass(frozen=True)
class InitResult:
    home: str
    moniker: str
    chain_id: str
    validator_public_key: str
    validator_address: str
    peer_id: str
    p2p_address: str
    api: str


def load_or_create_validator_key(home: Path) -> PrivateKey:
    path = home / VALIDATOR_KEY_FILE
    if path.exists():
        return load_key(path)
    key = PrivateKey.generate()
    save_key(path, key, None, name="validator")
    return key


def init_home(
    home: Path,
    *,
    moniker: str,
    chain_id: str,
    p2p_port: int = 26656,
    rpc_port: int = 1317,
    bootstrap: tuple[str, ...] = (),
    preset: str = "local",
    genesis: GenesisSpec | None = None,
    overwrite: bool = False,
    validator_key: PrivateKey | None = None,
) -> InitResult:
    """Create (or, with ``overwrite``, rewrite the config and genesis of) a node home."""
    if preset not in TIMEOUT_PRESETS:
        raise ConfigError(f"--preset must be one of {sorted(TIMEOUT_PRESETS)}")
    if (home / CONFIG_FILE).exists() and not overwrite:
        raise ConfigError(f"{home / CONFIG_FILE} exists: this home is initialised (--overwrite)")
    home.mkdir(parents=True, exist_ok=True)
    (home / DATA_DIR).mkdir(exist_ok=True)
    if validator_key is not None and not (home / VALIDATOR_KEY_FILE).exists():
        save_key(home / VALIDATOR_KEY_FILE, validator_key, None, name="validator")
    key = load_or_create_validator_key(home)
    peer_id = load_peer_id(home / NODE_KEY_FILE)
    config = NodeConfig(
        moniker=moniker,
        chain_id=chain_id,
        p2p=P2PSection(listen=(f"/ip4/127.0.0.1/tcp/{p2p_port}",), bootstrap=bootstrap),
        rpc=RpcSection(listen=f"127.0.0.1:{rpc_port}"),
        consensus=ConsensusSection(preset=preset, **TIMEOUT_PRESETS[preset]),  # type: ignore[arg-type]
    )
    (home / CONFIG_FILE).write_text(render_config_toml(config))
    spec = genesis or single_validator_genesis(chain_id, key.public_key, moniker)
    if spec.chain_id != chain_id:
        raise ConfigError(f"genesis is for chain {spec.chain_id!r}, not {chain_id!r}")
    save_genesis(home / GENESIS_FILE, spec)
    return InitResult(
        home=str(home),
        moniker=moniker,
        chain_id=chain_id,
        validator_public_key=key.public_key.hex(),
        validator_address=key.address,
        peer_id=peer_id,
        p2p_address=f"/ip4/127.0.0.1/tcp/{p2p_port}/p2p/{peer_id}",
        api=f"http://127.0.0.1:{rpc_port}",
    )


def result_dict(result: InitResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
