"""alloranet.p2p: libp2p transport with an asyncio face, plus an in-memory twin.

The node depends on :class:`P2PHostAPI` (types.py). Real host: ``alloranet.p2p.host.P2PHost``
(imported lazily here, because ``import libp2p`` costs about a second); in-process twin:
:class:`MemoryNetwork` / :class:`MemoryHost`. Wire protocol: docs/protocol.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alloranet.p2p.batcher import Batcher, decode_batch, encode_batch
from alloranet.p2p.config import P2PConfig, compute_protocol_id, compute_topic
from alloranet.p2p.errors import (
    HostClosedError,
    HostCrashedError,
    MessageTooLargeError,
    P2PError,
    PeerUnreachableError,
    ProtocolViolationError,
    RemoteError,
    RequestTimeoutError,
)
from alloranet.p2p.memory import MemoryHost, MemoryNetwork
from alloranet.p2p.types import (
    Inbound,
    P2PHostAPI,
    RequestHandler,
    Subscription,
    Validator,
    Verdict,
)

if TYPE_CHECKING:
    from alloranet.p2p.host import P2PHost


def __getattr__(name: str) -> Any:
    if name == "P2PHost":
        from alloranet.p2p.host import P2PHost

        return P2PHost
    raise AttributeError(name)


__all__ = [
    "Batcher",
    "HostClosedError",
    "HostCrashedError",
    "Inbound",
    "MemoryHost",
    "MemoryNetwork",
    "MessageTooLargeError",
    "P2PConfig",
    "P2PError",
    "P2PHost",
    "P2PHostAPI",
    "PeerUnreachableError",
    "ProtocolViolationError",
    "RemoteError",
    "RequestHandler",
    "RequestTimeoutError",
    "Subscription",
    "Validator",
    "Verdict",
    "compute_protocol_id",
    "compute_topic",
    "decode_batch",
    "encode_batch",
]
