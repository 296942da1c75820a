"""The shapes every p2p host shares: verdicts, inbound messages, handler signatures, the face.

Why a Protocol: the node depends on ``P2PHostAPI`` only, so the real libp2p host and the
in-memory twin are interchangeable and the node never imports trio or libp2p.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


class Verdict(enum.Enum):
    """What a validator decides about one gossip message.

    ACCEPT delivers it and forwards it; IGNORE drops it without blaming anyone (e.g. a
    duplicate or a stale vote); REJECT drops it and scores the forwarding peer down.
    """

    ACCEPT = "accept"
    IGNORE = "ignore"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Inbound:
    """One gossip message delivered to a subscriber.

    ``origin`` is the peer id that signed and published it, ``forwarder`` the neighbour that
    handed it to us (the one to blame if it is invalid).
    """

    channel: str
    origin: str
    forwarder: str
    data: bytes


#: ``validator(forwarder_peer_id, data) -> Verdict``. Runs on the network thread for the real
#: host: it must be cheap, thread-safe and must not touch asyncio objects.
Validator = Callable[[str, bytes], Verdict]
#: ``handler(peer_id, request_bytes) -> response_bytes``; runs on the asyncio loop.
RequestHandler = Callable[[str, bytes], Awaitable[bytes]]


class Subscription(Protocol):
    """An async iterator of :class:`Inbound` that can be closed."""

    def __aiter__(self) -> AsyncIterator[Inbound]: ...

    async def __anext__(self) -> Inbound: ...

    def close(self) -> None: ...


class P2PHostAPI(Protocol):
    """The asyncio face of a p2p host (real libp2p or the memory twin)."""

    @property
    def peer_id(self) -> str: ...

    @property
    def listen_addrs(self) -> list[str]: ...

    async def start(self) -> None: ...

    async def close(self, timeout: float = 5.0) -> None: ...

    async def connect(self, multiaddr: str) -> None: ...

    async def disconnect(self, peer_id: str) -> None: ...

    def peers(self) -> list[str]: ...

    def subscribe(self, channel: str, validator: Validator | None = None) -> Subscription: ...

    async def publish(self, channel: str, data: bytes) -> None: ...

    async def send_direct(self, peer_id: str, channel: str, data: bytes) -> None: ...

    async def broadcast_direct(self, channel: str, data: bytes) -> list[str]: ...

    def set_request_handler(self, protocol: str, handler: RequestHandler) -> None: ...

    async def request(self, peer_id: str, protocol: str, data: bytes, timeout: float) -> bytes: ...

    def block_peers(self, peer_ids: set[str]) -> None: ...

    def unblock_peers(self, peer_ids: set[str] | None = None) -> None: ...

    def penalise(self, peer_id: str, reason: str) -> None: ...
