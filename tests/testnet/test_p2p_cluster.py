"""Real processes on 127.0.0.1: 4 demo nodes, one cluster reused across the assertions.

Order matters and is fixed (pytest runs a module's tests in file order): delivery, hostile
peer, partition and heal, kill and restart. Each test leaves the full mesh healthy again.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from alloranet.p2p.config import compute_topic
from alloranet.p2p.demo_cluster import DemoProcess, start_cluster, stop_all, wait_for_mesh

pytestmark = [pytest.mark.testnet, pytest.mark.asyncio(loop_scope="module")]

N = 4


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[DemoProcess]]:
    workdir = tmp_path_factory.mktemp("p2p_cluster")
    nodes = await start_cluster(workdir, N)
    try:
        await wait_for_mesh(nodes, "txs")
        await wait_for_mesh(nodes, "vote")
        yield nodes
    finally:
        await stop_all(nodes)
        for node in nodes:  # surface crashes in the logs of failed runs
            log = (workdir / f"node{node.index}.log").read_text(errors="replace")
            if "Traceback" in log:
                print(f"--- node{node.index}.log ---\n{log[-4000:]}")


async def wait_until(predicate, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)


async def reset_all(nodes: list[DemoProcess]) -> None:
    for node in nodes:
        await node.command(cmd="reset")


async def test_four_nodes_deliver_every_batch_to_every_node(cluster: list[DemoProcess]) -> None:
    await reset_all(cluster)
    batches, items = 5, 20
    await asyncio.gather(
        *(n.command(cmd="send_batches", count=batches, items=items, size=300) for n in cluster)
    )
    last_seq = {str(n.index): batches * items for n in cluster}  # items per origin

    async def complete() -> bool:
        for node in cluster:
            got = await node.command(cmd="received")
            want = {k: v for k, v in last_seq.items() if k != str(node.index)}
            # >=: after a heal, gossip may also replay the partition's messages (good)
            if any(got["tx_by_origin"].get(k, 0) < v for k, v in want.items()):
                return False
        return True

    try:
        await wait_until(complete, 20, "every batch at every node")
    except AssertionError:
        for node in cluster:
            print(node.index, last_seq, await node.command(cmd="received"))
            print(await node.command(cmd="peers"))
        raise
    for node in cluster:
        got = await node.command(cmd="received")
        assert got["batches"] >= batches * (N - 1)  # one message per batch
        assert got["tx_dups"] == 0


async def test_hostile_peer_leaves_honest_nodes_running_and_connected(
    cluster: list[DemoProcess],
) -> None:
    victims = cluster[:2]
    topic = compute_topic("demo", "txs")
    await reset_all(cluster)
    args = [sys.executable, "-m", "alloranet.p2p.hostile", "--topic", topic, "--seed", "7"]
    for victim in victims:
        args += ["--target", victim.addr]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]
    results = [json.loads(line) for line in out.decode().splitlines()]
    kinds = {r["attack"] for r in results}
    assert kinds == {
        "random_tcp",
        "malformed",
        "oversize",
        "bad_signature",
        "invalid_data",
        "dup_flood",
    }
    # the malformed frame really reached the victims (the crash path was exercised)
    assert all(r["outcome"] == "sent" for r in results if r["attack"] == "malformed"), results

    for node in cluster:
        assert node.alive, f"node {node.index} died"
    await wait_for_mesh(cluster, "txs")
    for node in cluster:
        peers = (await node.command(cmd="peers"))["peers"]
        assert {n.peer_id for n in cluster} - {node.peer_id} <= set(peers)
        got = await node.command(cmd="received", full=True)
        # the duplicate flood was delivered at most once to each node
        assert got["max_batch_copies"] <= 1
    # honest traffic still flows everywhere
    await test_four_nodes_deliver_every_batch_to_every_node(cluster)


async def test_fault_hook_partitions_and_heals(cluster: list[DemoProcess]) -> None:
    left, right = cluster[:2], cluster[2:]
    right_ids = [n.peer_id for n in right]
    left_ids = [n.peer_id for n in left]
    for node in left:
        await node.command(cmd="block", peers=right_ids)
    for node in right:
        await node.command(cmd="block", peers=left_ids)

    async def split() -> bool:
        for node in cluster:
            peers = set((await node.command(cmd="peers"))["peers"])
            other = right_ids if node in left else left_ids
            if peers & set(other):
                return False
        return True

    await wait_until(split, 10, "the partition to cut connections")
    await reset_all(cluster)
    await left[0].command(cmd="send_batches", count=2, items=10, size=300)
    await right[0].command(cmd="send_batches", count=2, items=10, size=300)

    async def sides_got_own() -> bool:
        a = await left[1].command(cmd="received")
        b = await right[1].command(cmd="received")
        return str(left[0].index) in a["tx_by_origin"] and str(right[0].index) in b["tx_by_origin"]

    await wait_until(sides_got_own, 10, "delivery inside each side")
    await asyncio.sleep(0.5)  # the one place we assert an absence: give leaks a chance
    for node in right:
        assert str(left[0].index) not in (await node.command(cmd="received"))["tx_by_origin"]
    for node in left:
        assert str(right[0].index) not in (await node.command(cmd="received"))["tx_by_origin"]

    for node in cluster:
        await node.command(cmd="unblock")
    await wait_for_mesh(cluster, "txs", timeout=15)
    await test_four_nodes_deliver_every_batch_to_every_node(cluster)


async def test_killed_node_restarts_with_same_key_and_receives_within_5s(
    cluster: list[DemoProcess],
) -> None:
    victim = cluster[1]  # dialled by nodes 2 and 3, dials node 0 itself only at start
    old_id, listen = victim.peer_id, victim.listen
    await victim.kill()
    others = [n for n in cluster if n is not victim]

    async def noticed() -> bool:
        for node in others:
            if old_id in (await node.command(cmd="peers"))["peers"]:
                return False
        return True

    await wait_until(noticed, 10, "peers to notice the kill")
    await victim.start(listen=listen)
    assert victim.peer_id == old_id
    restarted = time.monotonic()
    # nobody tells the restarted node about its peers: their redial loops must find it
    await reset_all(cluster)
    sender = cluster[3]
    seq = 0

    async def receives() -> bool:
        nonlocal seq
        seq = (await sender.command(cmd="send_batches", count=1, items=5, size=300))["seq"]
        got = await victim.command(cmd="received")
        return got["tx_by_origin"].get(str(sender.index), 0) > 0

    await wait_until(receives, 10, "the restarted node to receive")
    elapsed = time.monotonic() - restarted
    assert elapsed <= 5.0, f"restarted node received only after {elapsed:.2f}s"

    # and its own messages reach the others (no seqno reuse after the restart)
    await victim.command(cmd="send_batches", count=1, items=5, size=300)

    async def others_receive() -> bool:
        for node in others:
            got = await node.command(cmd="received")
            if got["tx_by_origin"].get(str(victim.index), 0) < 5:
                return False
        return True

    await wait_until(others_receive, 5, "the others to receive from the restarted node")
