"""The asyncio driver: inbox -> WAL -> step -> actions, with timers on an injected clock.

Why a thin layer over :class:`Replica`: all crash-relevant ordering (WAL before step, fsync
before signing) lives in the replica, shared with the simulator; this module only adds an
inbox, timers and the periodic re-send. It never imports p2p or state: node.py passes a
:class:`Broadcaster`, an :class:`~alloranet.consensus.replica.Application` and callbacks.

Timers use the injected :class:`~alloranet.clock.Clock`: the loop sleeps until the earliest
deadline (re-checking at least every ``poll_interval`` seconds, so a test's ManualClock that
jumps forward is noticed), then feeds due timeouts to the replica in deadline order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Protocol

from alloranet.clock import Clock
from alloranet.consensus.core import TimeoutEvent
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.replica import Application, Replica
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.storage import FailPoint, no_failpoint
from alloranet.consensus.timeouts import TimeoutConfig
from alloranet.consensus.types import Verifier
from alloranet.consensus.wal import WAL
from alloranet.errors import AlloraError

log = logging.getLogger(__name__)

#: Inbox bound: a flood of messages waits rather than growing memory without limit.
INBOX_SIZE = 10_000


class Broadcaster(Protocol):
    """The network as consensus sees it (node.py implements it on the p2p host)."""

    def broadcast(self, data: bytes) -> None: ...

    def send(self, peer: str, data: bytes) -> None: ...


def _ignore_penalty(peer: str, error: AlloraError) -> None:
    log.debug("peer %s sent a bad consensus message: %s", peer, error)


def _ignore_evidence(evidence: DuplicateVoteEvidence) -> None:
    log.warning("equivocation by %s at height %d", evidence.validator.hex(), evidence.height)


class _DriverOutbox:
    def __init__(self, driver: ConsensusDriver) -> None:
        self.driver = driver

    def broadcast(self, data: bytes) -> None:
        self.driver.broadcaster.broadcast(data)

    def send(self, peer: str, data: bytes) -> None:
        self.driver.broadcaster.send(peer, data)

    def schedule(self, delay: float, event: TimeoutEvent) -> None:
        self.driver._schedule(delay, event)

    def penalise(self, peer: str, error: AlloraError) -> None:
        self.driver.penalise(peer, error)

    def report_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        self.driver.on_evidence(evidence)


class ConsensusDriver:
    """Runs one replica under asyncio. ``start()``, ``on_message(bytes, peer)``, ``stop()``."""

    def __init__(
        self,
        chain_id: str,
        app: Application,
        wal: WAL,
        broadcaster: Broadcaster,
        clock: Clock,
        config: TimeoutConfig,
        signer: SignerGuard | None = None,
        *,
        verifier: Verifier | None = None,
        penalise: Callable[[str, AlloraError], None] = _ignore_penalty,
        on_evidence: Callable[[DuplicateVoteEvidence], None] = _ignore_evidence,
        rebroadcast_interval: float = 0.5,
        poll_interval: float = 0.01,
        failpoint: FailPoint = no_failpoint,
    ) -> None:
        self.broadcaster = broadcaster
        self.clock = clock
        self.penalise = penalise
        self.on_evidence = on_evidence
        self.rebroadcast_interval = rebroadcast_interval
        self.poll_interval = poll_interval
        self.replica = Replica(
            chain_id, app, wal, _DriverOutbox(self), config, signer, verifier, failpoint
        )
        self._inbox: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue(INBOX_SIZE)
        self._timers: list[tuple[float, int, TimeoutEvent]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._next_rebroadcast = 0.0
        self.error: BaseException | None = None
        self._stopping = False

    @property
    def height(self) -> int:
        return self.replica.height

    def _schedule(self, delay: float, event: TimeoutEvent) -> None:
        heapq.heappush(self._timers, (self.clock.now() + delay, next(self._seq), event))

    async def start(self) -> None:
        """Replay the WAL (cutting a torn tail) and start the loop."""
        self.replica.start(repair_wal=True)
        self._next_rebroadcast = self.clock.now() + self.rebroadcast_interval
        self._task = asyncio.create_task(self._run(), name="consensus-driver")

    def on_message(self, data: bytes, peer: str) -> None:
        """Queue an inbound proposal, vote or decision (dropped if the inbox is full)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._inbox.put_nowait((data, peer))

    async def stop(self) -> None:
        """Stop the loop after the current input and flush the WAL."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.replica.wal.sync()

    async def _run(self) -> None:
        try:
            while True:
                now = self.clock.now()
                # only the timers due now: one scheduled while these run (a zero-delay commit
                # timeout) waits for the next pass, after the loop has had its turn
                due = []
                while self._timers and self._timers[0][0] <= now:
                    due.append(heapq.heappop(self._timers)[2])
                for event in due:
                    self.replica.on_timeout(event)
                if now >= self._next_rebroadcast:
                    self._next_rebroadcast = now + self.rebroadcast_interval
                    self.replica.rebroadcast()
                if self._stopping:
                    return
                if self._inbox.empty():
                    wait = self.poll_interval
                    if self._timers:
                        wait = max(0.0, min(wait, self._timers[0][0] - now))
                    # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancellation when the queue delivers at the same moment.
                    getter = asyncio.ensure_future(self._inbox.get())
                    done, _ = await asyncio.wait({getter}, timeout=wait)
                    if not done:
                        getter.cancel()
                        continue
                    data, peer = getter.result()
                else:
                    data, peer = self._inbox.get_nowait()
                    await asyncio.sleep(0)  # let timers, stop() and the network run
                self.replica.on_message(data, peer)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # a failed fsync or a crash point: stop, never go on
            self.error = e
            log.exception("consensus driver stopped")
            raise
