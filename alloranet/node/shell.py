"""The asyncio shell around the consensus :class:`Replica`: network, timers, evidence.

Why the node has its own: the replica is synchronous and shared with the simulator; what a real
node adds is how its outputs leave (proposals and votes on the ``consensus`` gossip channel,
direct messages to one lagging peer over a request stream), how timeouts fire (``call_later`` on
the running loop) and how inbound bytes reach it. All replica calls happen on the event loop
thread, one at a time, so the replica needs no locking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from alloranet.consensus.core import TimeoutEvent
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.replica import Replica
from alloranet.consensus.timeouts import TimeoutConfig
from alloranet.errors import AlloraError
from alloranet.node.app import ChainApp
from alloranet.p2p.types import Inbound, P2PHostAPI

log = logging.getLogger("alloranet.node.consensus")

CONSENSUS_CHANNEL = "consensus"
DIRECT_PROTOCOL = "consensus"
REBROADCAST_S = 1.0


class ConsensusShell:
    """Implements the replica's Outbox on a p2p host and drives its inputs."""

    def __init__(self, host: P2PHostAPI, app: ChainApp) -> None:
        self.host = host
        self.app = app
        self.replica: Replica | None = None
        self._queue: asyncio.Queue[tuple[str | None, bytes]] = asyncio.Queue(maxsize=10_000)
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = False
        self.penalties = 0
        self.messages_in = 0

    # --- Outbox -------------------------------------------------------------------------

    def broadcast(self, data: bytes) -> None:
        self._enqueue(None, data)

    def send(self, peer: str, data: bytes) -> None:
        self._enqueue(peer, data)

    def _enqueue(self, peer: str | None, data: bytes) -> None:
        try:
            self._queue.put_nowait((peer, data))
        except asyncio.QueueFull:
            log.warning("consensus send queue full: dropping a message (peers resync)")

    def schedule(self, delay: float, event: TimeoutEvent) -> None:
        if self._stopped:
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            if self._stopped or self.replica is None:
                return
            self._guard(lambda r: r.on_timeout(event))

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def penalise(self, peer: str, error: AlloraError) -> None:
        self.penalties += 1
        log.info("penalising %s: %s", peer, error)
        self.host.penalise(peer, str(error))

    def report_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        log.warning("double-sign evidence against %s", evidence.vote_a.validator.hex()[:16])
        self.app.add_evidence(evidence)

    # --- inputs -------------------------------------------------------------------------

    def _guard(self, call: Any) -> None:
        """Run one replica input; a typed error is logged, never allowed to stop the node."""
        assert self.replica is not None
        try:
            call(self.replica)
        except AlloraError as exc:
            log.warning("consensus input refused: %s", exc)

    def on_message(self, data: bytes, peer: str) -> None:
        if self.replica is None or self._stopped:
            return
        self.messages_in += 1
        self._guard(lambda r: r.on_message(data, peer))

    async def _on_direct(self, peer: str, data: bytes) -> bytes:
        self.on_message(data, peer)
        return b""

    async def _receive(self) -> None:
        own = self.host.peer_id
        subscription = self.host.subscribe(CONSENSUS_CHANNEL)
        try:
            async for inbound in subscription:
                item: Inbound = inbound
                if item.origin == own:
                    continue
                self.on_message(item.data, item.forwarder)
        finally:
            subscription.close()

    async def _send(self) -> None:
        while True:
            peer, data = await self._queue.get()
            try:
                if peer is None:
                    await self._broadcast(data)
                else:
                    await self.host.request(peer, DIRECT_PROTOCOL, data, timeout=3.0)
            except AlloraError as exc:
                log.debug("consensus send failed: %s", exc)
            except Exception as exc:  # the network thread may be restarting a stream
                log.debug("consensus send failed: %r", exc)

    async def _broadcast(self, data: bytes) -> None:
        """Proposals and votes go to every connected peer over its persistent direct stream
        (validators form a full mesh): one hop, no gossip forwarding, far less CPU per message
        than gossipsub (benchmarks/p2p_gossip.py). Gossip is the fallback for a host without
        direct streams (the in-memory twin)."""
        direct = getattr(self.host, "broadcast_direct", None)
        if direct is None:
            await self.host.publish(CONSENSUS_CHANNEL, data)
        else:
            await direct(CONSENSUS_CHANNEL, data)

    async def _rebroadcast(self) -> None:
        while True:
            await asyncio.sleep(REBROADCAST_S)
            if self.replica is not None:
                self.replica.rebroadcast()

    def start(self, replica: Replica) -> None:
        """Attach the replica (already constructed with this shell as its outbox) and run."""
        self.replica = replica
        self.host.set_request_handler(DIRECT_PROTOCOL, self._on_direct)
        self._tasks = [
            asyncio.create_task(self._receive(), name="consensus-receive"),
            asyncio.create_task(self._send(), name="consensus-send"),
            asyncio.create_task(self._rebroadcast(), name="consensus-rebroadcast"),
        ]
        replica.start(repair_wal=True)

    async def stop(self) -> None:
        self._stopped = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def compute_timeout_config(
    propose_ms: int,
    propose_delta_ms: int,
    vote_ms: int,
    vote_delta_ms: int,
    commit_ms: int,
    skip_timeout_commit: bool,
) -> TimeoutConfig:
    return TimeoutConfig(
        propose_ms / 1000,
        propose_delta_ms / 1000,
        vote_ms / 1000,
        vote_delta_ms / 1000,
        vote_ms / 1000,
        vote_delta_ms / 1000,
        commit_ms / 1000,
        skip_timeout_commit,
    )
