"""A bounded inbox feeding one asyncio subscriber; used by both hosts.

Why: libp2p's own subscription channel holds only 32 messages and drops the rest with a
warning, so the network thread moves each message here at once. The inbox is bounded (memory
must not grow with a slow consumer); when full it drops the OLDEST message and counts it in
``dropped`` — gossip is best-effort by design and consensus recovers via its timeouts and sync.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator

from alloranet.p2p.errors import HostClosedError
from alloranet.p2p.types import Inbound

log = logging.getLogger(__name__)


class Inbox:
    """Async iterator of :class:`Inbound`; ``put`` must be called on the owning loop."""

    def __init__(self, channel: str, limit: int) -> None:
        self.channel = channel
        self._limit = limit
        self._queue: collections.deque[Inbound] = collections.deque()
        self._event = asyncio.Event()
        self._closed = False
        self._error: BaseException | None = None
        self.dropped = 0
        self.delivered = 0

    def put_many(self, items: list[Inbound]) -> None:
        if self._closed:
            return
        for item in items:
            if len(self._queue) >= self._limit:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.warning("p2p inbox %s full: %d dropped", self.channel, self.dropped)
            self._queue.append(item)
        self._event.set()

    def fail(self, error: BaseException) -> None:
        """End the iteration with ``error`` (raised once the queue is drained)."""
        self._error = error
        self._closed = True
        self._event.set()

    def close(self) -> None:
        self._closed = True
        self._event.set()

    def __len__(self) -> int:
        return len(self._queue)

    def __aiter__(self) -> AsyncIterator[Inbound]:
        return self

    async def __anext__(self) -> Inbound:
        while not self._queue:
            if self._closed:
                if isinstance(self._error, HostClosedError):
                    raise self._error
                if self._error is not None:
                    raise HostClosedError(f"p2p host stopped: {self._error}") from self._error
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()
        self.delivered += 1
        return self._queue.popleft()
