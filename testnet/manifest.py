"""``ROOT/testnet.json``: what a local testnet consists of (written once by ``testnet up``).

Why a file: ``testnet status``, ``down`` and ``logs`` run as separate commands, possibly from
another shell, and find the nodes, their API URLs and their processes through it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "testnet.json"


class TestnetError(Exception):
    """A testnet command that cannot proceed (no manifest, a node failed to start, ...)."""


@dataclass(frozen=True)
class NodeEntry:
    name: str
    home: str
    api: str
    p2p: str


@dataclass(frozen=True)
class ActorEntry:
    name: str
    role: str
    index: int
    key: str


@dataclass(frozen=True)
class Manifest:
    chain_id: str
    seed: int
    faucet_key: str
    nodes: tuple[NodeEntry, ...]
    actors: tuple[ActorEntry, ...] = ()
    topic: dict[str, Any] = field(default_factory=dict)

    def node(self, index: int) -> NodeEntry:
        if not 0 <= index < len(self.nodes):
            raise TestnetError(f"no node {index}: this testnet has nodes 0..{len(self.nodes) - 1}")
        return self.nodes[index]


def save_manifest(root: Path, manifest: Manifest) -> Path:
    path = root / MANIFEST
    path.write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return path


def manifest_from_dict(raw: dict[str, Any]) -> Manifest:
    return Manifest(
        chain_id=raw["chain_id"],
        seed=raw["seed"],
        faucet_key=raw["faucet_key"],
        nodes=tuple(NodeEntry(**n) for n in raw["nodes"]),
        actors=tuple(ActorEntry(**a) for a in raw.get("actors", ())),
        topic=raw.get("topic", {}),
    )


def load_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    try:
        return manifest_from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise TestnetError(f"no testnet at {root} (missing {MANIFEST}): run `testnet up`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise TestnetError(f"{path} is damaged: {exc}") from None
