"""Gossip throughput and vote latency of alloranet.p2p over real processes on 127.0.0.1.

Measures, in one run:
  * the reference: 2 nodes, one publisher, every 300-byte transaction its own gossip message
    (the raw gossipsub ceiling, spec/libp2p.md §3), awaited back to back;
  * 4 and 7 nodes in a full mesh, each offering transactions in batches (Batcher) plus votes
    at a steady rate: transactions delivered to all nodes per second, vote fan-out latency
    (time until the LAST peer has a vote) p50/p99, CPU-ms per delivered gossip message;
  * for consensus traffic at 4 nodes (7 in the full run): the same votes sent over a
    persistent direct stream to each peer (``broadcast_direct``) instead of gossipsub,
    under the same load and idle ("idle p50": votes only).
All processes share this machine's cores; latencies use the shared wall clock.

Usage: python benchmarks/p2p_gossip.py [--quick]. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from alloranet.p2p.demo_cluster import DemoProcess, start_cluster, stop_all, wait_for_mesh


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def cpu_total(nodes: list[DemoProcess]) -> float:
    total = 0.0
    for node in nodes:
        total += (await node.command(cmd="stats"))["cpu_s"]
    return total


async def run_load(
    nodes: list[DemoProcess],
    *,
    tx_per_s: float,
    votes_per_s: float,
    seconds: float,
    flush_ms: float,
    direct: bool = False,
) -> dict[str, Any]:
    n = len(nodes)
    for node in nodes:
        await node.command(cmd="reset")
        await node.command(cmd="batching", flush_ms=flush_ms, max_bytes=400_000)
    cpu0 = await cpu_total(nodes)
    t0 = time.monotonic()
    for node in nodes:
        await node.command(
            cmd="load",
            tx_per_s=tx_per_s / n,
            votes_per_s=votes_per_s,
            seconds=seconds,
            size=300,
            direct=direct,
        )
    for node in nodes:
        await node.command(cmd="wait_load", timeout=seconds + 60)
    # drain: wait until no node's count moves for 1 s (or 15 s at most)
    last: list[int] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        counts = [(await nd.command(cmd="received"))["tx_unique"] for nd in nodes]
        if counts == last:
            break
        last = counts
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - t0
    cpu = await cpu_total(nodes) - cpu0
    full = [await nd.command(cmd="received", full=True, timeout=60) for nd in nodes]
    delivered_tx = sum(f["tx_unique"] for f in full)
    gossip_msgs = sum(f["batches"] + f["votes"] for f in full)
    window = max(seconds, max(f["span_s"] for f in full))
    key = "vote_lat_ms"  # direct votes arrive on the same subscription
    per_vote: dict[str, list[float]] = {}
    for f in full:
        for vote, ms in f[key].items():
            per_vote.setdefault(vote, []).append(ms)
    fanout = [max(v) for v in per_vote.values() if len(v) == n - 1]
    tx_lat = [ms for f in full for ms in f["tx_lat_ms"]]
    sent_votes = int(votes_per_s * seconds) * n
    return {
        "nodes": n,
        "tx_per_s": delivered_tx / (n - 1) / window,
        "offered_tx_per_s": tx_per_s,
        "tx_complete": delivered_tx / (n - 1) / max(1, int(tx_per_s / n * seconds) * n),
        "tx_p50_ms": pct(tx_lat, 0.5),
        "vote_p50_ms": pct(fanout, 0.5),
        "vote_p99_ms": pct(fanout, 0.99),
        "votes_complete": len(fanout) / max(1, sent_votes),
        "cpu_ms_per_delivery": 1000 * cpu / max(1, gossip_msgs),
        "cpu_cores_busy": cpu / elapsed,
        "elapsed_s": elapsed,
    }


async def raw_ceiling(workdir: Path, seconds: float) -> float:
    nodes = await start_cluster(workdir / "raw", 2)
    try:
        await wait_for_mesh(nodes, "vote")
        await nodes[1].command(cmd="reset")
        t0 = time.monotonic()
        await nodes[0].command(cmd="load", tx_per_s=0, seconds=seconds, size=300, raw=True)
        await nodes[0].command(cmd="wait_load", timeout=seconds + 60)
        sent_window = time.monotonic() - t0
        prev = -1
        while True:  # drain
            got = (await nodes[1].command(cmd="received"))["votes"]
            if got == prev:
                break
            prev = got
            await asyncio.sleep(0.5)
        return got / sent_window
    finally:
        await stop_all(nodes)


async def cluster_runs(
    workdir: Path,
    n: int,
    load: dict[str, float],
    seconds: float,
    compare_direct: bool,
    quick: bool = False,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    (workdir / f"n{n}").mkdir()
    nodes = await start_cluster(workdir / f"n{n}", n)
    try:
        await wait_for_mesh(nodes, "tx")
        await wait_for_mesh(nodes, "vote")
        idle = {**load, "tx_per_s": 0.0}
        idle_s = 1.5 if quick else 3.0
        gossip = await run_load(nodes, seconds=seconds, **load)
        gossip["idle_vote_p50_ms"] = (await run_load(nodes, seconds=idle_s, **idle))["vote_p50_ms"]
        direct = None
        if compare_direct:
            idle_direct = await run_load(nodes, seconds=idle_s, direct=True, **idle)
            if quick:  # the loaded direct run is left out to stay near 30 s
                direct = dict(idle_direct, vote_p50_ms=float("nan"), vote_p99_ms=float("nan"))
            else:
                direct = await run_load(nodes, seconds=seconds, direct=True, **load)
            direct["idle_vote_p50_ms"] = idle_direct["vote_p50_ms"]
        return gossip, direct
    finally:
        await stop_all(nodes)


def row(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:<22} {r['tx_per_s']:>9.0f} {r['tx_complete'] * 100:>6.1f}% "
        f"{r['vote_p50_ms']:>8.1f} {r['vote_p99_ms']:>8.1f} {r['votes_complete'] * 100:>6.1f}% "
        f"{r['cpu_ms_per_delivery']:>8.1f} {r['cpu_cores_busy']:>5.2f} "
        f"{r['idle_vote_p50_ms']:>9.1f}"
    )


async def main(quick: bool) -> dict[str, Any]:
    seconds = 2.0 if quick else 8.0
    workdir = Path(tempfile.mkdtemp(prefix="p2p_bench_"))
    (workdir / "raw").mkdir()
    raw = await raw_ceiling(workdir, 1.0 if quick else 5.0)
    load4 = {"tx_per_s": 6000.0, "votes_per_s": 2.0, "flush_ms": 500.0}
    load7 = {"tx_per_s": 6000.0, "votes_per_s": 2.0, "flush_ms": 500.0}
    g4, d4 = await cluster_runs(workdir, 4, load4, seconds, compare_direct=True, quick=quick)
    g7: dict[str, Any] | None = None
    d7: dict[str, Any] | None = None
    if not quick:  # 7 processes start too slowly for the --quick budget
        g7, d7 = await cluster_runs(workdir, 7, load7, seconds, compare_direct=True)

    print(f"raw 2-node gossipsub ceiling (1 tx per message): {raw:.0f} msgs/s")
    print(
        f"{'run':<22} {'tx/s all':>9} {'tx ok':>7} {'vote p50':>8} {'vote p99':>8} "
        f"{'votes':>7} {'cpu ms':>8} {'cores':>5} {'idle p50':>9}"
    )
    print(row("4 nodes, gossip votes", g4))
    if d4 and not quick:
        print(row("4 nodes, direct votes", d4))
    if g7:
        print(row("7 nodes, gossip votes", g7))
    if d7:
        print(row("7 nodes, direct votes", d7))
    print(f"ratio of 4-node batched tx/s to the raw ceiling: {g4['tx_per_s'] / raw:.1f}x")
    for name, g, d in (("4", g4, d4), ("7", g7, d7)):
        if g and d:
            print(
                f"{name} nodes, votes only: p50 gossip {g['idle_vote_p50_ms']:.1f} ms, "
                f"direct streams {d['idle_vote_p50_ms']:.1f} ms"
            )
    result: dict[str, Any] = {
        "tx_per_s_4": round(g4["tx_per_s"], 1),
        "tx_per_s_7": round(g7["tx_per_s"], 1) if g7 else None,
        "vote_p50_ms_4": round(g4["vote_p50_ms"], 2),
        "vote_p50_ms_7": round(g7["vote_p50_ms"], 2) if g7 else None,
        "idle_vote_p50_ms_7": round(g7["idle_vote_p50_ms"], 2) if g7 else None,
        "vote_p99_ms_4": round(g4["vote_p99_ms"], 2),
        "vote_p99_ms_7": round(g7["vote_p99_ms"], 2) if g7 else None,
        "cpu_ms_per_delivery": round(
            statistics.mean([r["cpu_ms_per_delivery"] for r in (g4, g7) if r]), 2
        ),
        "cpu_ms_per_delivery_4": round(g4["cpu_ms_per_delivery"], 2),
        "cpu_ms_per_delivery_7": round(g7["cpu_ms_per_delivery"], 2) if g7 else None,
        "raw_msgs_per_s_2": round(raw, 1),
        "ratio_to_raw": round(g4["tx_per_s"] / raw, 2),
        "direct_vote_p50_ms_4": round(d4["vote_p50_ms"], 2) if d4 and not quick else None,
        "direct_vote_p99_ms_4": round(d4["vote_p99_ms"], 2) if d4 and not quick else None,
        "direct_vote_p50_ms_7": round(d7["vote_p50_ms"], 2) if d7 else None,
        "idle_vote_p50_ms_4": round(g4["idle_vote_p50_ms"], 2),
        "idle_direct_vote_p50_ms_4": round(d4["idle_vote_p50_ms"], 2) if d4 else None,
        "quick": quick,
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (< ~30 s)")
    args = parser.parse_args()
    started = time.monotonic()
    figures = asyncio.run(main(args.quick))
    print(f"total {time.monotonic() - started:.1f} s", file=sys.stderr)
    print(json.dumps(figures))
