"""The real p2p host: py-libp2p under ``trio.run`` in one thread, with an asyncio face.

Why a thread: py-libp2p is trio-only and the node is asyncio (uvloop); spec/libp2p.md §4
measured this bridge at ~70k msgs/s, far above libp2p's own ceiling. asyncio → trio calls go
through ``TrioToken.run_sync_soon`` (non-blocking, thread-safe); trio → asyncio results come
back with ``loop.call_soon_threadsafe``, inbound messages in batches (one wakeup per burst).

Failure handling: if the network thread dies, every pending call fails with
:class:`HostCrashedError` (carrying the cause), subscriptions end with it, and later calls
raise it. ``close`` stops the thread with a hard timeout: a libp2p shutdown that hangs
("Nursery is closed", spec §5) is abandoned on its daemon thread instead of hanging the node.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

from alloranet.p2p.config import P2PConfig, compute_topic, validate_channel_name
from alloranet.p2p.errors import (
    HostClosedError,
    HostCrashedError,
    MessageTooLargeError,
    P2PError,
    RequestTimeoutError,
)
from alloranet.p2p.identity import compute_peer_id, load_or_create_node_key
from alloranet.p2p.inbox import Inbox
from alloranet.p2p.network import Network
from alloranet.p2p.scoring import PeerScores
from alloranet.p2p.types import Inbound, RequestHandler, Validator

log = logging.getLogger(__name__)

T = TypeVar("T")


class P2PHost:
    """See alloranet.p2p.types.P2PHostAPI for the contract; docs/protocol.md for the wire."""

    def __init__(self, config: P2PConfig) -> None:
        self._config = config
        self._key_pair = load_or_create_node_key(config.key_file)
        self._peer_id = compute_peer_id(self._key_pair)
        self._inboxes: dict[str, Inbox] = {}  # topic -> inbox
        self._channels: dict[str, str] = {}  # topic -> channel
        self._validators: dict[str, Validator | None] = {}
        self._handlers: dict[str, RequestHandler] = {}
        self._blocked: frozenset[str] = frozenset()
        self._score_lock = threading.Lock()
        self._scores = PeerScores(
            threshold=config.ban_threshold,
            ban_seconds=config.ban_seconds,
            decay_per_s=config.score_decay_per_s,
            now=time.monotonic,
        )
        self._pending: collections.deque[Inbound] = collections.deque()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._network: Network | None = None
        self._thread: threading.Thread | None = None
        self._done: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self._closing = False
        self._publish_slots: asyncio.Semaphore | None = None
        self._calls: set[asyncio.Future[Any]] = set()
        self._listen_addrs: list[str] = []

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def listen_addrs(self) -> list[str]:
        """Listen multiaddrs including ``/p2p/<peer id>``, ready to hand to other nodes."""
        suffix = f"/p2p/{self._peer_id}"
        return [a if a.endswith(suffix) else a + suffix for a in self._listen_addrs]

    @property
    def running(self) -> bool:
        return self._network is not None and self._failure is None and not self._closing

    async def start(self) -> None:
        if self._thread is not None:
            raise P2PError("host already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        if sys.getswitchinterval() > self._config.gil_switch_interval:
            # Process-wide (P2PConfig.gil_switch_interval says why): a vote that reaches
            # one thread while the other computes waits for the GIL hand-over.
            sys.setswitchinterval(self._config.gil_switch_interval)
        self._publish_slots = asyncio.Semaphore(self._config.max_inflight_publishes)
        ready: asyncio.Future[None] = loop.create_future()
        self._done = loop.create_future()
        network = Network(
            self._config,
            self._key_pair,
            loop,
            self._on_inbound,
            self._score_penalise,
            self._is_refused,
        )
        network.set_bulk_topics(
            {compute_topic(self._config.network_id, c) for c in self._config.bulk_channels}
        )
        for topic, validator in self._validators.items():
            network._topics[topic] = validator
        network.handlers.update(self._handlers)

        def on_ready(peer_id: str, addrs: list[str]) -> None:
            def apply() -> None:
                self._listen_addrs = addrs
                if not ready.done():
                    ready.set_result(None)

            loop.call_soon_threadsafe(apply)

        def thread_main() -> None:
            error: BaseException | None = None
            try:
                trio.run(network.run, on_ready)
            except BaseException as exc:
                error = exc
            with contextlib.suppress(RuntimeError):  # the asyncio loop may be closed already
                loop.call_soon_threadsafe(self._on_thread_done, error, ready)

        self._network = network
        self._thread = threading.Thread(target=thread_main, name="alloranet-p2p", daemon=True)
        self._thread.start()
        try:
            await asyncio.wait_for(asyncio.shield(ready), self._config.start_timeout)
        except TimeoutError:
            await self.close()
            raise HostCrashedError("p2p host did not start in time") from None
        if self._failure is not None:
            raise HostCrashedError(f"p2p host failed to start: {self._failure}") from self._failure

    def _on_thread_done(self, error: BaseException | None, ready: asyncio.Future[None]) -> None:
        if error is not None and not self._closing:
            log.error("p2p network thread died: %r", error)
            self._failure = error
        crash = HostCrashedError(f"p2p network thread stopped: {error!r}")
        crash.__cause__ = error
        reason = crash if error is not None else HostClosedError("p2p host closed")
        if not ready.done():
            ready.set_exception(reason)
            ready.exception()
        for fut in list(self._calls):
            if not fut.done():
                fut.set_exception(reason)
        self._calls.clear()
        self._flush_inbound()
        for inbox in self._inboxes.values():
            if error is not None and not self._closing:
                inbox.fail(crash)
            else:
                inbox.close()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the network thread; gives up after ``timeout`` seconds (daemon thread)."""
        if self._network is None or self._closing:
            return
        self._closing = True
        network = self._network
        if self._thread is not None and self._thread.is_alive() and network.token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                network.token.run_sync_soon(network.stop)
        if self._done is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._done), timeout)
            except TimeoutError:
                log.error("p2p host did not stop within %.1f s; abandoning its thread", timeout)
        if self._thread is not None:
            self._thread.join(timeout=0.5)
        for inbox in self._inboxes.values():
            inbox.close()

    def _check(self) -> Network:
        if self._failure is not None:
            raise HostCrashedError(f"p2p host crashed: {self._failure!r}") from self._failure
        if self._network is None or self._closing or self._network.token is None:
            raise HostClosedError("p2p host is not running")
        return self._network

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a plain function on the trio thread (fire and forget)."""
        network = self._check()
        assert network.token is not None
        try:
            network.token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            raise HostClosedError("p2p host is not running") from None

    async def _call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``await fn(*args)`` on the trio thread; its result or error comes back here."""
        network = self._check()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._calls.add(fut)

        async def runner() -> None:
            try:
                result = await fn(*args)
            except Exception as exc:
                error = exc

                def fail() -> None:
                    if not fut.done():
                        fut.set_exception(error)

                loop.call_soon_threadsafe(fail)
                return

            def succeed() -> None:
                if not fut.done():
                    fut.set_result(result)

            loop.call_soon_threadsafe(succeed)

        def spawn() -> None:
            if network.nursery is None:
                loop.call_soon_threadsafe(fut.set_exception, HostClosedError("not running"))
                return
            network.nursery.start_soon(runner)

        try:
            self._soon(spawn)
            return await fut
        finally:
            self._calls.discard(fut)

    # --- peers ---------------------------------------------------------------------------
    async def connect(self, multiaddr: str) -> None:
        network = self._check()
        await self._call(network.connect, multiaddr)

    async def disconnect(self, peer_id: str) -> None:
        network = self._check()
        await self._call(network.disconnect, peer_id)

    def peers(self) -> list[str]:
        network = self._check()
        return network.connected_peers()

    def topic_peers(self, channel: str) -> list[str]:
        """Connected peers known to subscribe to ``channel`` (a snapshot, for readiness waits)."""
        network = self._check()
        return network.topic_peers(compute_topic(self._config.network_id, channel))

    # --- gossip --------------------------------------------------------------------------
    def subscribe(self, channel: str, validator: Validator | None = None) -> Inbox:
        """An async iterator of messages from other peers on ``channel``.

        ``validator`` runs on the network thread for every message before it is delivered or
        forwarded; it must be cheap, thread-safe, and must not touch asyncio objects.
        """
        validate_channel_name(channel)
        topic = compute_topic(self._config.network_id, channel)
        if topic in self._inboxes:
            raise P2PError(f"already subscribed to {channel!r}")
        inbox = Inbox(channel, self._config.inbound_queue_limit)
        self._inboxes[topic] = inbox
        self._channels[topic] = channel
        self._validators[topic] = validator
        if self._network is not None and self._network.token is not None:
            self._soon(self._network.add_topic, topic, validator)
        return inbox

    async def publish(self, channel: str, data: bytes) -> None:
        """Hand ``data`` to gossipsub; returns once libp2p has queued it to every mesh peer.

        With ``P2PConfig.bulk_direct`` a bulk channel goes to every connected peer over its
        bulk direct stream instead (``broadcast_direct``; returns once written to all).

        Raises MessageTooLargeError above ``max_gossip_size`` (libp2p would drop it silently).
        Waits while ``max_inflight_publishes`` publishes are pending: the back-pressure.
        """
        validate_channel_name(channel)
        if len(data) > self._config.max_gossip_size:
            raise MessageTooLargeError(
                f"gossip message of {len(data)} bytes exceeds {self._config.max_gossip_size}"
            )
        if self._config.bulk_direct and channel in self._config.bulk_channels:
            await self.broadcast_direct(channel, data)  # P2PConfig.bulk_direct
            return
        network = self._check()
        assert self._publish_slots is not None
        async with self._publish_slots:
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._calls.add(fut)
            try:
                topic = compute_topic(self._config.network_id, channel)
                self._soon(network.enqueue_publish, topic, bytes(data), fut)
                await fut
            finally:
                self._calls.discard(fut)

    async def send_direct(self, peer_id: str, channel: str, data: bytes) -> None:
        """Send to one peer on our persistent direct stream (no gossip, no forwarding).

        The receiver delivers it to its ``channel`` subscription after its validator.
        """
        validate_channel_name(channel)
        if len(data) > self._config.max_gossip_size:
            raise MessageTooLargeError(
                f"direct message of {len(data)} bytes exceeds {self._config.max_gossip_size}"
            )
        network = self._check()
        await self._call(network.send_direct, peer_id, channel, bytes(data))

    async def broadcast_direct(self, channel: str, data: bytes) -> list[str]:
        """``send_direct`` to every connected peer at once; returns the peers it failed for.

        One thread hop for the whole fan-out (not one per peer): the network thread writes
        to every peer's stream concurrently. Bulk channels use a separate stream per peer, so
        a vote never waits behind a batch (docs/protocol.md §2.6).
        """
        validate_channel_name(channel)
        if len(data) > self._config.max_gossip_size:
            raise MessageTooLargeError(
                f"direct message of {len(data)} bytes exceeds {self._config.max_gossip_size}"
            )
        network = self._check()
        return await self._call(network.broadcast_direct, channel, bytes(data))

    def _on_inbound(self, item: Inbound) -> None:
        """Trio thread: queue a message and wake asyncio once per burst."""
        self._pending.append(item)
        if not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._flush_inbound)

    def _flush_inbound(self) -> None:
        self._wake_pending = False  # clear BEFORE draining: see _on_inbound
        grouped: dict[str, list[Inbound]] = {}
        while self._pending:
            item = self._pending.popleft()
            grouped.setdefault(item.channel, []).append(item)
        for topic, items in grouped.items():
            inbox = self._inboxes.get(topic)
            if inbox is not None:
                channel = self._channels[topic]
                inbox.put_many([Inbound(channel, i.origin, i.forwarder, i.data) for i in items])

    # --- request/response ----------------------------------------------------------------
    def set_request_handler(self, protocol: str, handler: RequestHandler) -> None:
        validate_channel_name(protocol)
        self._handlers[protocol] = handler
        if self._network is not None and self._network.token is not None:
            self._soon(self._network.set_handler, protocol, handler)

    async def request(self, peer_id: str, protocol: str, data: bytes, timeout: float) -> bytes:
        """Send one request on a fresh stream and return the response body.

        Raises MessageTooLargeError, PeerUnreachableError, RequestTimeoutError or RemoteError.
        """
        validate_channel_name(protocol)
        if len(data) > self._config.max_request_size:
            raise MessageTooLargeError(
                f"request of {len(data)} bytes exceeds {self._config.max_request_size}"
            )
        network = self._check()
        try:
            return await asyncio.wait_for(
                self._call(network.request, peer_id, protocol, bytes(data), timeout),
                timeout + 1.0,
            )
        except TimeoutError:
            raise RequestTimeoutError(f"{protocol} request to {peer_id} timed out") from None

    # --- faults and scoring --------------------------------------------------------------
    def block_peers(self, peer_ids: set[str]) -> None:
        """Fault hook: drop all traffic to and from these peers, now and for new connections."""
        self._blocked = self._blocked | frozenset(peer_ids)
        network = self._check()
        self._soon(network.apply_refusals, set(self._blocked))

    def unblock_peers(self, peer_ids: set[str] | None = None) -> None:
        """Lift the block (all of it when ``peer_ids`` is None); the redial loop reconnects."""
        if peer_ids is None:
            self._blocked = frozenset()
        else:
            self._blocked = self._blocked - frozenset(peer_ids)
        network = self._check()
        self._soon(network.lift_refusals)

    def penalise(self, peer_id: str, reason: str) -> None:
        """Score a peer down (e.g. it sent an invalid block); bans and disconnects at threshold."""
        if self._score_penalise(peer_id, reason):
            log.warning("p2p: banning peer %s (%s)", peer_id, reason)
            network = self._check()
            self._soon(network.apply_refusals, {peer_id})

    def get_score(self, peer_id: str) -> float:
        with self._score_lock:
            return self._scores.get_score(peer_id)

    def is_banned(self, peer_id: str) -> bool:
        with self._score_lock:
            return self._scores.is_banned(peer_id)

    def _score_penalise(self, peer_id: str, reason: str) -> bool:
        with self._score_lock:
            return self._scores.penalise(peer_id, reason)

    def _is_refused(self, peer_id: str) -> bool:
        if peer_id in self._blocked:
            return True
        with self._score_lock:
            return self._scores.is_banned(peer_id)

    def stats(self) -> dict[str, int]:
        """Counters for metrics: inbox drops and depths, publishes handed to libp2p."""
        network = self._network
        out = {
            "published": network.published if network else 0,
            "dead_peers": network.dead_peers if network else 0,
        }
        for inbox in self._inboxes.values():
            out[f"inbox_{inbox.channel}_dropped"] = inbox.dropped
            out[f"inbox_{inbox.channel}_depth"] = len(inbox)
        return out
