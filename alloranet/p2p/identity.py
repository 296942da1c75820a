"""The node's persistent libp2p identity: an Ed25519 key in a 0600 file.

Why persistent: peers address a validator by its peer id (``/p2p/12D3KooW...``); a restart
with a new key would look like a new, unknown peer. The file holds the libp2p protobuf
encoding of the private key (libp2p.identity_utils), written 0600; a file readable by group or
others is refused, as ssh does, because the key is the node's network identity.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.identity_utils import load_identity, save_identity
from libp2p.peer.id import ID

from alloranet.errors import KeyFileError


def load_or_create_node_key(path: Path) -> Any:
    """The KeyPair stored at ``path``, creating a fresh Ed25519 one if the file is absent."""
    if path.exists():
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"node key {path} is accessible by others (chmod 600 it)")
        try:
            return load_identity(path)
        except Exception as exc:
            raise KeyFileError(f"node key {path} is unreadable: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key_pair = create_new_key_pair()
    try:
        save_identity(key_pair, path)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot write node key {path}: {exc}") from None
    return key_pair


def compute_peer_id(key_pair: Any) -> str:
    """The base58 peer id of a key pair (``12D3KooW...`` for Ed25519)."""
    return str(ID.from_pubkey(key_pair.public_key).to_base58())


def load_peer_id(path: Path) -> str:
    """The peer id of the key at ``path`` (creating the key if absent)."""
    return compute_peer_id(load_or_create_node_key(path))
