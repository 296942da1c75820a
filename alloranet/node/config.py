"""The node's configuration: one TOML file in ``HOME/config.toml``, schema and loading.

Why a typed schema: an operator's typo must become one clear line ("config.toml: [rpc] listen
must be host:port") at start-up, not a crash minutes later. Every field has a default so a file
written by an older ``alloranet init`` keeps working; unknown keys are rejected so that a
misspelt option is not silently ignored.

Two timeout presets: ``local`` (blocks well under a second, for the testnet on one machine) and
``production`` (CometBFT's defaults: 3 s propose, 1 s prevote/precommit, 1 s commit).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alloranet.config import load_toml
from alloranet.errors import ConfigError

CONFIG_FILE = "config.toml"
GENESIS_FILE = "genesis.json"
NODE_KEY_FILE = "node_key.json"
VALIDATOR_KEY_FILE = "validator_key.json"
DATA_DIR = "data"

#: Consensus timeouts in milliseconds, (propose, propose_delta, vote, vote_delta, commit).
TIMEOUT_PRESETS: dict[str, dict[str, int]] = {
    "local": {
        "timeout_propose_ms": 400,
        "timeout_propose_delta_ms": 100,
        "timeout_vote_ms": 200,
        "timeout_vote_delta_ms": 100,
        "timeout_commit_ms": 150,
    },
    "production": {
        "timeout_propose_ms": 3000,
        "timeout_propose_delta_ms": 500,
        "timeout_vote_ms": 1000,
        "timeout_vote_delta_ms": 500,
        "timeout_commit_ms": 1000,
    },
}


@dataclass(frozen=True)
class P2PSection:
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/26656",)
    bootstrap: tuple[str, ...] = ()
    max_peers: int = 50
    #: Transaction batches go to each connected peer over its bulk direct stream instead of
    #: gossipsub: about half the CPU per transaction, and votes no longer share the gossip
    #: router's time with tx bursts (benchmarks/testnet_load.py). There is no forwarding, so
    #: it suits validators that all connect to each other (the local testnet); a sparse
    #: topology should turn it off so transactions are forwarded hop by hop.
    tx_direct: bool = True


@dataclass(frozen=True)
class RpcSection:
    listen: str = "127.0.0.1:1317"
    max_body_bytes: int = 1 << 20


@dataclass(frozen=True)
class ConsensusSection:
    preset: str = "local"
    timeout_propose_ms: int = TIMEOUT_PRESETS["local"]["timeout_propose_ms"]
    timeout_propose_delta_ms: int = TIMEOUT_PRESETS["local"]["timeout_propose_delta_ms"]
    timeout_vote_ms: int = TIMEOUT_PRESETS["local"]["timeout_vote_ms"]
    timeout_vote_delta_ms: int = TIMEOUT_PRESETS["local"]["timeout_vote_delta_ms"]
    timeout_commit_ms: int = TIMEOUT_PRESETS["local"]["timeout_commit_ms"]
    skip_timeout_commit: bool = False
    max_block_txs: int = 5000
    max_block_bytes: int = 4 << 20
    create_empty_blocks: bool = True


@dataclass(frozen=True)
class MempoolSection:
    #: Two full blocks' worth (max_block_txs 5000): enough to fill every proposal, and under
    #: saturation each node keeps RSS under its 200 MB budget (benchmarks/testnet_load.py).
    max_txs: int = 10_000
    max_bytes: int = 64 << 20
    max_tx_bytes: int = 64 << 10
    gossip_flush_ms: int = 100
    gossip_batch_bytes: int = 256 << 10


@dataclass(frozen=True)
class LogSection:
    level: str = "info"
    format: str = "json"


@dataclass(frozen=True)
class NodeConfig:
    moniker: str = "node"
    chain_id: str = "alloranet-local"
    validator: bool = True
    shutdown_timeout_s: float = 10.0
    p2p: P2PSection = field(default_factory=P2PSection)
    rpc: RpcSection = field(default_factory=RpcSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    log: LogSection = field(default_factory=LogSection)


_SECTIONS: dict[str, type[Any]] = {
    "p2p": P2PSection,
    "rpc": RpcSection,
    "consensus": ConsensusSection,
    "mempool": MempoolSection,
    "log": LogSection,
}


def _coerce(where: str, name: str, expected: Any, value: Any) -> Any:
    """Check one value against the dataclass field's default type; tuples come from lists."""
    if isinstance(expected, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} {name} must be true or false")
        return value
    if isinstance(expected, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where} {name} must be a non-negative integer")
        return value
    if isinstance(expected, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where} {name} must be a positive number")
        return float(value)
    if isinstance(expected, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} {name} must be a string")
        return value
    if isinstance(expected, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} {name} must be a list of strings")
        return tuple(value)
    raise ConfigError(f"{where} {name}: unsupported value")  # pragma: no cover


def _build(cls: type[Any], where: str, raw: dict[str, Any]) -> Any:
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where} unknown option {unknown[0]!r}")
    values = {
        name: _coerce(where, name, getattr(defaults, name), value)
        for name, value in raw.items()
        if name not in _SECTIONS
    }
    return cls(**values)


def parse_config(raw: dict[str, Any], source: str = CONFIG_FILE) -> NodeConfig:
    """A :class:`NodeConfig` from parsed TOML; raises :class:`ConfigError` naming the field."""
    top = {k: v for k, v in raw.items() if k not in _SECTIONS}
    base: NodeConfig = _build(NodeConfig, f"{source}:", top)
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        section = raw.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        where = f"{source}: [{name}]"
        if name == "consensus":
            preset = section.get("preset", "local")
            if preset not in TIMEOUT_PRESETS:
                raise ConfigError(f"{where} preset must be one of {sorted(TIMEOUT_PRESETS)}")
            section = {**TIMEOUT_PRESETS[preset], **section}
        sections[name] = _build(cls, where, section)
    config = dataclasses.replace(base, **sections)
    validate_config(config, source)
    return config


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what} must be host:port, got {text!r}")
    return host, int(port)


def validate_config(config: NodeConfig, source: str = CONFIG_FILE) -> None:
    parse_host_port(config.rpc.listen, f"{source}: [rpc] listen")
    if config.log.level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"{source}: [log] level must be debug, info, warning or error")
    if config.log.format not in ("json", "text"):
        raise ConfigError(f"{source}: [log] format must be json or text")
    if not config.p2p.listen:
        raise ConfigError(f"{source}: [p2p] listen needs at least one multiaddr")
    for addr in (*config.p2p.listen, *config.p2p.bootstrap):
        if not addr.startswith("/"):
            raise ConfigError(f"{source}: [p2p] {addr!r} is not a multiaddr (/ip4/.../tcp/...)")
    if config.mempool.max_tx_bytes > config.mempool.max_bytes:
        raise ConfigError(f"{source}: [mempool] max_tx_bytes exceeds max_bytes")
    if config.consensus.timeout_propose_ms == 0 or config.consensus.timeout_vote_ms == 0:
        raise ConfigError(f"{source}: [consensus] timeouts must be positive")


def load_config(home: Path) -> NodeConfig:
    """Read ``HOME/config.toml``; a missing home tells the user to run ``alloranet init``."""
    path = home / CONFIG_FILE
    if not path.exists():
        raise ConfigError(f"{path} not found: run `alloranet init --home {home}` first")
    return parse_config(load_toml(path), str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")  # pragma: no cover


_COMMENTS: dict[str, str] = {
    "moniker": "A human-readable name for this node (shown in status and logs).",
    "chain_id": "Must match genesis.json; transactions signed for another chain are refused.",
    "validator": "Sign proposals and votes with validator_key.json (false: a full node).",
    "shutdown_timeout_s": "Hard limit for a graceful stop on SIGTERM/SIGINT, in seconds.",
    "p2p.listen": "libp2p listen multiaddrs (TCP + Noise).",
    "p2p.bootstrap": "Peers to dial at start and redial when lost: /ip4/H/tcp/P/p2p/PEER_ID.",
    "p2p.max_peers": "Connections beyond this are refused.",
    "p2p.tx_direct": "Send tx batches to each peer directly (full mesh); false: gossip them.",
    "rpc.listen": "HTTP API address. Keep it on loopback unless a proxy guards it.",
    "rpc.max_body_bytes": "Largest accepted request body (transactions are far smaller).",
    "consensus.preset": 'Timeout preset: "local" (sub-second blocks) or "production" (CometBFT).',
    "consensus.timeout_propose_ms": "Wait this long for a proposal in round 0 ...",
    "consensus.timeout_propose_delta_ms": "... plus this much per further round.",
    "consensus.timeout_vote_ms": "Prevote/precommit timeout in round 0 ...",
    "consensus.timeout_vote_delta_ms": "... plus this much per further round.",
    "consensus.timeout_commit_ms": "Pause after a commit so slower validators' votes get in.",
    "consensus.skip_timeout_commit": "Skip that pause once every precommit has arrived.",
    "consensus.max_block_txs": "Most transactions a proposer puts in one block.",
    "consensus.max_block_bytes": "Most transaction bytes a proposer puts in one block.",
    "consensus.create_empty_blocks": "Produce blocks even when the mempool is empty.",
    "mempool.max_txs": "Admission stops (back-pressure: HTTP 503) beyond this many txs ...",
    "mempool.max_bytes": "... or beyond this many bytes.",
    "mempool.max_tx_bytes": "Larger transactions are refused outright.",
    "mempool.gossip_flush_ms": "Transactions are gossiped in batches flushed this often ...",
    "mempool.gossip_batch_bytes": "... or as soon as a batch reaches this size.",
    "log.level": "debug, info, warning or error.",
    "log.format": '"json" (one object per line) or "text".',
}


def render_config_toml(config: NodeConfig) -> str:
    """The config as commented TOML: the file an operator reads and edits."""
    lines = [
        "# alloranet node configuration (written by `alloranet init`).",
        "# Every option has a default; delete a line to go back to it.",
        "",
    ]
    for f in dataclasses.fields(config):
        if f.name in _SECTIONS:
            continue
        lines.append(f"# {_COMMENTS[f.name]}")
        lines.append(f"{f.name} = {_toml_value(getattr(config, f.name))}")
    for name in _SECTIONS:
        section = getattr(config, name)
        lines.extend(["", f"[{name}]"])
        for f in dataclasses.fields(section):
            lines.append(f"# {_COMMENTS[f'{name}.{f.name}']}")
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
    return "\n".join(lines) + "\n"
