"""Block sync's catch-up path (what a restarted validator runs before it can vote again):
ranges spread over every peer ahead, fetched at once, fed in height order, and a first round
that fetches without waiting for the peers' heights. Against a fake host, no processes."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from alloranet.codec import decode, encode
from alloranet.consensus.types import Commit, CommitSig, Decision, compute_value_id, decode_message
from alloranet.node.sync import BLOCKS_PROTOCOL, MAX_BLOCKS_PER_REQUEST, STATUS_PROTOCOL, BlockSync


def _decision(height: int) -> Decision:
    value = f"block {height}".encode()
    commit = Commit(height, 0, compute_value_id(value), (CommitSig(b"k" * 32, b"s" * 64),))
    return Decision(value, commit)


class FakeHost:
    """Peers with given heights that answer status and block requests (with a delay)."""

    def __init__(self, heights: dict[str, int], delay: float = 0.01) -> None:
        self.heights = heights
        self.delay = delay
        self.requests: list[tuple[str, str, tuple[Any, ...]]] = []

    def peers(self) -> list[str]:
        return sorted(self.heights)

    def set_request_handler(self, protocol: str, handler: Any) -> None:
        pass

    async def request(self, peer: str, protocol: str, data: bytes, timeout: float) -> bytes:
        await asyncio.sleep(self.delay)
        if protocol == STATUS_PROTOCOL:
            self.requests.append((peer, protocol, ()))
            return encode((self.heights[peer],))
        assert protocol == BLOCKS_PROTOCOL
        first, count = decode(data)
        self.requests.append((peer, protocol, (first, count)))
        top = min(first + count - 1, self.heights[peer])
        return encode(tuple(_decision(h).to_wire() for h in range(first, top + 1)))


class Chain:
    def __init__(self, height: int) -> None:
        self.height = height
        self.fed: list[int] = []

    def feed(self, data: bytes, peer: str) -> None:
        decision = decode_message(data)
        assert isinstance(decision, Decision)
        self.fed.append(decision.commit.height)
        if decision.commit.height == self.height + 1:
            self.height += 1


def _sync(host: FakeHost, chain: Chain) -> BlockSync:
    sync = BlockSync(host, None, lambda: chain.height, chain.feed, lambda h: None)  # type: ignore[arg-type]
    sync._rng = random.Random(3)
    return sync


def test_plan_spreads_ranges_over_the_peers_that_hold_them() -> None:
    sync = _sync(FakeHost({}), Chain(0))
    plan = sync.compute_plan(10, {"a": 60, "b": 30, "c": 9})
    assert [(first, count) for _, first, count in plan] == [(11, 16), (27, 16), (43, 16), (59, 2)]
    assert {peer for peer, _, _ in plan} <= {"a", "b"}  # c is behind us
    for peer, first, count in plan:
        assert {"a": 60, "b": 30}[peer] >= first + count - 1  # a peer holding all of it
    assert sync.compute_plan(60, {"a": 60}) == []


async def test_first_round_fetches_from_every_peer_at_once_in_height_order() -> None:
    host = FakeHost({"a": 45, "b": 45, "c": 45}, delay=0.05)
    chain = Chain(5)
    sync = _sync(host, chain)
    sync._started_at = asyncio.get_running_loop().time()
    started = asyncio.get_running_loop().time()
    behind = await sync._round()
    elapsed = asyncio.get_running_loop().time() - started
    assert chain.height == 45, chain.fed
    assert chain.fed == list(range(6, 46))  # fed strictly in order
    assert not behind and sync.synced_blocks == 40
    block_requests = [r for r in host.requests if r[1] == BLOCKS_PROTOCOL]
    assert {peer for peer, _, _ in block_requests} == {"a", "b", "c"}
    # status polls and the three ranges ran concurrently: about one delay, not six
    assert elapsed < 4 * host.delay, elapsed
    assert all(count == MAX_BLOCKS_PER_REQUEST for _, _, (_, count) in block_requests)


@pytest.mark.parametrize("seed", range(6))
async def test_later_rounds_poll_then_fetch_only_when_more_than_one_block_behind(
    seed: int,
) -> None:
    host = FakeHost({"a": 20, "b": 21})
    chain = Chain(20)
    sync = _sync(host, chain)
    sync._rng = random.Random(seed)
    sync._started_at = asyncio.get_running_loop().time()
    sync._probed = True
    assert not await sync._round()  # one behind: consensus catches up by itself
    assert chain.height == 20
    host.heights = {"a": 40, "b": 25}
    await sync._round()
    assert chain.height == 40 and chain.fed == list(range(21, 41))


async def test_first_round_with_one_peer_still_asks_for_several_ranges() -> None:
    """Right after a restart often only one peer is connected; a 30-block gap must still be
    closed in one round, not 16 blocks per poll."""
    host = FakeHost({"a": 40})
    chain = Chain(10)
    sync = _sync(host, chain)
    sync._started_at = asyncio.get_running_loop().time()
    await sync._round()
    assert chain.height == 40
    ranges = sorted(args for _, protocol, args in host.requests if protocol == BLOCKS_PROTOCOL)
    assert ranges[:2] == [(11, 16), (27, 16)] and len(ranges) >= 2


async def test_blocks_are_fed_as_answers_arrive_not_after_the_slowest_peer() -> None:
    chain = Chain(0)
    seen_by_slow_peer: list[int] = []

    class SlowForB(FakeHost):
        async def request(self, peer: str, protocol: str, data: bytes, timeout: float) -> bytes:
            if peer == "b" and protocol == BLOCKS_PROTOCOL:
                await asyncio.sleep(0.3)
                seen_by_slow_peer.append(chain.height)
            return await super().request(peer, protocol, data, timeout)

    host = SlowForB({"a": 16, "b": 40})  # only b holds the heights above 16
    sync = _sync(host, chain)
    await sync._fetch([("a", 1, 16), ("b", 17, 16), ("b", 33, 8)])
    assert seen_by_slow_peer and seen_by_slow_peer[0] == 16  # a's range was in meanwhile
    assert chain.height == 40 and chain.fed == list(range(1, 41))
