"""Prometheus metrics of one node (served as text on ``/metrics``).

Why a private registry: tests run several nodes in one process; the global default registry
would mix them and refuse duplicate names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("alloranet_height", "last committed block height", registry=r)
        self.peers = Gauge("alloranet_peers", "connected p2p peers", registry=r)
        self.mempool_txs = Gauge("alloranet_mempool_txs", "transactions in the mempool", registry=r)
        self.mempool_bytes = Gauge("alloranet_mempool_bytes", "mempool size in bytes", registry=r)
        self.txs_committed = Counter(
            "alloranet_txs_committed", "transactions included in blocks", registry=r
        )
        self.txs_failed = Counter(
            "alloranet_txs_failed", "included transactions whose messages failed", registry=r
        )
        self.txs_submitted = Counter(
            "alloranet_txs_submitted", "transactions accepted from the HTTP API", registry=r
        )
        self.txs_gossiped_in = Counter(
            "alloranet_txs_gossip_received", "transactions received by gossip", registry=r
        )
        self.blocks_synced = Counter(
            "alloranet_blocks_synced", "blocks applied through block sync", registry=r
        )
        self.block_interval = Histogram(
            "alloranet_block_interval_seconds",
            "wall time between consecutive commits",
            buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
            registry=r,
        )
        self.block_txs = Histogram(
            "alloranet_block_txs",
            "transactions per block",
            buckets=(0, 1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.epochs_closed = Counter(
            "alloranet_reputer_nonces_closed", "reputer nonces closed (synthesis ran)", registry=r
        )

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
