"""A standalone p2p node driven over stdin/stdout, for process tests and the benchmark.

Why: the done-when tests need real processes (kill -9, restart with the same key) and the
benchmark needs N processes; the full node is another engineer's work. This script runs one
P2PHost with channels ``txs`` (batches, via Batcher) and ``vote`` and a ``sync`` echo protocol,
and answers one JSON line per command line::

    {"cmd": "connect", "addr": "..."}            {"cmd": "peers", "channel": "txs"}
    {"cmd": "send_batches", "count": 5, "items": 10, "size": 300}
    {"cmd": "load", "tx_per_s": 2000, "votes_per_s": 20, "seconds": 5, "size": 300}
    {"cmd": "received"}   {"cmd": "reset"}   {"cmd": "block", "peers": [...]}
    {"cmd": "unblock"}    {"cmd": "request", "peer": "...", "data_hex": "..."}
    {"cmd": "stats"}      {"cmd": "quit"}

Items carry (origin index, sequence, send time in ns), so receivers count unique deliveries
and compute latencies against the shared machine clock.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import random
import struct
import sys
import time
from pathlib import Path
from typing import Any, Final

from alloranet.errors import AlloraError, DecodeError
from alloranet.p2p.batcher import Batcher, decode_batch
from alloranet.p2p.config import TX_CHANNEL, P2PConfig
from alloranet.p2p.host import P2PHost
from alloranet.p2p.types import Inbound, Verdict

_HEAD: Final = struct.Struct(">HQQ")  # origin index, seq, send ns
#: Items with this origin come from outside the cluster (the hostile duplicate flood).
FOREIGN_ORIGIN: Final = 0xFFFF
MAX_BATCH_ITEMS: Final = 4096


def encode_item(origin: int, seq: int, size: int) -> bytes:
    head = _HEAD.pack(origin, seq, time.time_ns())
    return head + b"\x00" * max(0, size - len(head))


def validate_tx_batch(forwarder: str, data: bytes) -> Verdict:
    """A batch must decode and every item must carry our header (REJECT otherwise)."""
    try:
        items = decode_batch(data, max_items=MAX_BATCH_ITEMS, max_size=1024 * 1024)
    except DecodeError:
        return Verdict.REJECT
    return Verdict.ACCEPT if all(len(i) >= _HEAD.size for i in items) else Verdict.REJECT


def validate_vote(forwarder: str, data: bytes) -> Verdict:
    return Verdict.ACCEPT if len(data) >= _HEAD.size else Verdict.REJECT


class Demo:
    def __init__(self, host: P2PHost, index: int) -> None:
        self.host = host
        self.index = index
        self.seq = 0
        self.tx_direct = False
        self.batcher = Batcher(
            self._publish_tx, max_items=1024, max_bytes=200_000, flush_interval=0.02
        )
        self.reset()
        self.tasks: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        self.tx_seen: set[tuple[int, int]] = set()
        self.tx_dups = 0
        self.batches = 0
        self.batch_hex: dict[str, int] = {}
        self.tx_lat_ms: list[float] = []
        self.vote_lat_ms: dict[str, float] = {}
        self.direct_lat_ms: dict[str, float] = {}
        self.first_at = 0.0
        self.last_at = 0.0
        self.votes_sent = 0

    async def _publish_tx(self, data: bytes) -> None:
        if self.tx_direct:  # one copy per connected peer, on its bulk direct stream
            await self.host.broadcast_direct(TX_CHANNEL, data)
        else:
            await self.host.publish(TX_CHANNEL, data)

    async def consume_tx(self, sub: Any) -> None:
        async for msg in sub:
            self._on_tx(msg)

    def _on_tx(self, msg: Inbound) -> None:
        now = time.time_ns()
        self.batches += 1
        key = hashlib.sha256(msg.data).hexdigest()[:16]
        self.batch_hex[key] = self.batch_hex.get(key, 0) + 1
        for item in decode_batch(msg.data, max_items=MAX_BATCH_ITEMS, max_size=1024 * 1024):
            origin, seq, sent = _HEAD.unpack_from(item)
            if origin == FOREIGN_ORIGIN:
                continue
            if (origin, seq) in self.tx_seen:
                self.tx_dups += 1
                continue
            self.tx_seen.add((origin, seq))
            self.tx_lat_ms.append((now - sent) / 1e6)
        self.last_at = time.monotonic()
        if not self.first_at:
            self.first_at = self.last_at

    async def consume_votes(self, sub: Any) -> None:
        async for msg in sub:
            now = time.time_ns()
            origin, seq, sent = _HEAD.unpack_from(msg.data)
            self.vote_lat_ms.setdefault(f"{origin}:{seq}", (now - sent) / 1e6)

    async def on_direct_vote(self, peer: str, data: bytes) -> bytes:
        origin, seq, sent = _HEAD.unpack_from(data)
        self.direct_lat_ms.setdefault(f"{origin}:{seq}", (time.time_ns() - sent) / 1e6)
        return b""

    async def send_batches(self, count: int, items: int, size: int) -> None:
        for _ in range(count):
            for _ in range(items):
                self.seq += 1
                await self.batcher.add(encode_item(self.index, self.seq, size))
            await self.batcher.flush()

    async def load(
        self,
        tx_per_s: float,
        votes_per_s: float,
        seconds: float,
        size: int,
        direct: bool | str = False,
        raw: bool = False,
    ) -> None:
        """Offer transactions (batched) and votes (gossip or direct streams) for ``seconds``.

        ``raw`` publishes every transaction as its own gossip message (no batching), awaited
        one after another: the unbatched ceiling the benchmark compares against.
        """
        start = time.monotonic()
        if raw:
            while time.monotonic() - start < seconds:
                self.seq += 1
                await self.host.publish("vote", encode_item(self.index, self.seq, size))
            return

        async def txs() -> None:
            sent = 0
            while (elapsed := time.monotonic() - start) < seconds:
                due = int(elapsed * tx_per_s)
                while sent < due:
                    self.seq += 1
                    sent += 1
                    await self.batcher.add(encode_item(self.index, self.seq, size))
                await asyncio.sleep(0.005)
            await self.batcher.flush()

        async def votes() -> None:
            # Poisson arrivals (seeded per node) on a fixed schedule: a constant period would
            # phase-lock the votes to the batch flush timer and sample only one phase of it.
            rng = random.Random(self.index)
            vseq = 0
            next_at = time.monotonic()
            while votes_per_s > 0:
                next_at += rng.expovariate(votes_per_s)
                if next_at - start >= seconds:
                    break
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                vseq += 1
                self.votes_sent += 1
                vote = encode_item(self.index, 10**9 + vseq, 200)
                if direct == "request":
                    peers = self.host.peers()
                    await asyncio.gather(
                        *(self.host.request(p, "vote", vote, 5.0) for p in peers),
                        return_exceptions=True,
                    )
                elif direct:
                    await self.host.broadcast_direct("vote", vote)
                else:
                    await self.host.publish("vote", vote)

        await asyncio.gather(txs(), votes())

    def received(self) -> dict[str, Any]:
        by_origin: dict[str, int] = {}
        for origin, _ in self.tx_seen:
            by_origin[str(origin)] = by_origin.get(str(origin), 0) + 1
        return {
            "tx_by_origin": by_origin,
            "tx_unique": len(self.tx_seen),
            "tx_dups": self.tx_dups,
            "batches": self.batches,
            "max_batch_copies": max(self.batch_hex.values(), default=0),
            "batch_copies": self.batch_hex,
            "votes": len(self.vote_lat_ms),
            "tx_lat_ms": sorted(self.tx_lat_ms)[:: max(1, len(self.tx_lat_ms) // 2000)],
            "vote_lat_ms": self.vote_lat_ms,
            "direct_lat_ms": self.direct_lat_ms,
            "span_s": self.last_at - self.first_at,
        }


async def handle(demo: Demo, cmd: dict[str, Any]) -> dict[str, Any]:
    host = demo.host
    name = cmd.get("cmd")
    if name == "connect":
        await host.connect(cmd["addr"])
        return {}
    if name == "peers":
        channel = cmd.get("channel", TX_CHANNEL)
        return {"peers": host.peers(), "topic_peers": host.topic_peers(channel)}
    if name == "send_batches":
        await demo.send_batches(int(cmd["count"]), int(cmd["items"]), int(cmd.get("size", 300)))
        return {"seq": demo.seq}
    if name == "load":
        task = asyncio.create_task(
            demo.load(
                float(cmd["tx_per_s"]),
                float(cmd.get("votes_per_s", 0)),
                float(cmd["seconds"]),
                int(cmd.get("size", 300)),
                cmd.get("direct", False),
                bool(cmd.get("raw", False)),
            )
        )
        demo.tasks.append(task)
        return {}
    if name == "batching":
        await demo.batcher.flush()
        demo.tx_direct = bool(cmd.get("direct", False))
        demo.batcher = Batcher(
            demo._publish_tx,
            max_items=int(cmd.get("max_items", 1024)),
            max_bytes=int(cmd.get("max_bytes", 200_000)),
            flush_interval=float(cmd["flush_ms"]) / 1000,
        )
        return {}
    if name == "wait_load":
        await asyncio.gather(*demo.tasks)
        demo.tasks.clear()
        return {"seq": demo.seq, "votes_sent": demo.votes_sent}
    if name == "received":
        out = demo.received()
        if not cmd.get("full"):
            out.pop("batch_copies")
            out.pop("tx_lat_ms")
            out.pop("vote_lat_ms")
            out.pop("direct_lat_ms")
        return out
    if name == "reset":
        demo.reset()
        return {}
    if name == "block":
        host.block_peers(set(cmd["peers"]))
        return {}
    if name == "unblock":
        host.unblock_peers(set(cmd["peers"]) if cmd.get("peers") else None)
        return {}
    if name == "request":
        body = await host.request(cmd["peer"], "sync", bytes.fromhex(cmd["data_hex"]), 5.0)
        return {"body_hex": body.hex()}
    if name == "stats":
        cpu = os.times()
        return {"cpu_s": cpu.user + cpu.system, **host.stats()}
    raise AlloraError(f"unknown command {name!r}")


async def run(args: argparse.Namespace) -> None:
    config = P2PConfig(
        key_file=Path(args.key),
        listen_addrs=(args.listen,),
        bootstrap=tuple(args.bootstrap or ()),
        network_id=args.network,
    )
    host = P2PHost(config)
    demo = Demo(host, args.index)
    tx_sub = host.subscribe(TX_CHANNEL, validate_tx_batch)
    vote_sub = host.subscribe("vote", validate_vote)

    async def echo(peer: str, data: bytes) -> bytes:
        return data[::-1]

    host.set_request_handler("sync", echo)
    host.set_request_handler("vote", demo.on_direct_vote)
    await host.start()
    consumers = [
        asyncio.create_task(demo.consume_tx(tx_sub)),
        asyncio.create_task(demo.consume_votes(vote_sub)),
    ]
    out = sys.stdout
    out.write(json.dumps({"event": "ready", "peer_id": host.peer_id, "addrs": host.listen_addrs}))
    out.write("\n")
    out.flush()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            cmd = json.loads(line)
            if cmd.get("cmd") == "quit":
                break
            reply: dict[str, Any] = {"ok": True, **(await handle(demo, cmd))}
        except (AlloraError, KeyError, ValueError, TypeError) as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    for task in consumers + demo.tasks:
        task.cancel()
    await host.close(timeout=3.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="alloranet p2p demo node (tests, benchmarks)")
    parser.add_argument("--key", required=True)
    parser.add_argument("--listen", default="/ip4/127.0.0.1/tcp/0")
    parser.add_argument("--bootstrap", action="append")
    parser.add_argument("--network", default="demo")
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        import uvloop

        uvloop.run(run(args))
    except ImportError:
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
