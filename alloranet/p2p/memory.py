"""In-process twin of the libp2p host, with the same asyncio face, for simulation tests.

Why: consensus and node tests need many hosts, partitions and restarts in milliseconds, with
no threads, sockets or trio. The twin keeps the semantics that matter: gossip floods over
connections with de-duplication by content hash (so it crosses multi-hop topologies),
validators with ACCEPT/IGNORE/REJECT, scoring and bans, size caps that raise, the fault hook,
and request/response with timeouts and caps. Peer ids are plain strings; multiaddrs are
``/memory/<peer id>``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time

from alloranet.p2p.config import validate_channel_name
from alloranet.p2p.errors import (
    HostClosedError,
    MessageTooLargeError,
    P2PError,
    PeerUnreachableError,
    RemoteError,
    RequestTimeoutError,
)
from alloranet.p2p.inbox import Inbox
from alloranet.p2p.scoring import PeerScores
from alloranet.p2p.types import Inbound, RequestHandler, Validator, Verdict

log = logging.getLogger(__name__)

_SEEN_LIMIT = 100_000


class MemoryNetwork:
    """The shared medium: which hosts exist and which pairs are connected."""

    def __init__(self) -> None:
        self.hosts: dict[str, MemoryHost] = {}
        self.links: set[frozenset[str]] = set()

    def create_host(self, peer_id: str) -> MemoryHost:
        return MemoryHost(self, peer_id)

    def _is_linked(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.links

    def _unlink_all(self, peer_id: str) -> None:
        self.links = {link for link in self.links if peer_id not in link}


class MemoryHost:
    """Same face as :class:`alloranet.p2p.host.P2PHost`; see alloranet.p2p.types.P2PHostAPI."""

    def __init__(
        self,
        network: MemoryNetwork,
        peer_id: str,
        *,
        max_gossip_size: int = 1_000_000,
        max_request_size: int = 1024 * 1024,
        max_response_size: int = 16 * 1024 * 1024,
        inbound_queue_limit: int = 20_000,
        ban_threshold: float = -30.0,
        ban_seconds: float = 60.0,
    ) -> None:
        if not peer_id or "/" in peer_id:
            raise ValueError(f"bad memory peer id {peer_id!r}")
        self._network = network
        self._peer_id = peer_id
        self._max_gossip = max_gossip_size
        self._max_request = max_request_size
        self._max_response = max_response_size
        self._inbox_limit = inbound_queue_limit
        self._subs: dict[str, tuple[Inbox, Validator | None]] = {}
        self._handlers: dict[str, RequestHandler] = {}
        self._blocked: set[str] = set()
        self._seen: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._scores = PeerScores(
            threshold=ban_threshold, ban_seconds=ban_seconds, decay_per_s=1.0, now=time.monotonic
        )
        self._running = False

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def listen_addrs(self) -> list[str]:
        return [f"/memory/{self._peer_id}"]

    async def start(self) -> None:
        if self._peer_id in self._network.hosts and self._network.hosts[self._peer_id].running:
            raise P2PError(f"memory host {self._peer_id} is already running")
        self._network.hosts[self._peer_id] = self
        self._running = True

    @property
    def running(self) -> bool:
        return self._running

    async def close(self, timeout: float = 5.0) -> None:
        if not self._running:
            return
        self._running = False
        self._network._unlink_all(self._peer_id)
        for inbox, _ in self._subs.values():
            inbox.close()

    def _check_running(self) -> None:
        if not self._running:
            raise HostClosedError(f"memory host {self._peer_id} is not running")

    # --- peers --------------------------------------------------------------------------
    async def connect(self, multiaddr: str) -> None:
        self._check_running()
        prefix = "/memory/"
        if not multiaddr.startswith(prefix):
            raise PeerUnreachableError(f"not a memory address: {multiaddr!r}")
        other_id = multiaddr[len(prefix) :].split("/")[0]
        other = self._network.hosts.get(other_id)
        if other is None or not other.running or other_id == self._peer_id:
            raise PeerUnreachableError(f"no memory host {other_id!r} is running")
        if not self._may_talk(other) or not other._may_talk(self):
            raise PeerUnreachableError(f"connection to {other_id} refused (blocked or banned)")
        self._network.links.add(frozenset((self._peer_id, other_id)))

    async def disconnect(self, peer_id: str) -> None:
        self._network.links.discard(frozenset((self._peer_id, peer_id)))

    def peers(self) -> list[str]:
        return sorted(
            other
            for link in self._network.links
            if self._peer_id in link
            for other in link
            if other != self._peer_id
        )

    def _may_talk(self, other: MemoryHost) -> bool:
        return other.peer_id not in self._blocked and not self._scores.is_banned(other.peer_id)

    # --- gossip -------------------------------------------------------------------------
    def subscribe(self, channel: str, validator: Validator | None = None) -> Inbox:
        validate_channel_name(channel)
        if channel in self._subs:
            raise P2PError(f"already subscribed to {channel!r}")
        inbox = Inbox(channel, self._inbox_limit)
        self._subs[channel] = (inbox, validator)
        return inbox

    async def publish(self, channel: str, data: bytes) -> None:
        self._check_running()
        validate_channel_name(channel)
        if len(data) > self._max_gossip:
            raise MessageTooLargeError(
                f"gossip message of {len(data)} bytes exceeds {self._max_gossip}"
            )
        msg_id = hashlib.sha256(channel.encode() + b"\0" + data).digest()
        self._mark_seen(msg_id)
        self._forward(channel, self._peer_id, self._peer_id, msg_id, data)
        await asyncio.sleep(0)

    def _mark_seen(self, msg_id: bytes) -> bool:
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    def _forward(self, channel: str, origin: str, skip: str, msg_id: bytes, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        for other_id in self.peers():
            other = self._network.hosts.get(other_id)
            if other_id == skip or other is None or not self._may_talk(other):
                continue
            loop.call_soon(other._receive, channel, origin, self._peer_id, msg_id, data)

    def _receive(
        self, channel: str, origin: str, forwarder: str, msg_id: bytes, data: bytes
    ) -> None:
        if not self._running or forwarder in self._blocked or self._scores.is_banned(forwarder):
            return
        if not self._network._is_linked(self._peer_id, forwarder):
            return
        sub = self._subs.get(channel)
        if sub is None or not self._mark_seen(msg_id):
            return
        inbox, validator = sub
        verdict = (
            Verdict.ACCEPT if validator is None else _safe_validate(validator, forwarder, data)
        )
        if verdict is Verdict.REJECT:
            self.penalise(forwarder, "invalid_message")
            return
        if verdict is Verdict.IGNORE:
            return
        inbox.put_many([Inbound(channel, origin, forwarder, data)])
        self._forward(channel, origin, forwarder, msg_id, data)

    async def send_direct(self, peer_id: str, channel: str, data: bytes) -> None:
        self._check_running()
        validate_channel_name(channel)
        if len(data) > self._max_gossip:
            raise MessageTooLargeError(f"direct message of {len(data)} bytes exceeds the cap")
        other = self._network.hosts.get(peer_id)
        if other is None or not self._network._is_linked(self._peer_id, peer_id):
            raise PeerUnreachableError(f"peer {peer_id} is not connected")
        if not self._may_talk(other):
            raise PeerUnreachableError(f"peer {peer_id} is blocked or banned")
        asyncio.get_running_loop().call_soon(other._receive_direct, channel, self._peer_id, data)

    async def broadcast_direct(self, channel: str, data: bytes) -> list[str]:
        failed = []
        for peer in self.peers():
            try:
                await self.send_direct(peer, channel, data)
            except PeerUnreachableError:
                failed.append(peer)
        return failed

    def _receive_direct(self, channel: str, sender: str, data: bytes) -> None:
        if not self._running or sender in self._blocked or self._scores.is_banned(sender):
            return
        sub = self._subs.get(channel)
        if sub is None:
            return
        inbox, validator = sub
        verdict = Verdict.ACCEPT if validator is None else _safe_validate(validator, sender, data)
        if verdict is Verdict.REJECT:
            self.penalise(sender, "invalid_message")
        elif verdict is Verdict.ACCEPT:
            inbox.put_many([Inbound(channel, sender, sender, data)])

    # --- request/response ---------------------------------------------------------------
    def set_request_handler(self, protocol: str, handler: RequestHandler) -> None:
        self._handlers[validate_channel_name(protocol)] = handler

    async def request(self, peer_id: str, protocol: str, data: bytes, timeout: float) -> bytes:
        self._check_running()
        if len(data) > self._max_request:
            raise MessageTooLargeError(f"request of {len(data)} bytes exceeds {self._max_request}")
        other = self._network.hosts.get(peer_id)
        if (
            other is None
            or not other.running
            or not self._network._is_linked(self._peer_id, peer_id)
            or not self._may_talk(other)
            or not other._may_talk(self)
        ):
            raise PeerUnreachableError(f"peer {peer_id} is not connected")
        handler = other._handlers.get(protocol)
        if handler is None:
            raise RemoteError(f"peer {peer_id} has no handler for {protocol!r}")
        try:
            response = await asyncio.wait_for(handler(self._peer_id, data), timeout)
        except TimeoutError:
            raise RequestTimeoutError(f"{protocol} request to {peer_id} timed out") from None
        except P2PError:
            raise
        except Exception as exc:
            raise RemoteError(f"remote handler failed: {exc}") from None
        if len(response) > min(self._max_response, other._max_response):
            raise RemoteError(f"response of {len(response)} bytes exceeds the limit")
        return response

    # --- faults and scoring -------------------------------------------------------------
    def block_peers(self, peer_ids: set[str]) -> None:
        self._blocked |= set(peer_ids)
        for peer in peer_ids:
            self._network.links.discard(frozenset((self._peer_id, peer)))

    def unblock_peers(self, peer_ids: set[str] | None = None) -> None:
        self._blocked = set() if peer_ids is None else self._blocked - set(peer_ids)

    def penalise(self, peer_id: str, reason: str) -> None:
        if self._scores.penalise(peer_id, reason):
            log.warning("memory p2p: banning %s (%s)", peer_id, reason)
            self._network.links.discard(frozenset((self._peer_id, peer_id)))


def _safe_validate(validator: Validator, forwarder: str, data: bytes) -> Verdict:
    """A validator that raises counts as REJECT: bad input must never crash delivery."""
    try:
        verdict = validator(forwarder, data)
    except Exception as exc:
        log.debug("validator raised %s: treating as REJECT", exc)
        return Verdict.REJECT
    return verdict if isinstance(verdict, Verdict) else Verdict.REJECT
