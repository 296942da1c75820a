"""Transaction throughput and vote latency of alloranet.p2p over real processes on 127.0.0.1.

Measures, in one run:
  * the reference: 2 nodes, one publisher, every 300-byte transaction its own gossip message
    (the raw gossipsub ceiling, spec/libp2p.md §3), awaited back to back;
  * 4 and 7 nodes (only 4 with --quick) in a full mesh, each offering transactions in batches
    (Batcher) plus votes at Poisson times (seeded): transactions delivered to all nodes per
    second, vote fan-out latency (time until the LAST peer has a vote) p50/p99, CPU-ms per
    delivered transaction and per delivered message, cores busy.
Runs per cluster, in this order:
  * "node":   what a node does with its default config: votes over the per-peer priority
    direct streams (``broadcast_direct``, consensus traffic) and transaction batches over the
    per-peer bulk direct streams (``[p2p] tx_direct = true``) -- the headline
    ``vote_p50_ms_N`` / ``tx_per_s_N``;
  * "idle":   the same votes with no transaction load;
  * "gossip tx": direct votes, transaction batches over gossipsub (``tx_direct = false``, the
    alternative transport for transactions), kept as ``gossiptx_*``;
  * "gossip": votes over gossipsub too (not with --quick), kept as ``gossip_vote_p50_ms_N``.
All processes share this machine's cores; latencies use the shared wall clock. "cores" is the
CPU the node processes used divided by the run's wall time (2.0 = both cores saturated).

Usage: python benchmarks/p2p_gossip.py [--quick]. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
    max_bytes: int = 400_000,
    tx_direct: bool = False,
) -> dict[str, Any]:
    n = len(nodes)
    for node in nodes:
        await node.command(cmd="reset")
        await node.command(cmd="batching", flush_ms=flush_ms, max_bytes=max_bytes, direct=tx_direct)
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
    sent_votes = 0
    for node in nodes:
        sent_votes += (await node.command(cmd="wait_load", timeout=seconds + 60))["votes_sent"]
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
    key = "vote_lat_ms"  # direct votes arrive on the same subscription as gossip ones
    per_vote: dict[str, list[float]] = {}
    for f in full:
        for vote, ms in f[key].items():
            per_vote.setdefault(vote, []).append(ms)
    fanout = [max(v) for v in per_vote.values() if len(v) == n - 1]
    tx_lat = [ms for f in full for ms in f["tx_lat_ms"]]
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
        "cpu_us_per_tx": 1e6 * cpu / max(1, delivered_tx),  # per tx delivered to a node
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
    workdir: Path, n: int, load: dict[str, float], seconds: float, quick: bool
) -> dict[str, dict[str, Any]]:
    (workdir / f"n{n}").mkdir()
    nodes = await start_cluster(workdir / f"n{n}", n)
    try:
        await wait_for_mesh(nodes, "txs")
        await wait_for_mesh(nodes, "vote")
        idle = {**load, "tx_per_s": 0.0}
        idle_s = 2.0 if quick else 4.0
        runs = {
            "node": await run_load(nodes, seconds=seconds, direct=True, tx_direct=True, **load),
            "idle": await run_load(nodes, seconds=idle_s, direct=True, **idle),
            "gossip tx": await run_load(nodes, seconds=seconds, direct=True, **load),
        }
        if not quick:
            runs["gossip"] = await run_load(nodes, seconds=seconds, **load)
            runs["gossip idle"] = await run_load(nodes, seconds=idle_s, **idle)
        return runs
    finally:
        await stop_all(nodes)


RUN_NAMES = {
    "node": "direct votes, direct tx",
    "idle": "direct votes, no tx",
    "gossip tx": "direct votes, gossip tx",
    "gossip": "gossip votes, gossip tx",
    "gossip idle": "gossip votes, no tx",
}


def row(name: str, r: dict[str, Any]) -> str:
    per_tx = f"{r['cpu_us_per_tx']:.0f}" if r["tx_per_s"] > 0 else "-"
    return (
        f"{name:<30} {r['tx_per_s']:>9.0f} {r['tx_complete'] * 100:>6.1f}% "
        f"{r['vote_p50_ms']:>8.1f} {r['vote_p99_ms']:>8.1f} {r['votes_complete'] * 100:>6.1f}% "
        f"{per_tx:>9} {r['cpu_ms_per_delivery']:>7.1f} {r['cpu_cores_busy']:>5.2f}"
    )


async def main(quick: bool) -> dict[str, Any]:
    seconds = 2.0 if quick else 8.0
    workdir = Path(tempfile.mkdtemp(prefix="p2p_bench_"))
    (workdir / "raw").mkdir()
    raw = await raw_ceiling(workdir, 1.0 if quick else 5.0)
    load = {"tx_per_s": 6000.0, "votes_per_s": 5.0, "flush_ms": 500.0}
    results = {4: await cluster_runs(workdir, 4, load, seconds, quick)}
    if not quick:  # 7 processes start too slowly for the --quick budget
        results[7] = await cluster_runs(workdir, 7, load, seconds, quick)

    print(f"raw 2-node gossipsub ceiling (1 tx per message): {raw:.0f} msgs/s")
    print(
        f"{'run':<30} {'tx/s all':>9} {'tx ok':>7} {'vote p50':>8} {'vote p99':>8} "
        f"{'votes':>7} {'cpu us/tx':>9} {'cpu ms':>7} {'cores':>5}"
    )
    for n, runs in results.items():
        for key, r in runs.items():
            print(row(f"{n} nodes, {RUN_NAMES[key]}", r))
    for n, runs in results.items():
        node, idle_p50 = runs["node"], runs["idle"]["vote_p50_ms"]
        print(
            f"{n} nodes: batched tx/s {node['tx_per_s'] / raw:.1f}x the raw ceiling; "
            f"vote p50 under load {node['vote_p50_ms'] / max(idle_p50, 1e-9):.1f}x "
            f"the idle p50 ({idle_p50:.1f} ms)"
        )

    def fig(n: int, key: str, field: str) -> float | None:
        r = results.get(n, {}).get(key)
        return None if r is None else round(float(r[field]), 2)

    result: dict[str, Any] = {"raw_msgs_per_s_2": round(raw, 1), "quick": quick}
    for n in (4, 7):
        result |= {
            f"tx_per_s_{n}": fig(n, "node", "tx_per_s"),
            f"vote_p50_ms_{n}": fig(n, "node", "vote_p50_ms"),
            f"vote_p99_ms_{n}": fig(n, "node", "vote_p99_ms"),
            f"votes_complete_{n}": fig(n, "node", "votes_complete"),
            f"idle_vote_p50_ms_{n}": fig(n, "idle", "vote_p50_ms"),
            f"cpu_us_per_tx_{n}": fig(n, "node", "cpu_us_per_tx"),
            f"cpu_ms_per_delivery_{n}": fig(n, "node", "cpu_ms_per_delivery"),
            f"cores_busy_{n}": fig(n, "node", "cpu_cores_busy"),
            f"gossiptx_tx_per_s_{n}": fig(n, "gossip tx", "tx_per_s"),
            f"gossiptx_vote_p50_ms_{n}": fig(n, "gossip tx", "vote_p50_ms"),
            f"gossiptx_vote_p99_ms_{n}": fig(n, "gossip tx", "vote_p99_ms"),
            f"gossiptx_cpu_us_per_tx_{n}": fig(n, "gossip tx", "cpu_us_per_tx"),
            f"gossip_vote_p50_ms_{n}": fig(n, "gossip", "vote_p50_ms"),
            f"gossip_vote_p99_ms_{n}": fig(n, "gossip", "vote_p99_ms"),
            f"gossip_idle_vote_p50_ms_{n}": fig(n, "gossip idle", "vote_p50_ms"),
        }
    result["ratio_to_raw"] = round(results[4]["node"]["tx_per_s"] / raw, 2)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (< ~30 s)")
    args = parser.parse_args()
    started = time.monotonic()
    figures = asyncio.run(main(args.quick))
    print(f"total {time.monotonic() - started:.1f} s", file=sys.stderr)
    print(json.dumps(figures))
