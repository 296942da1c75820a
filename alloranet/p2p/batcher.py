"""Group many small items into one gossip message, and split them again on receipt.

Why: py-libp2p's gossipsub costs 2–20 ms of CPU per delivered message almost whatever its size
(../shared/spec/libp2p.md §3), so 300-byte transactions sent one by one cap a 4-node network near
60 per second. A batch of a few hundred costs about the same as one. Batches flush when the
size bound is reached or a short timer fires, whichever comes first.

Wire layout (docs/protocol.md, "Batch"): canonical msgpack ``[1, [item_bytes, ...]]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from alloranet import codec
from alloranet.errors import DecodeError
from alloranet.p2p.errors import MessageTooLargeError

BATCH_VERSION: Final = 1
_OUTER_OVERHEAD: Final = 1 + 1 + 5  # fixarray(2) + version int + array header (max 5)


def compute_item_overhead(size: int) -> int:
    """Bytes msgpack adds in front of a ``bin`` of ``size`` bytes."""
    if size < 256:
        return 2
    if size < 65536:
        return 3
    return 5


def encode_batch(items: list[bytes] | tuple[bytes, ...]) -> bytes:
    """The canonical batch message holding ``items`` in order."""
    return codec.encode((BATCH_VERSION, tuple(items)))


def decode_batch(data: bytes, *, max_items: int, max_size: int) -> tuple[bytes, ...]:
    """Split a batch message; raises DecodeError on anything but a well-formed batch."""
    value = codec.decode(data, max_size=max_size, max_depth=3)
    outer = codec.expect_tuple(value, "batch", length=2)
    version = codec.expect_int(outer[0], "batch.version")
    if version != BATCH_VERSION:
        raise DecodeError(f"batch: unknown version {version}")
    items = codec.expect_tuple(outer[1], "batch.items", max_len=max_items)
    if not items:
        raise DecodeError("batch: empty")
    return tuple(codec.expect_bytes(item, f"batch.items[{i}]") for i, item in enumerate(items))


class Batcher:
    """Collects items and hands ``publish`` one encoded batch at a time.

    ``add`` waits for the publish when a bound is hit, so the publisher's back-pressure reaches
    the producer. A timer flushes a partial batch ``flush_interval`` seconds after its first
    item. Batches are published in order, one at a time.
    """

    def __init__(
        self,
        publish: Callable[[bytes], Awaitable[None]],
        *,
        max_items: int = 1024,
        max_bytes: int = 256 * 1024,
        flush_interval: float = 0.02,
    ) -> None:
        if max_items <= 0 or max_bytes <= _OUTER_OVERHEAD + 2 or flush_interval <= 0:
            raise ValueError("Batcher: bounds and interval must be positive")
        self._publish = publish
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._interval = flush_interval
        self._items: list[bytes] = []
        self._size = _OUTER_OVERHEAD
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches_sent = 0
        self.items_sent = 0

    @property
    def max_item_size(self) -> int:
        """The largest single item that fits in one batch."""
        room = self._max_bytes - _OUTER_OVERHEAD
        return room - compute_item_overhead(room)

    async def add(self, item: bytes) -> None:
        """Queue one item; raises MessageTooLargeError if it can never fit in a batch."""
        if self._closed:
            raise RuntimeError("Batcher is closed")
        cost = len(item) + compute_item_overhead(len(item))
        if len(item) > self.max_item_size:
            raise MessageTooLargeError(
                f"item of {len(item)} bytes exceeds the batch limit of {self.max_item_size}"
            )
        if self._size + cost > self._max_bytes:
            await self.flush()
        self._items.append(item)
        self._size += cost
        if len(self._items) >= self._max_items:
            await self.flush()
        elif self._timer is None and self._items:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._items and (self._timer_task is None or self._timer_task.done()):
            self._timer_task = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Publish whatever is queued now (no-op when empty)."""
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._items:
                return
            items, self._items, self._size = self._items, [], _OUTER_OVERHEAD
            await self._publish(encode_batch(items))
            self.batches_sent += 1
            self.items_sent += len(items)

    async def close(self) -> None:
        """Flush the remainder and refuse further items."""
        self._closed = True
        await self.flush()
        if self._timer_task is not None:
            await self._timer_task
