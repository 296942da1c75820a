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
from alloranet.node.logs import fields
from alloranet.p2p.types import P2PHostAPI
from alloranet.state.store import Store

log = logging.getLogger("alloranet.node.sync")

STATUS_PROTOCOL = "status"
BLOCKS_PROTOCOL = "blocks"
MAX_BLOCKS_PER_REQUEST = 16
#: Requests in flight at once while catching up (ranges spread over the peers that are ahead).
MAX_PARALLEL_REQUESTS = 8
#: Poll period while the node has no peer heights yet or is behind: a restarted validator must
#: be back at the network's height (and voting) within seconds, not after a slow 1 s cadence.
FAST_INTERVAL_S = 0.1
#: Ranges the first round asks for before knowing any peer's height (16 blocks each).
OPTIMISTIC_RANGES = 4
#: How long after start an isolated node keeps polling fast for its first peers.
FAST_START_S = 15.0
#: After the node was behind, keep polling fast (and fetch even one missing block) this long:
#: a node that just caught up is often one block short again before consensus takes it in.
FAST_AFTER_BEHIND_S = 3.0


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
        self._failures: dict[str, int] = {}
        self._probed = False  # the first round with peers fetches without polling first
        self._fast_until = 0.0
        self._started_at = 0.0

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
        self._started_at = asyncio.get_running_loop().time()
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
            self._failures.pop(peer, None)
        except (AlloraError, Exception):
            # A client that does not serve sync fails every time: back off up to 30 s. A node
            # whose connection is still being set up fails once: retry soon.
            failures = self._failures.get(peer, 0) + 1
            self._failures[peer] = failures
            self.peer_heights.pop(peer, None)
            backoff = min(30.0, 0.25 * 2**failures)
            self._not_nodes[peer] = asyncio.get_running_loop().time() + backoff

    def _candidates(self) -> list[str]:
        now = asyncio.get_running_loop().time()
        return [p for p in self.host.peers() if self._not_nodes.get(p, 0.0) <= now]

    async def _poll_heights(self, peers: list[str]) -> None:
        await asyncio.gather(*(asyncio.wait_for(self._poll_one(p), 3.0) for p in peers),
                             return_exceptions=True)  # fmt: skip
        for gone in set(self.peer_heights) - set(peers):
            self.peer_heights.pop(gone, None)

    async def _request_range(self, peer: str, first: int, count: int) -> list[Decision]:
        raw = await self.host.request(peer, BLOCKS_PROTOCOL, encode((first, count)), timeout=10.0)
        items = expect_tuple(decode(raw, max_size=32 << 20, max_depth=10), "blocks")
        return [Decision.from_wire(wire) for wire in items]

    def compute_plan(self, height: int, heights: dict[str, int]) -> list[tuple[str, int, int]]:
        """(peer, first height, count) requests covering the heights above ``height`` that the
        peers in ``heights`` (peer -> its height) have, spread round robin over the peers that
        hold the whole of each range, at most :data:`MAX_PARALLEL_REQUESTS` of them."""
        ahead = sorted(p for p, h in heights.items() if h > height)
        if not ahead:
            return []
        top = max(heights[p] for p in ahead)
        plan: list[tuple[str, int, int]] = []
        first = height + 1
        turn = self._rng.randrange(len(ahead))
        while first <= top and len(plan) < MAX_PARALLEL_REQUESTS:
            count = min(MAX_BLOCKS_PER_REQUEST, top - first + 1)
            last = first + count - 1
            holders = [p for p in ahead if heights[p] >= last]  # the whole range, never part
            plan.append((holders[turn % len(holders)], first, count))
            turn += 1
            first += count
        return plan

    async def _fetch(self, plan: list[tuple[str, int, int]]) -> int:
        """Run the plan's requests at once and feed blocks in height order as answers arrive
        (the lowest range need not wait for the slowest peer); returns how many were applied.
        """

        async def fetch_one(peer: str, first: int, count: int) -> tuple[str, list[Decision]]:
            try:
                return peer, await self._request_range(peer, first, count)
            except Exception as exc:
                log.debug("block sync request to %s failed: %r", peer, exc)
                return peer, []

        fetched: dict[int, tuple[Decision, str]] = {}
        applied = 0
        stalled = False
        for next_answer in asyncio.as_completed([fetch_one(*item) for item in plan]):
            peer, decisions = await next_answer
            for decision in decisions:
                fetched.setdefault(decision.commit.height, (decision, peer))
            if not stalled:
                fed, stalled = self._feed_ready(fetched)
                applied += fed
        return applied

    def _feed_ready(self, fetched: dict[int, tuple[Decision, str]]) -> tuple[int, bool]:
        """Feed the fetched blocks that continue our height; returns (applied, refused)."""
        applied = 0
        while True:
            before = self._get_height()
            item = fetched.pop(before + 1, None)
            if item is None:
                return applied, False
            decision, peer = item
            self._feed(encode_message(decision), peer)
            if self._get_height() == before:
                log.warning("block %d from %s was not accepted", before + 1, peer)
                return applied, True
            applied += 1
            self.synced_blocks += 1

    def _next_delay(self, behind: bool) -> float:
        loop_time = asyncio.get_running_loop().time()
        if behind or loop_time < self._fast_until:
            return FAST_INTERVAL_S
        if not self.peer_heights and loop_time - self._started_at < FAST_START_S:
            return FAST_INTERVAL_S
        return self.interval

    async def _loop(self) -> None:
        delay = 0.0  # the first round at once: a restarted node is usually behind
        while True:
            await asyncio.sleep(delay)
            behind = False
            try:
                behind = await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("block sync round failed: %r", exc)
            delay = self._next_delay(behind)

    async def _round(self) -> bool:
        """One poll (and fetch, if behind); True while the node is still catching up.

        Until the first round that reached peers, the poll and a fetch run together: each
        peer is asked for a different range above our height without waiting for its height
        (a restarted node is behind by the blocks of its outage), which saves a round trip on
        the path from restart to voting again. An answer with fewer blocks only means the
        peer has fewer."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        peers = self._candidates()
        height = self._get_height()
        optimistic = 0
        if not self._probed and peers:
            self._probed = True
            # Guess generously: early on only one peer may be connected, and a range past a
            # peer's height costs an empty answer, while a range short of it costs a round.
            reach = MAX_BLOCKS_PER_REQUEST * max(OPTIMISTIC_RANGES, len(peers))
            guess = {p: height + reach for p in peers}
            _, optimistic = await asyncio.gather(
                self._poll_heights(peers), self._fetch(self.compute_plan(height, guess))
            )
        else:
            await self._poll_heights(peers)
        t1 = loop.time()
        height = self._get_height()
        ahead = {p: h for p, h in self.peer_heights.items() if h > height}
        # One block behind is normal between commits; more is lagging.
        self.catching_up = any(h > height + 1 for h in ahead.values())
        applied = optimistic
        recovering = loop.time() < self._fast_until
        if ahead and not self.catching_up and not recovering:
            # One block behind is usually consensus catching up by itself; if it persists
            # for two polls at the same height, sync it.
            self._stuck = self._stuck + 1 if height == self._stuck_height else 0
            self._stuck_height = height
            if self._stuck >= 2:
                applied += await self._fetch(self.compute_plan(height, ahead))
        elif ahead:
            applied += await self._fetch(self.compute_plan(height, ahead))
        if applied or self.catching_up:
            self._fast_until = loop.time() + FAST_AFTER_BEHIND_S
        if applied:
            log.info(
                "block sync: applied %d blocks from %d peers, now at %d",
                applied,
                len(peers),
                self._get_height(),
                extra=fields(
                    poll_s=round(t1 - t0, 3),
                    fetch_and_apply_s=round(loop.time() - t1, 3),
                    since_start_s=round(t0 - self._started_at, 3),
                ),
            )
        return self.catching_up
