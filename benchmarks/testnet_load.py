"""Load on a real 4-validator local testnet: committed tx/s, submit-to-commit latency, RSS.

    python benchmarks/testnet_load.py [--quick] [--validators 4] [--seconds 60]

Phase 1 (throughput): pre-signed 1-uallo transfers from many accounts are POSTed to the nodes'
HTTP APIs (round robin) as fast as the nodes accept them (a 503 from a full mempool is
back-pressure: the sender waits and retries) for ``--seconds``; committed tx/s = transactions
found in blocks during the window / window length.
Phase 2 (latency): half the measured rate, paced; latency = time from the POST to the first
poll that sees the transaction in a block (polled every 50 ms, so +25 ms on average).
Reference in the same run: raw Ed25519 verifications per second on this machine (each
transaction is verified at least once per node; four nodes share these two cores).
Last line: JSON with tx_per_s, p50_latency_s, p99_latency_s, rss_mb_max.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def run_phase(
    apis: list[str], chain: Chain, txs: list[list[bytes]], seconds: float, rate: float | None
) -> tuple[dict[str, float], float]:
    """Submit for ``seconds`` (paced at ``rate`` tx/s if given); returns submit times by hash."""
    from alloranet.codec import sha256

    submitted: dict[str, float] = {}
    start = time.monotonic()
    end = start + seconds
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender(index: int) -> None:
            api = apis[index % len(apis)]
            queue = txs[index]
            i = 0
            while i < len(queue) and time.monotonic() < end:
                if rate is not None:
                    due = start + (i * len(txs) + index) / rate
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                tx = queue[i]
                t = time.time()
                try:
                    async with session.post(
                        f"{api}/v1/txs",
                        data=tx,
                        headers={"Content-Type": "application/octet-stream"},
                    ) as resp:
                        if resp.status == 503:
                            await asyncio.sleep(0.05)
                            continue
                        if resp.status >= 400:
                            ERRORS.append(await resp.text())
                            break  # e.g. a sequence gap after a rejected tx: stop this sender
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
                    continue
                submitted[sha256(tx).hex()] = t
                i += 1

        await asyncio.gather(*(sender(i) for i in range(len(txs))))
    return submitted, time.monotonic() - start


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="alloranet-load-"))
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
        senders = await fund_senders(apis[0], faucet, manifest.chain_id)
        chain = Chain(apis[0])
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{apis[0]}/v1/status") as resp:
                chain.height = int((await resp.json())["height"])
            poller = asyncio.create_task(chain.poll(session, stop))
            per_sender = int(args.max_rate * args.seconds / SENDERS) + 10
            txs = presign(senders, manifest.chain_id, per_sender, {})
            cpu0 = [cpu_s(p) for p in pids if p]
            t0 = time.time()
            submitted, elapsed = await run_phase(apis, chain, txs, args.seconds, None)
            # Let the tail commit; throughput = committed / (last commit - first submit).
            drain = time.monotonic() + (30 if args.quick else 180)
            while time.monotonic() < drain and not all(h in chain.committed for h in submitted):
                await asyncio.sleep(0.1)
            done = [chain.committed[h] for h in submitted if h in chain.committed]
            in_window = len(done)
            span = max(done) - t0 if done else elapsed
            cpu1 = [cpu_s(p) for p in pids if p]
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
            submitted2, _ = await run_phase(apis, chain, txs2, args.latency_seconds, half)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(h in chain.committed for h in submitted2):
                await asyncio.sleep(0.1)
            stop.set()
            await poller
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
            "block_interval_p50_s": round(statistics.median(intervals), 3) if intervals else None,
            "max_block_txs": max((b[2] for b in blocks), default=0),
            "rejected_submissions": len(ERRORS),
        }
    finally:
        subprocess.run(
            [sys.executable, "-m", "alloranet", "testnet", "down", "--home", str(root)],
            capture_output=True, timeout=120,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (~30 s)")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--max-rate", type=float, default=2000.0, help="presigned tx budget/s")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.latency_seconds, args.max_rate = 4.0, 3.0, 600.0
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
