"""Block sync: a node that is behind fetches decided blocks with their commits from peers.

Protocol (request/response streams, docs/protocol.md): ``status`` → ``(height,)``;
``blocks`` with ``(from_height, count)`` → a tuple of Decision wires (block bytes + the commit
that decided it), at most :data:`MAX_BLOCKS_PER_REQUEST`. Each fetched decision is handed to
the consensus replica as if a peer had sent it, so it is verified exactly as in consensus
(block H by the commit for H, against the validator set of H) and committed by the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from alloranet.codec import decode, encode, expect_int, expect_tuple
from alloranet.consensus.types import Commit, Decision, encode_message
from alloranet.errors import AlloraError
from alloranet.p2p.types import P2PHostAPI
from alloranet.state.store import Store

log = logging.getLogger("alloranet.node.sync")

STATUS_PROTOCOL = "status"
BLOCKS_PROTOCOL = "blocks"
MAX_BLOCKS_PER_REQUEST = 16


class BlockSync:
    def __init__(
        self,
        host: P2PHostAPI,
        store: Store,
        get_height: Any,
        feed: Any,
        get_decision: Any,
        interval: float = 1.0,
    ) -> None:
        self.host = host
        self.store = store
        self._get_height = get_height
        self._feed = feed  # feed(data, peer): hand a consensus message to the replica
        self._get_decision = get_decision
        self.interval = interval
        self.peer_heights: dict[str, int] = {}
        self.catching_up = False
        self.synced_blocks = 0
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random()
        #: peers that do not serve block sync (clients such as workers), skipped until then
        self._not_nodes: dict[str, float] = {}
        self._stuck = 0
        self._stuck_height = -1

    async def _on_status(self, peer: str, data: bytes) -> bytes:
        return encode((self._get_height(),))

    async def load_decision(self, height: int) -> Decision | None:
        cached: Decision | None = self._get_decision(height)
        if cached is not None:
            return cached
        block = await self.store.load_block(height)
        commit = await self.store.load_commit(height)
        if block is None or commit is None:
            return None
        return Decision(block, Commit.decode(commit))

    async def _on_blocks(self, peer: str, data: bytes) -> bytes:
        t = expect_tuple(decode(data, max_size=64, max_depth=2), "blocks request", 2)
        start = expect_int(t[0], "from_height", 1, 2**63 - 1)
        count = min(expect_int(t[1], "count", 1, 1000), MAX_BLOCKS_PER_REQUEST)
        out = []
        size = 0
        for height in range(start, min(start + count, self._get_height() + 1)):
            decision = await self.load_decision(height)
            if decision is None:
                break
            wire = decision.to_wire()
            size += len(decision.value)
            out.append(wire)
            if size > 8 << 20:
                break
        return encode(tuple(out))

    def start(self) -> None:
        self.host.set_request_handler(STATUS_PROTOCOL, self._on_status)
        self.host.set_request_handler(BLOCKS_PROTOCOL, self._on_blocks)
        self._task = asyncio.create_task(self._loop(), name="block-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _poll_one(self, peer: str) -> None:
        try:
            raw = await self.host.request(peer, STATUS_PROTOCOL, b"", timeout=2.0)
            t = expect_tuple(decode(raw, max_size=64, max_depth=2), "status", 1)
            self.peer_heights[peer] = expect_int(t[0], "height", 0)
        except (AlloraError, Exception):
            self.peer_heights.pop(peer, None)
            self._not_nodes[peer] = asyncio.get_running_loop().time() + 30.0

    async def _poll_heights(self) -> None:
        now = asyncio.get_running_loop().time()
        peers = [p for p in self.host.peers() if self._not_nodes.get(p, 0.0) <= now]
        await asyncio.gather(*(asyncio.wait_for(self._poll_one(p), 3.0) for p in peers),
                             return_exceptions=True)  # fmt: skip
        for gone in set(self.peer_heights) - set(peers):
            self.peer_heights.pop(gone, None)

    async def _fetch_from(self, peer: str) -> int:
        """Fetch and feed blocks from ``peer``; returns how many were applied."""
        applied = 0
        while True:
            height = self._get_height()
            if self.peer_heights.get(peer, 0) <= height:
                return applied
            request = encode((height + 1, MAX_BLOCKS_PER_REQUEST))
            raw = await self.host.request(peer, BLOCKS_PROTOCOL, request, timeout=10.0)
            items = expect_tuple(decode(raw, max_size=32 << 20, max_depth=10), "blocks")
            if not items:
                return applied
            for wire in items:
                decision = Decision.from_wire(wire)
                before = self._get_height()
                if decision.commit.height != before + 1:
                    continue
                self._feed(encode_message(decision), peer)
                if self._get_height() == before:
                    log.warning("block %d from %s was not accepted", before + 1, peer)
                    return applied
                applied += 1
                self.synced_blocks += 1
            await asyncio.sleep(0)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._poll_heights()
                height = self._get_height()
                ahead = [p for p, h in self.peer_heights.items() if h > height]
                # One block behind is normal between commits; more is lagging.
                self.catching_up = any(self.peer_heights[p] > height + 1 for p in ahead)
                if not ahead:
                    continue
                # One block behind is usually consensus catching up by itself; if it persists
                # for two polls at the same height, sync it.
                if not self.catching_up:
                    self._stuck = self._stuck + 1 if height == self._stuck_height else 0
                    self._stuck_height = height
                    if self._stuck < 2:
                        continue
                peer = self._rng.choice(sorted(ahead))
                applied = await self._fetch_from(peer)
                if applied:
                    log.info(
                        "block sync: applied %d blocks from %s, now at %d",
                        applied,
                        peer,
                        self._get_height(),
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("block sync round failed: %r", exc)
