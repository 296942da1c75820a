"""The trio side of the real host: libp2p, gossipsub and our stream protocol in one thread.

Why a separate module: everything here runs on the network thread under ``trio.run``; the
asyncio face (host.py) only talks to it through ``TrioToken.run_sync_soon`` and hands results
back with ``loop.call_soon_threadsafe``. Shared state between the threads is limited to
immutable snapshots (``blocked``), a lock-protected score table, and deques.

The libp2p configuration follows spec/libp2p.md §6: Noise only, Yamux, heartbeat 1 s, adaptive
gossip and spam protection off, small degree, content-addressed message ids plus a nanosecond
seqno counter, the DecodeError guard, our own redial loop (evicting the swarm's negative cache),
publish pacing on the per-peer outbound queue depth, subscriptions drained at once.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from libp2p import new_host
from libp2p.abc import INotifee
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from alloranet.p2p import framing
from alloranet.p2p.config import (
    LIBP2P_RPC_LIMIT,
    P2PConfig,
    compute_direct_protocol_id,
    compute_protocol_id,
    compute_topic,
)
from alloranet.p2p.errors import (
    P2PError,
    PeerUnreachableError,
    ProtocolViolationError,
    RemoteError,
    RequestTimeoutError,
)
from alloranet.p2p.guard import install_pubsub_guard, patch_pubsub_teardown
from alloranet.p2p.types import Inbound, Validator, Verdict

log = logging.getLogger(__name__)

_FORWARDER_MEMORY = 4096


def compute_message_id(msg: Any) -> bytes:
    """Content-addressed gossip id: SHA-256 over topics and data (docs/protocol.md)."""
    h = hashlib.sha256()
    for topic in msg.topicIDs:
        h.update(topic.encode())
        h.update(b"\0")
    h.update(msg.data)
    return h.digest()


@dataclass(slots=True)
class PeerEntry:
    """A peer we keep connected to: its dial address and redial backoff state."""

    addr: str
    next_try: float = 0.0
    backoff: float = 0.0


class _Notifee(INotifee):
    def __init__(self, network: Network) -> None:
        self._network = network

    async def opened_stream(self, network: Any, stream: Any) -> None:
        pass

    async def closed_stream(self, network: Any, stream: Any) -> None:
        pass

    async def connected(self, network: Any, conn: Any) -> None:
        self._network.on_connected(conn.muxed_conn.peer_id)

    async def disconnected(self, network: Any, conn: Any) -> None:
        pass

    async def listen(self, network: Any, multiaddr: Any) -> None:
        pass

    async def listen_close(self, network: Any, multiaddr: Any) -> None:
        pass


async def read_exactly(stream: Any, n: int) -> bytes:
    """Read exactly ``n`` bytes or raise ProtocolViolationError on a short stream."""
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(n - len(buf))
        if not chunk:
            raise ProtocolViolationError(f"stream ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


class Network:
    """Owns the libp2p objects; every method runs on the trio thread unless marked."""

    def __init__(
        self,
        config: P2PConfig,
        key_pair: Any,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[Inbound], None],
        penalise: Callable[[str, str], bool],
        is_refused: Callable[[str], bool],
    ) -> None:
        self.config = config
        self.key_pair = key_pair
        self.loop = loop
        self._deliver = deliver
        self._penalise_cb = penalise
        self._is_refused = is_refused
        self.host: Any = None
        self.pubsub: Any = None
        self.nursery: trio.Nursery | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.my_id = ""
        self.listen_addrs: list[str] = []
        self.known: dict[str, PeerEntry] = {}
        self.handlers: dict[str, Callable[[str, bytes], Awaitable[bytes]]] = {}
        self._topics: dict[str, Validator | None] = {}
        self._forwarders: collections.OrderedDict[bytes, str] = collections.OrderedDict()
        self._blacklisted: set[str] = set()
        self._ensuring: set[str] = set()
        # Outgoing direct streams by (peer, lane); lane "prio" (consensus) or "bulk" (batches).
        self._direct_out: dict[tuple[str, str], Any] = {}
        self._direct_locks: dict[tuple[str, str], trio.Lock] = {}
        self._direct_used: dict[tuple[str, str], float] = {}  # last successful write
        self._direct_heard: dict[str, float] = {}  # last frame from a peer, this connection
        self._keepalive_busy: set[str] = set()
        self.dead_peers = 0
        self._stop = trio.Event()
        # Two lanes: consensus messages (votes, proposals) never wait behind bulk batches.
        self._prio: collections.deque[tuple[str, bytes, Any]] = collections.deque()
        self._bulk: collections.deque[tuple[str, bytes, Any]] = collections.deque()
        self._out_ready = trio.Event()
        self._bulk_topics: set[str] = set()
        self.published = 0

    # --- lifecycle -----------------------------------------------------------------------
    async def run(self, on_ready: Callable[[str, list[str]], None]) -> None:
        install_pubsub_guard()
        patch_pubsub_teardown()
        cfg = self.config
        maddrs = [Multiaddr(a) for a in cfg.listen_addrs]
        noise_key = create_x25519_key_pair()
        self.host = new_host(
            key_pair=self.key_pair,
            listen_addrs=maddrs,
            sec_opt={
                NOISE_PROTOCOL_ID: NoiseTransport(
                    self.key_pair, noise_privkey=noise_key.private_key
                )
            },
            muxer_preference="YAMUX",
            # Our redial loop keeps the validator set connected; libp2p's AutoConnector would
            # dial every peerstore address towards 50 connections (blocked peers included).
            connection_config=ConnectionConfig(
                min_connections=0,
                low_watermark=0,
                high_watermark=4 * cfg.max_peers + 16,
                max_connections=4 * cfg.max_peers + 16,
            ),
        )
        router = GossipSub(
            protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=cfg.gossip_degree,
            degree_low=cfg.gossip_degree_low,
            degree_high=cfg.gossip_degree_high,
            heartbeat_interval=cfg.heartbeat_interval,
            adaptive_gossip_enabled=False,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,
        )
        self.pubsub = Pubsub(
            self.host,
            router,
            msg_id_constructor=compute_message_id,
            max_inbound_rpc_size=LIBP2P_RPC_LIMIT,
        )
        self.pubsub.alloranet_on_malformed = self._on_malformed
        self.my_id = str(self.host.get_id().to_base58())
        try:
            await self._serve_forever(maddrs, router, on_ready)
        finally:
            # The seen-cache runs its own sweeper thread; stop it or it leaks past close().
            seen = getattr(self.pubsub, "seen_messages", None)
            if seen is not None and hasattr(seen, "stop"):
                seen.stop()

    async def _serve_forever(
        self, maddrs: list[Any], router: Any, on_ready: Callable[[str, list[str]], None]
    ) -> None:
        cfg = self.config
        async with (
            self.host.run(maddrs),
            background_trio_service(self.pubsub),
            background_trio_service(router),
        ):
            await self.pubsub.wait_until_ready()
            # Seqnos must never repeat across restarts (spec §5): nanoseconds since the epoch.
            self.pubsub.counter = time.time_ns()
            self.host.get_network().register_notifee(_Notifee(self))
            for protocol in list(self.handlers):
                self._register_stream_handler(protocol)
            self.host.set_stream_handler(
                TProtocol(compute_direct_protocol_id(cfg.network_id)), self._serve_direct
            )
            self.listen_addrs = [str(a) for a in self.host.get_addrs()]
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.token = trio.lowlevel.current_trio_token()
                for topic in list(self._topics):
                    await self._subscribe(topic)
                for addr in cfg.bootstrap:
                    self._remember(addr)
                nursery.start_soon(self._publisher)
                nursery.start_soon(self._redial_loop)
                on_ready(self.my_id, self.listen_addrs)
                await self._stop.wait()
                nursery.cancel_scope.cancel()

    def stop(self) -> None:
        self._stop.set()

    # --- gossip --------------------------------------------------------------------------
    def add_topic(self, topic: str, validator: Validator | None) -> None:
        """Record a subscription; subscribes at once when running (trio thread)."""
        self._topics[topic] = validator
        if self.nursery is not None:
            self.nursery.start_soon(self._subscribe, topic)

    async def _subscribe(self, topic: str) -> None:
        validator = self._topics[topic]
        self.pubsub.set_topic_validator(topic, self._make_validator(validator), False)
        sub = await self.pubsub.subscribe(topic)
        assert self.nursery is not None
        self.nursery.start_soon(self._drain, topic, sub)

    def _make_validator(self, validator: Validator | None) -> Callable[[Any, Any], bool]:
        def check(forwarder: Any, msg: Any) -> bool:
            fwd = str(forwarder.to_base58())
            if fwd == self.my_id:
                return True
            if self._is_refused(fwd):
                return False
            if len(self._forwarders) >= _FORWARDER_MEMORY:
                self._forwarders.popitem(last=False)
            self._forwarders[compute_message_id(msg)] = fwd
            if validator is None:
                return True
            try:
                verdict = validator(fwd, msg.data)
            except Exception as exc:
                log.debug("p2p: validator raised %s: REJECT", exc)
                verdict = Verdict.REJECT
            if verdict is Verdict.ACCEPT:
                return True
            if verdict is not Verdict.IGNORE:
                self.penalise(fwd, "invalid_message")
            return False

        return check

    async def _drain(self, topic: str, sub: Any) -> None:
        """Move messages out of libp2p's 32-slot channel at once (spec §6.6)."""
        while True:
            msg = await sub.get()
            origin = str(ID(msg.from_id).to_base58())
            if origin == self.my_id:
                continue
            forwarder = self._forwarders.pop(compute_message_id(msg), origin)
            self._deliver(Inbound(topic, origin, forwarder, msg.data))

    def set_bulk_topics(self, topics: set[str]) -> None:
        self._bulk_topics = set(topics)

    def enqueue_publish(self, topic: str, data: bytes, future: Any) -> None:
        """Trio thread; the asyncio side bounds how many publishes are pending."""
        (self._bulk if topic in self._bulk_topics else self._prio).append((topic, data, future))
        self._out_ready.set()

    async def _next_publish(self) -> tuple[str, bytes, Any, bool]:
        while not self._prio and not self._bulk:
            self._out_ready = trio.Event()
            await self._out_ready.wait()
        if self._prio:
            return (*self._prio.popleft(), True)
        return (*self._bulk.popleft(), False)

    async def _publisher(self) -> None:
        """Paces publishes: waits while any peer's outbound queue is near libp2p's 32 slots.

        Consensus (priority) messages may fill the queue further than bulk batches, so a
        backlog of transaction batches never delays a vote behind it.
        """
        cfg = self.config
        interval = 1.0 / cfg.publish_rate if cfg.publish_rate > 0 else 0.0
        next_at = trio.current_time()
        while True:
            topic, data, future, priority = await self._next_publish()
            if interval and not priority:
                now = trio.current_time()
                if next_at > now:
                    await trio.sleep(next_at - now)
                next_at = max(now, next_at) + interval
            high_water = 28 if priority else cfg.outbound_queue_high_water
            waited = 0.0
            while self._max_queue_depth() > high_water and waited < 5.0:
                await trio.sleep(0.002)
                waited += 0.002
            try:
                await self.pubsub.publish(topic, data)
                self.published += 1
                self._resolve(future, None)
            except Exception as exc:
                self._resolve(future, P2PError(f"publish failed: {exc!r}"))

    def _max_queue_depth(self) -> int:
        queues = getattr(self.pubsub, "peer_queues", {})
        return max((len(q) for q in list(queues.values())), default=0)

    def _resolve(self, future: Any, error: BaseException | None) -> None:
        def apply() -> None:
            if future.done():
                return
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

        self.loop.call_soon_threadsafe(apply)

    # --- peers ---------------------------------------------------------------------------
    def _remember(self, addr: str) -> str:
        info = info_from_p2p_addr(Multiaddr(addr))
        peer = str(info.peer_id.to_base58())
        if peer != self.my_id:
            self.known.setdefault(peer, PeerEntry(addr)).addr = addr
        return peer

    async def connect(self, addr: str) -> None:
        try:
            info = info_from_p2p_addr(Multiaddr(addr))
        except Exception as exc:
            raise PeerUnreachableError(f"bad multiaddr {addr!r}: {exc}") from None
        peer = str(info.peer_id.to_base58())
        if self._is_refused(peer):
            raise PeerUnreachableError(f"peer {peer} is blocked or banned")
        self._remember(addr)
        await self._dial(info)

    async def _dial(self, info: Any) -> None:
        network = self.host.get_network()
        cache = getattr(network, "_negative_peer_cache", None)
        if cache is not None:  # libp2p refuses redials for 60 s after a failure otherwise
            cache.evict(str(info.peer_id))
        try:
            with trio.fail_after(self.config.dial_timeout):
                await self.host.connect(info)
        except trio.TooSlowError:
            raise PeerUnreachableError(f"dial to {info.peer_id} timed out") from None
        except Exception as exc:
            raise PeerUnreachableError(f"dial to {info.peer_id} failed: {exc}") from None

    async def disconnect(self, peer: str) -> None:
        self.known.pop(peer, None)
        await self._close_peer(peer)

    async def _close_peer(self, peer: str) -> None:
        try:
            await self.host.disconnect(ID.from_base58(peer))
        except Exception:
            log.debug("p2p: disconnect %s failed", peer, exc_info=True)

    def connected_peers(self) -> list[str]:
        return sorted(str(p.to_base58()) for p in self.host.get_connected_peers())

    def topic_peers(self, topic: str) -> list[str]:
        """Safe to call from any thread: a snapshot copy of libp2p's topic → peers map."""
        peers = self.pubsub.peer_topics.get(topic, ()) if self.pubsub is not None else ()
        return sorted(str(p.to_base58()) for p in list(peers))

    def on_connected(self, peer_id: Any) -> None:
        peer = str(peer_id.to_base58())
        self._direct_heard.pop(peer, None)  # silence is judged per connection
        too_many = len(self.host.get_connected_peers()) > self.config.max_peers
        if self._is_refused(peer) or (too_many and peer not in self.known):
            assert self.nursery is not None
            self.nursery.start_soon(self._close_peer, peer)

    def apply_refusals(self, refused: set[str]) -> None:
        """Cut existing connections to refused peers and blacklist them in pubsub."""
        for peer in refused:
            if peer not in self._blacklisted:
                self._blacklisted.add(peer)
                self.pubsub.add_to_blacklist(ID.from_base58(peer))
        assert self.nursery is not None
        for peer in self.connected_peers():
            if peer in refused:
                self.nursery.start_soon(self._close_peer, peer)

    def lift_refusals(self) -> None:
        for peer in list(self._blacklisted):
            if not self._is_refused(peer):
                self._blacklisted.discard(peer)
                self.pubsub.remove_from_blacklist(ID.from_base58(peer))

    async def _redial_loop(self) -> None:
        """Keeps every known peer connected, retrying with capped exponential backoff."""
        cfg = self.config
        while True:
            self.lift_refusals()
            connected = set(self.connected_peers())
            self._ensure_pubsub_streams(connected)
            now = trio.current_time()
            self._check_keepalives(connected, now)
            for peer, entry in list(self.known.items()):
                if peer in connected:
                    entry.backoff = 0.0
                    continue
                if self._is_refused(peer) or entry.next_try > now:
                    continue
                assert self.nursery is not None
                entry.backoff = min(
                    cfg.redial_backoff_max, max(cfg.redial_initial, entry.backoff * 2)
                )
                entry.next_try = now + entry.backoff + cfg.dial_timeout
                self.nursery.start_soon(self._redial_one, peer, entry)
            await trio.sleep(min(0.25, cfg.redial_initial))

    def _ensure_pubsub_streams(self, connected: set[str]) -> None:
        """Re-register connected peers that pubsub lost (e.g. they arrived while blacklisted)."""
        assert self.nursery is not None
        registered = {str(p.to_base58()) for p in list(self.pubsub.peers)}
        for peer in connected - registered - self._ensuring:
            if not self._is_refused(peer):
                self._ensuring.add(peer)
                self.nursery.start_soon(self._ensure_one, peer)

    async def _ensure_one(self, peer: str) -> None:
        try:
            with trio.move_on_after(self.config.dial_timeout):
                await self.pubsub.ensure_peer_stream(ID.from_base58(peer), self.config.dial_timeout)
        except Exception:
            log.debug("p2p: pubsub stream to %s failed", peer, exc_info=True)
        finally:
            self._ensuring.discard(peer)

    async def _redial_one(self, peer: str, entry: PeerEntry) -> None:
        try:
            await self._dial(info_from_p2p_addr(Multiaddr(entry.addr)))
            log.info("p2p: redialled %s", peer)
        except PeerUnreachableError as exc:
            log.debug("p2p: redial %s: %s", peer, exc)
        entry.next_try = trio.current_time() + entry.backoff

    # --- scoring -------------------------------------------------------------------------
    def penalise(self, peer: str, reason: str) -> None:
        if self._penalise_cb(peer, reason):
            log.warning("p2p: banning peer %s (%s)", peer, reason)
            self.apply_refusals({peer})

    def _on_malformed(self, peer_id: Any, exc: Exception) -> None:
        self.penalise(str(peer_id.to_base58()), "malformed_frame")

    # --- direct streams ------------------------------------------------------------------
    def _lane(self, channel: str) -> str:
        """Bulk channels (tx batches) get their own stream per peer, so a consensus message
        never queues behind a batch inside one stream (yamux frames interleave per stream)."""
        topic = compute_topic(self.config.network_id, channel)
        return "bulk" if topic in self._bulk_topics else "prio"

    async def send_direct(self, peer: str, channel: str, data: bytes) -> None:
        """Write one frame on our persistent direct stream to ``peer`` (opened on first use)."""
        frame = framing.encode_direct(channel, data, self.config.max_gossip_size)
        await self._write_direct(peer, self._lane(channel), frame)

    async def _write_direct(self, peer: str, lane: str, frame: bytes) -> None:
        if self._is_refused(peer):
            raise PeerUnreachableError(f"peer {peer} is blocked or banned")
        key = (peer, lane)
        lock = self._direct_locks.setdefault(key, trio.Lock())
        async with lock:
            for attempt in (1, 2):
                stream = self._direct_out.get(key)
                try:
                    if stream is None:
                        pid = TProtocol(compute_direct_protocol_id(self.config.network_id))
                        with trio.fail_after(self.config.dial_timeout):
                            stream = await self.host.new_stream(ID.from_base58(peer), [pid])
                        self._direct_out[key] = stream
                    # A slow peer delays only its own stream; give up (and count the
                    # message lost) only after the long handler timeout, not the dial one.
                    with trio.fail_after(self.config.request_handler_timeout):
                        await stream.write(frame)
                    self._direct_used[key] = trio.current_time()
                    return
                except Exception as exc:
                    self._direct_out.pop(key, None)
                    if attempt == 2:
                        raise PeerUnreachableError(f"direct send to {peer} failed: {exc}") from None

    async def broadcast_direct(self, channel: str, data: bytes) -> list[str]:
        """``send_direct`` to every connected peer concurrently, in ONE hop from asyncio.

        Returns the peers the send failed for. Oversize data raises before anything is sent.
        """
        framing.encode_direct(channel, data, self.config.max_gossip_size)  # size check first
        failed: list[str] = []

        async def one(peer: str) -> None:
            try:
                await self.send_direct(peer, channel, data)
            except P2PError as exc:
                log.debug("p2p: direct %s to %s failed: %s", channel, peer, exc)
                failed.append(peer)

        async with trio.open_nursery() as nursery:
            for peer in self.connected_peers():
                nursery.start_soon(one, peer)
        return sorted(failed)

    def _check_keepalives(self, connected: set[str], now: float) -> None:
        """Application keep-alive on the direct streams (redial loop, every 0.25 s).

        A peer we have heard on a direct stream of this connection and that has since been
        silent for ``keepalive_timeout`` is taken for dead: we close the connection, and the
        redial loop dials it again (a half-open TCP connection would otherwise look alive
        until the kernel gives up, minutes later). Our own priority stream to each peer gets
        an empty keep-alive frame after ``keepalive_interval`` idle seconds, so a live peer is
        never silent for long. Peers that never opened a direct stream are not judged.
        """
        cfg = self.config
        assert self.nursery is not None
        for peer in connected:
            if self._is_refused(peer):
                continue
            heard = self._direct_heard.get(peer)
            if heard is not None and now - heard > cfg.keepalive_timeout:
                self._direct_heard.pop(peer, None)
                self.dead_peers += 1
                log.warning("p2p: %s silent for %.1f s: reconnecting", peer, now - heard)
                self.nursery.start_soon(self._close_peer, peer)
                continue
            last = self._direct_used.get((peer, "prio"))
            idle = last is None or now - last >= cfg.keepalive_interval
            if idle and peer not in self._keepalive_busy:
                self._keepalive_busy.add(peer)
                self.nursery.start_soon(self._send_keepalive, peer, now)

    async def _send_keepalive(self, peer: str, now: float) -> None:
        try:
            await self._write_direct(peer, "prio", framing.KEEPALIVE_FRAME)
        except P2PError as exc:
            self._direct_used[(peer, "prio")] = now  # retry at the keep-alive pace, not faster
            log.debug("p2p: keep-alive to %s failed: %s", peer, exc)
        finally:
            self._keepalive_busy.discard(peer)

    async def _serve_direct(self, stream: Any) -> None:
        """Read frames from a peer's direct stream until it closes; validate and deliver."""
        peer = str(stream.muxed_conn.peer_id.to_base58())
        limit = self.config.max_gossip_size + framing.DIRECT_OVERHEAD
        try:
            while True:
                if self._is_refused(peer):
                    await stream.reset()
                    return
                try:
                    header = await read_exactly(stream, framing.LENGTH_BYTES)
                except ProtocolViolationError:
                    return  # clean end of stream between frames
                length = framing.decode_length(header, limit)
                self._direct_heard[peer] = trio.current_time()
                if length == 0:
                    continue  # keep-alive
                body = await read_exactly(stream, length)
                channel, data = framing.decode_direct(body)
                topic = compute_topic(self.config.network_id, channel)
                if topic not in self._topics:
                    continue
                validator = self._topics[topic]
                verdict = Verdict.ACCEPT
                if validator is not None:
                    try:
                        verdict = validator(peer, data)
                    except Exception:
                        verdict = Verdict.REJECT
                if verdict is Verdict.ACCEPT:
                    self._deliver(Inbound(topic, peer, peer, data))
                elif verdict is Verdict.REJECT:
                    self.penalise(peer, "invalid_message")
        except ProtocolViolationError:
            self.penalise(peer, "protocol_violation")
            with contextlib.suppress(Exception):
                await stream.reset()
        except Exception:
            log.debug("p2p: direct stream from %s ended", peer, exc_info=True)

    # --- request/response ----------------------------------------------------------------
    def set_handler(self, protocol: str, handler: Callable[[str, bytes], Awaitable[bytes]]) -> None:
        self.handlers[protocol] = handler
        if self.host is not None and self.nursery is not None:
            self._register_stream_handler(protocol)

    def _register_stream_handler(self, protocol: str) -> None:
        pid = TProtocol(compute_protocol_id(self.config.network_id, protocol))

        async def serve(stream: Any) -> None:
            await self._serve(protocol, stream)

        self.host.set_stream_handler(pid, serve)

    async def _serve(self, protocol: str, stream: Any) -> None:
        peer = str(stream.muxed_conn.peer_id.to_base58())
        cfg = self.config
        try:
            if self._is_refused(peer):
                await stream.reset()
                return
            with trio.move_on_after(cfg.request_handler_timeout):
                try:
                    header = await read_exactly(stream, framing.LENGTH_BYTES)
                    length = framing.decode_length(header, cfg.max_request_size)
                    data = await read_exactly(stream, length)
                except ProtocolViolationError as exc:
                    self.penalise(peer, "protocol_violation")
                    await stream.write(
                        framing.encode_response(framing.Status.TOO_LARGE, str(exc).encode(), 0)
                    )
                    await stream.close()
                    return
                handler = self.handlers.get(protocol)
                if handler is None:
                    frame = framing.encode_response(framing.Status.NO_HANDLER, b"no handler", 0)
                else:
                    try:
                        body = await self._run_in_asyncio(handler(peer, data))
                        frame = framing.encode_response(
                            framing.Status.OK, body, cfg.max_response_size
                        )
                    except Exception as exc:
                        text = f"{type(exc).__name__}: {exc}".encode()
                        frame = framing.encode_response(framing.Status.ERROR, text, 0)
                await stream.write(frame)
                await stream.close()
                return
            await stream.reset()  # handler timeout
        except Exception:
            log.debug("p2p: serving %s to %s failed", protocol, peer, exc_info=True)
            with contextlib.suppress(Exception):
                await stream.reset()

    async def _run_in_asyncio(self, coro: Awaitable[bytes]) -> bytes:
        """Run a handler coroutine on the asyncio loop and wait for it from trio."""
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        future: concurrent.futures.Future[bytes] = asyncio.run_coroutine_threadsafe(
            coro,  # type: ignore[arg-type]
            self.loop,
        )

        def wake(_: concurrent.futures.Future[bytes]) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future.add_done_callback(wake)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        result = future.result()
        if type(result) is not bytes:
            raise P2PError(f"handler returned {type(result).__name__}, not bytes")
        return result

    async def request(self, peer: str, protocol: str, data: bytes, timeout: float) -> bytes:
        cfg = self.config
        if self._is_refused(peer):
            raise PeerUnreachableError(f"peer {peer} is blocked or banned")
        frame = framing.encode_request(data, cfg.max_request_size)
        pid = TProtocol(compute_protocol_id(cfg.network_id, protocol))
        stream: Any = None
        try:
            with trio.fail_after(timeout):
                try:
                    stream = await self.host.new_stream(ID.from_base58(peer), [pid])
                except Exception as exc:
                    raise PeerUnreachableError(f"cannot open {protocol} to {peer}: {exc}") from None
                await stream.write(frame)
                status = framing.decode_status(await read_exactly(stream, framing.STATUS_BYTES))
                limit = cfg.max_response_size if status is framing.Status.OK else 4096
                length = framing.decode_length(await read_exactly(stream, 4), limit)
                body = await read_exactly(stream, length)
        except trio.TooSlowError:
            raise RequestTimeoutError(f"{protocol} request to {peer} timed out") from None
        except ProtocolViolationError:
            self.penalise(peer, "protocol_violation")
            raise
        except P2PError:
            raise
        except Exception as exc:
            raise PeerUnreachableError(f"{protocol} request to {peer} failed: {exc}") from None
        finally:
            if stream is not None:
                with trio.move_on_after(1):
                    with contextlib.suppress(Exception):
                        await stream.close()
        if status is not framing.Status.OK:
            raise RemoteError(f"{peer} answered {status.name}: {body.decode(errors='replace')}")
        return body
