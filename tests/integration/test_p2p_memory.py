"""The in-memory twin: same face, multi-hop gossip, verdicts, bans, fault hook, requests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from alloranet.errors import ConfigError
from alloranet.p2p.errors import (
    HostClosedError,
    MessageTooLargeError,
    PeerUnreachableError,
    RemoteError,
    RequestTimeoutError,
)
from alloranet.p2p.memory import MemoryHost, MemoryNetwork
from alloranet.p2p.types import Inbound, P2PHostAPI, Verdict


async def drain(sub: AsyncIterator[Inbound]) -> list[Inbound]:
    """Everything delivered so far (the twin delivers on the next loop iterations)."""
    for _ in range(10):
        await asyncio.sleep(0)
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(anext(sub), 0.01))
        except TimeoutError:
            return out


async def line(n: int) -> tuple[MemoryNetwork, list[MemoryHost]]:
    """n hosts connected in a line: 0 - 1 - 2 - ... (gossip must hop)."""
    net = MemoryNetwork()
    hosts = [net.create_host(f"n{i}") for i in range(n)]
    for host in hosts:
        await host.start()
    for a, b in itertools.pairwise(hosts):
        await b.connect(a.listen_addrs[0])
    return net, hosts


def test_memory_host_satisfies_the_protocol() -> None:
    host: P2PHostAPI = MemoryHost(MemoryNetwork(), "x")
    assert host.peer_id == "x"


async def test_gossip_crosses_hops_once_and_skips_origin() -> None:
    _, hosts = await line(4)
    subs = [h.subscribe("tx") for h in hosts]
    await hosts[0].publish("tx", b"batch")
    await hosts[0].publish("tx", b"batch")  # duplicate content: delivered once
    assert await drain(subs[0]) == []
    for sub in subs[1:]:
        got = await drain(sub)
        assert [(m.origin, m.data) for m in got] == [("n0", b"batch")]
    assert (await drain(subs[3]) == []) and True


async def test_reject_bans_forwarder_and_ignore_does_not() -> None:
    _, (a, b) = await line(2)
    verdicts = {b"bad": Verdict.REJECT, b"old": Verdict.IGNORE}
    sub = b.subscribe("vote", lambda fwd, data: verdicts.get(data[:3], Verdict.ACCEPT))
    for i in range(10):
        await a.publish("vote", b"old%d" % i)
    assert await drain(sub) == [] and a.peer_id in b.peers()
    for i in range(4):
        await a.publish("vote", b"bad%d" % i)
    await drain(sub)
    assert b.peers() == []
    with pytest.raises(PeerUnreachableError):
        await a.connect(b.listen_addrs[0])


async def test_validator_exception_counts_as_reject() -> None:
    _, (a, b) = await line(2)

    def broken(forwarder: str, data: bytes) -> Verdict:
        raise ValueError("bug")

    sub = b.subscribe("tx", broken)
    await a.publish("tx", b"x")
    assert await drain(sub) == []
    assert b._scores.get_score("n0") < 0


async def test_block_partitions_and_unblock_heals() -> None:
    _, hosts = await line(3)
    subs = [h.subscribe("tx") for h in hosts]
    hosts[1].block_peers({"n2"})
    assert "n2" not in hosts[1].peers()
    await hosts[0].publish("tx", b"one")
    assert len(await drain(subs[1])) == 1
    assert await drain(subs[2]) == []
    with pytest.raises(PeerUnreachableError):
        await hosts[2].connect(hosts[1].listen_addrs[0])
    hosts[1].unblock_peers()
    await hosts[2].connect(hosts[1].listen_addrs[0])
    await hosts[0].publish("tx", b"two")
    assert [m.data for m in await drain(subs[2])] == [b"two"]


async def test_requests_caps_and_timeouts() -> None:
    _, (a, b) = await line(2)

    async def handler(peer: str, data: bytes) -> bytes:
        if data == b"slow":
            await asyncio.sleep(1)
        if data == b"fail":
            raise ValueError("nope")
        return b"r:" + data

    b.set_request_handler("sync", handler)
    assert await a.request("n1", "sync", b"q", timeout=1) == b"r:q"
    with pytest.raises(RequestTimeoutError):
        await a.request("n1", "sync", b"slow", timeout=0.05)
    with pytest.raises(RemoteError):
        await a.request("n1", "sync", b"fail", timeout=1)
    with pytest.raises(RemoteError):
        await a.request("n1", "other", b"q", timeout=1)
    with pytest.raises(MessageTooLargeError):
        await a.request("n1", "sync", b"x" * (1024 * 1024 + 1), timeout=1)
    with pytest.raises(MessageTooLargeError):
        await a.publish("tx", b"x" * 1_000_001)
    with pytest.raises(ConfigError):
        a.subscribe("bad/name")


async def test_close_ends_subscriptions_and_calls() -> None:
    _, (a, b) = await line(2)
    sub = a.subscribe("tx")
    await a.close()
    with pytest.raises(StopAsyncIteration):
        await anext(sub)
    with pytest.raises(HostClosedError):
        await a.publish("tx", b"x")
    assert b.peers() == []


async def test_direct_sends_reach_only_the_neighbour_and_are_validated() -> None:
    _, hosts = await line(3)
    subs = [
        h.subscribe("vote", lambda f, d: Verdict.REJECT if d == b"bad" else Verdict.ACCEPT)
        for h in hosts
    ]
    assert await hosts[1].broadcast_direct("vote", b"v1") == []
    assert [m.data for m in await drain(subs[0])] == [b"v1"]
    assert [m.data for m in await drain(subs[2])] == [b"v1"]
    await hosts[0].send_direct("n1", "vote", b"v2")
    assert [(m.origin, m.data) for m in await drain(subs[1])] == [("n0", b"v2")]
    assert await drain(subs[2]) == []  # direct messages are not forwarded
    await hosts[0].send_direct("n1", "vote", b"bad")
    assert await drain(subs[1]) == [] and hosts[1]._scores.get_score("n0") < 0
    with pytest.raises(PeerUnreachableError):
        await hosts[0].send_direct("n2", "vote", b"x")  # not connected
