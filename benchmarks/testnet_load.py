"""Load on a real 4-validator local testnet: committed tx/s, submit-to-commit latency, RSS.

    python benchmarks/testnet_load.py [--quick] [--validators 4] [--seconds 60] [--batch 200]

Submission uses the batch form of ``POST /v1/txs`` (``{"txs": [hex, ...]}``, at most
``--batch`` per request, one result per tx; ``--batch 1`` posts each tx's raw bytes as before):
a load-heavy client sends many transactions per request. Senders are split over lanes, one
request in flight per lane, so each sender's transactions reach one node in sequence order.

Phase 1 (throughput): pre-signed 1-uallo transfers from 64 accounts go to the nodes' HTTP APIs
as fast as the nodes accept them (a full mempool answers ``unavailable``: the lane waits 50 ms
and resends from there) for ``--seconds``; committed tx/s = transactions committed / (last
commit - first submit).
Phase 2 (latency): half the measured rate, paced; latency = the node's commit time minus the
time the transaction was due to be sent (so batching delay counts against us).
Between and after the phases the drain outcome (drained or timed out, with how many missing)
and per-node mempool sizes are logged to stderr, and every 5 s the blocks seen.
Reference in the same run: raw Ed25519 verifications per second on this machine (each
transaction is verified once per node; four nodes share these two cores).
After both phases, node0 reports every validator's missed_blocks in the downtime window (the most
any validator missed, and how many are jailed: full last commits mean none under load).
Last line: JSON with tx_per_s, p50_latency_s, p99_latency_s, rss_mb_max, CPU ms per tx.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from alloranet.chain.msgs import MsgSend
from alloranet.chain.tx import sign_tx
from alloranet.crypto import PrivateKey, load_key, verify
from alloranet.types import UALLO_PER_ALLO
from testnet import processes
from testnet.manifest import load_manifest

SENDERS = 64
ERRORS: list[str] = []


def measure_verify_rate(seconds: float = 1.0) -> float:
    key = PrivateKey.from_label("bench-verify")
    msg = b"x" * 200
    sig = key.sign(msg)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            verify(key.public_key, msg, sig)
        n += 200
    return n / (time.perf_counter() - t0)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


class Chain:
    """Polls committed blocks and records when each tx hash was first seen committed."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.height = 0
        self.committed: dict[str, float] = {}
        self.block_times: list[tuple[int, float, int]] = []

    async def poll(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with session.get(f"{self.api}/v1/status") as resp:
                    top = int((await resp.json())["height"])
                while self.height < top:
                    async with session.get(f"{self.api}/v1/blocks/{self.height + 1}") as resp:
                        block = await resp.json()
                    # The node's own commit time (wall clock), not when this poll saw it: the
                    # poller may lag behind fast blocks on a busy machine.
                    stamp = block.get("committed_at_ms")
                    now = stamp / 1000 if stamp else time.time()
                    for tx in block["txs"]:
                        self.committed.setdefault(tx, now)
                    self.height += 1
                    self.block_times.append((self.height, now, len(block["txs"])))
            except asyncio.CancelledError:
                raise
            except Exception:  # a slow or refused poll: try again (never stop polling)
                pass
            await asyncio.sleep(0.05)


async def fund_senders(api: str, faucet: PrivateKey, chain_id: str) -> list[PrivateKey]:
    senders = [PrivateKey.from_label(f"bench-sender-{i}") for i in range(SENDERS)]
    msgs = [MsgSend(s.address, 1_000 * UALLO_PER_ALLO) for s in senders]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{api}/v1/accounts/{faucet.address}") as resp:
            seq = int((await resp.json())["sequence"])
        hashes = []
        for i in range(0, len(msgs), 32):
            tx = sign_tx(faucet, chain_id, seq, 0, msgs[i : i + 32])
            seq += 1
            async with session.post(
                f"{api}/v1/txs", data=tx, headers={"Content-Type": "application/octet-stream"}
            ) as resp:
                hashes.append((await resp.json())["hash"])
        deadline = time.monotonic() + 60
        for h in hashes:
            while True:
                async with session.get(f"{api}/v1/txs/{h}") as resp:
                    if resp.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("funding the senders did not commit within 60 s")
                await asyncio.sleep(0.2)
    return senders


def presign(
    senders: list[PrivateKey], chain_id: str, per_sender: int, start: dict[str, int]
) -> list[list[bytes]]:
    sink = PrivateKey.from_label("bench-sink").address
    out = []
    for s in senders:
        seq = start.get(s.address, 0)
        out.append(
            [sign_tx(s, chain_id, seq + i, 0, [MsgSend(sink, 1)]) for i in range(per_sender)]
        )
    return out


class Lane:
    """One HTTP client stream: a fixed subset of the senders, one request in flight at a time,
    so each sender's transactions reach one node in sequence order."""

    def __init__(self, api: str, queues: list[list[bytes]], first: list[int]) -> None:
        self.api = api
        self.queues = queues  # per owned sender: its presigned transactions in sequence order
        self.first = first  # per owned sender: its global sender index (for pacing)
        self.pos = [0] * len(queues)
        self.stopped = [False] * len(queues)


async def run_phase(
    apis: list[str],
    txs: list[list[bytes]],
    seconds: float,
    rate: float | None,
    batch: int,
    lanes_per_api: int,
) -> tuple[dict[str, float], float]:
    """Submit for ``seconds`` (paced at ``rate`` tx/s if given); returns submit times by hash.

    Transaction ``j`` of sender ``i`` is due at ``start + (j * SENDERS + i) / rate`` when paced;
    its latency is measured from that due time (so time spent waiting for a batch to go out
    counts against the node, never for it). Saturated (``rate`` None): from the POST time.
    ``batch`` > 1 uses the batch form of ``POST /v1/txs`` (``{"txs": [hex, ...]}``) with at most
    ``batch`` transactions per request; ``batch`` == 1 posts each transaction's raw bytes.
    """
    from alloranet.codec import sha256

    submitted: dict[str, float] = {}
    start = time.monotonic()
    wall_offset = time.time() - start
    end = start + seconds
    n_lanes = lanes_per_api * len(apis)
    lanes = [
        Lane(
            apis[k % len(apis)],
            [txs[i] for i in range(k, len(txs), n_lanes)],
            list(range(k, len(txs), n_lanes)),
        )
        for k in range(n_lanes)
    ]

    def due(lane: Lane, owned: int) -> float:
        if rate is None:
            return start
        return start + (lane.pos[owned] * len(txs) + lane.first[owned]) / rate

    async def post(session: aiohttp.ClientSession, lane: Lane, items: list[bytes]) -> list[str]:
        """Statuses in order; any failure of the request as a whole reads as 'unavailable'."""
        try:
            if batch == 1:
                async with session.post(
                    f"{lane.api}/v1/txs",
                    data=items[0],
                    headers={"Content-Type": "application/octet-stream"},
                ) as resp:
                    if resp.status == 503:
                        return ["unavailable"]
                    if resp.status >= 400:
                        ERRORS.append(await resp.text())
                        return ["rejected"]
                    return [(await resp.json())["status"]]
            async with session.post(
                f"{lane.api}/v1/txs", json={"txs": [tx.hex() for tx in items]}
            ) as resp:
                if resp.status >= 400:
                    ERRORS.append(await resp.text())
                    return ["unavailable"] * len(items)
                results = (await resp.json())["results"]
            for result in results:
                if result["status"] == "rejected":
                    ERRORS.append(str(result.get("error")))
            return [r["status"] for r in results]
        except aiohttp.ClientError:
            return ["unavailable"] * len(items)

    async def run_lane(session: aiohttp.ClientSession, lane: Lane) -> None:
        tick = 0.05 if rate is not None else 0.0
        while time.monotonic() < end:
            now = time.monotonic()
            picked: list[tuple[int, bytes, float]] = []
            # Round robin over the owned senders: each contributes its due prefix.
            progress = True
            taken = [0] * len(lane.queues)
            while progress and len(picked) < batch:
                progress = False
                for owned, queue in enumerate(lane.queues):
                    j = lane.pos[owned] + taken[owned]
                    if lane.stopped[owned] or j >= len(queue) or len(picked) >= batch:
                        continue
                    lane.pos[owned] += taken[owned]
                    when = due(lane, owned)
                    lane.pos[owned] -= taken[owned]
                    if when > now:
                        continue
                    picked.append((owned, queue[j], when))
                    taken[owned] += 1
                    progress = True
            if not picked:
                waits = [
                    due(lane, o)
                    for o in range(len(lane.queues))
                    if not lane.stopped[o] and lane.pos[o] < len(lane.queues[o])
                ]
                if not waits:
                    return
                await asyncio.sleep(max(tick, min(waits) - time.monotonic(), 0.001))
                continue
            sent_at = time.time()
            statuses = await post(session, lane, [tx for _, tx, _ in picked])
            backoff = False
            for (owned, tx, when), status in zip(picked, statuses, strict=True):
                if lane.stopped[owned]:
                    continue
                if status in ("pending", "known"):
                    submitted[sha256(tx).hex()] = sent_at if rate is None else when + wall_offset
                    lane.pos[owned] += 1
                elif status == "unavailable":
                    backoff = True
                    break  # this and every later one were not tried: resend them in order
                else:  # rejected: later sequences of this sender would all be gaps
                    lane.stopped[owned] = True
            if backoff:
                await asyncio.sleep(0.05)
            elif tick:
                await asyncio.sleep(tick)

    connector = aiohttp.TCPConnector(limit=max(64, n_lanes))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(run_lane(session, lane) for lane in lanes))
    return submitted, time.monotonic() - start


async def mempool_sizes(apis: list[str]) -> list[int]:
    sizes = []
    async with aiohttp.ClientSession() as session:
        for api in apis:
            try:
                async with session.get(f"{api}/v1/status") as resp:
                    sizes.append(int((await resp.json())["mempool_txs"]))
            except (aiohttp.ClientError, KeyError, ValueError):
                sizes.append(-1)
    return sizes


async def drain(
    apis: list[str], chain: Chain, submitted: dict[str, float], limit: float, label: str
) -> None:
    """Wait until every submitted tx is committed or ``limit`` seconds pass; say which."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and not all(h in chain.committed for h in submitted):
        await asyncio.sleep(0.1)
    missing = sum(1 for h in submitted if h not in chain.committed)
    outcome = "drained" if missing == 0 else f"TIMED OUT with {missing} uncommitted"
    log(
        f"{label}: {outcome} after {time.monotonic() - t0:.1f} s "
        f"({len(submitted) - missing}/{len(submitted)} committed; "
        f"mempools {await mempool_sizes(apis)})"
    )


async def watch(apis: list[str], chain: Chain, stop: asyncio.Event, every: float) -> None:
    """Log per-node mempool sizes and the recent blocks (count, txs, empty ones) as we go."""
    seen = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        recent = chain.block_times[seen:]
        seen += len(recent)
        txs = [b[2] for b in recent]
        log(
            f"  mempools {await mempool_sizes(apis)}; {len(recent)} blocks, "
            f"{sum(txs)} txs, {sum(1 for t in txs if t == 0)} empty, max {max(txs, default=0)}"
        )


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="alloranet-load-"))
    log(f"testnet up in {root}")
    up = subprocess.run(
        [sys.executable, "-m", "alloranet", "testnet", "up", "--validators", str(args.validators),
         "--workers", "0", "--forecasters", "0", "--reputers", "0", "--home", str(root),
         "--detach", "-o", "json"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if up.returncode != 0:
        raise SystemExit(up.stderr[-2000:])
    manifest = load_manifest(root)
    pids = [processes.read_pid(root, n.name) for n in manifest.nodes]
    apis = [n.api for n in manifest.nodes]
    try:
        verify_rate = measure_verify_rate()
        faucet = load_key(Path(manifest.faucet_key))
        log("funding the senders")
        senders = await fund_senders(apis[0], faucet, manifest.chain_id)
        chain = Chain(apis[0])
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{apis[0]}/v1/status") as resp:
                chain.height = int((await resp.json())["height"])
            poller = asyncio.create_task(chain.poll(session, stop))
            watcher = asyncio.create_task(watch(apis, chain, stop, 5.0))
            per_sender = int(args.max_rate * args.seconds / SENDERS) + 10
            txs = presign(senders, manifest.chain_id, per_sender, {})
            cpu0 = [cpu_s(p) for p in pids if p]
            own0 = time.process_time()
            t0 = time.time()
            log(f"phase 1: saturating for {args.seconds:.0f} s (batch {args.batch})")
            submitted, elapsed = await run_phase(
                apis, txs, args.seconds, None, args.batch, args.lanes
            )
            # Let the tail commit; throughput = committed / (last commit - first submit).
            await drain(apis, chain, submitted, 30 if args.quick else 180, "phase 1 drain")
            done = [chain.committed[h] for h in submitted if h in chain.committed]
            in_window = len(done)
            span = max(done) - t0 if done else elapsed
            cpu1 = [cpu_s(p) for p in pids if p]
            own1 = time.process_time()
            tx_per_s = in_window / span
            lat_full = [
                chain.committed[h] - t for h, t in submitted.items() if h in chain.committed
            ]

            half = max(1.0, tx_per_s / 2)
            # Next sequences: each sender submitted a prefix of its queue.
            counts = [0] * SENDERS
            from alloranet.codec import sha256

            index = {sha256(tx).hex(): i for i, q in enumerate(txs) for tx in q}
            for h in submitted:
                counts[index[h]] += 1
            per_sender2 = int(half * args.latency_seconds / SENDERS) + 10
            txs2 = presign(
                senders, manifest.chain_id, per_sender2,
                {s.address: counts[i] for i, s in enumerate(senders)},
            )  # fmt: skip
            log(f"phase 2: {half:.0f} tx/s paced for {args.latency_seconds:.0f} s")
            submitted2, _ = await run_phase(apis, txs2, args.latency_seconds, half, args.batch, 1)
            await drain(apis, chain, submitted2, 60, "phase 2 drain")
            stop.set()
            await poller
            await watcher
            # Liveness under load: with full last commits no healthy validator should look
            # offline (missed_blocks in the downtime window; jailed would be a failure).
            async with session.get(f"{apis[0]}/v1/validators") as resp:
                validators = (await resp.json())["validators"]
        lat = sorted(chain.committed[h] - t for h, t in submitted2.items() if h in chain.committed)
        rss = [rss_mb(p) for p in pids if p]
        cpu_per_tx_ms = (
            1000 * sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / max(1, in_window)
        )
        blocks = chain.block_times
        intervals = [b[1] - a[1] for a, b in itertools.pairwise(blocks)]
        return {
            "validators": args.validators,
            "seconds": round(elapsed, 1),
            "submitted": len(submitted),
            "committed": in_window,
            "span_s": round(span, 1),
            "tx_per_s": round(tx_per_s, 1),
            "verify_per_s": round(verify_rate, 1),
            "ratio_to_verify": round(tx_per_s / verify_rate, 4),
            "half_load_tx_per_s": round(half, 1),
            "p50_latency_s": round(statistics.median(lat), 3) if lat else None,
            "p99_latency_s": round(lat[int(0.99 * (len(lat) - 1))], 3) if lat else None,
            "saturated_p50_latency_s": round(statistics.median(lat_full), 3) if lat_full else None,
            "latency_samples": len(lat),
            "latency_submitted": len(submitted2),
            "rss_mb_max": round(max(rss), 1) if rss else None,
            "cpu_ms_per_tx_all_nodes": round(cpu_per_tx_ms, 3),
            "cpu_ms_per_tx_load_generator": round(1000 * (own1 - own0) / max(1, in_window), 3),
            "batch": args.batch,
            "block_interval_p50_s": round(statistics.median(intervals), 3) if intervals else None,
            "max_block_txs": max((b[2] for b in blocks), default=0),
            "rejected_submissions": len(ERRORS),
            "missed_blocks_max": max((int(v["missed_blocks"]) for v in validators), default=0),
            "jailed_validators": sum(1 for v in validators if v["jailed"]),
        }
    finally:
        log("testnet down")
        subprocess.run(
            [sys.executable, "-m", "alloranet", "testnet", "down", "--home", str(root)],
            capture_output=True, timeout=120,
        )  # fmt: skip
        log("done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (~30 s)")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--max-rate",
        type=float,
        default=3000.0,
        help="presigned tx budget/s (above what 4 nodes commit here, so the phase never runs dry)",
    )
    parser.add_argument(
        "--batch", type=int, default=200, help="txs per POST (1: one raw tx per request)"
    )
    parser.add_argument("--lanes", type=int, default=4, help="concurrent requests per node")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.latency_seconds, args.max_rate = 4.0, 3.0, 1000.0
    result = asyncio.run(bench(args))
    print(f"{'figure':<28}{'value':>14}  target")
    targets = {"tx_per_s": ">= 1000", "p50_latency_s": "<= 1.5", "rss_mb_max": "<= 200"}
    for key, value in result.items():
        print(f"{key:<28}{value!s:>14}  {targets.get(key, '')}")
    if ERRORS:
        print(f"first rejection: {ERRORS[0][:200]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
