"""How a client's signed transactions reach the network: gossip over libp2p, or HTTP.

Why gossip by default: a worker is a peer of the network like any node. Its transactions go out
on the batched ``txs`` channel (one gossip message carries many), so a hundred workers cost the
validators a few gossip deliveries per flush, not a hundred. HTTP submission to one node is the
fallback for clients that cannot open a p2p port.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Protocol

from alloranet.p2p.batcher import Batcher
from alloranet.p2p.config import TX_CHANNEL, P2PConfig
from alloranet.p2p.host import P2PHost
from alloranet.worker.client import NodeClient


class Transport(Protocol):
    async def start(self) -> None: ...

    async def send(self, tx: bytes) -> None: ...

    async def close(self) -> None: ...


class HttpTransport:
    def __init__(self, client: NodeClient) -> None:
        self._client = client

    async def start(self) -> None:
        return None

    async def send(self, tx: bytes) -> None:
        await self._client.post_tx(tx)

    async def close(self) -> None:
        return None


class P2PTransport:
    """A libp2p host of our own that publishes batches on the ``txs`` channel."""

    def __init__(
        self,
        key_file: Path,
        bootstrap: tuple[str, ...],
        network_id: str,
        flush_interval: float = 0.05,
    ) -> None:
        self._host = P2PHost(
            P2PConfig(
                key_file=key_file,
                listen_addrs=("/ip4/127.0.0.1/tcp/0",),
                bootstrap=bootstrap,
                network_id=network_id,
            )
        )
        self._batcher = Batcher(self._publish, flush_interval=flush_interval)

    async def _publish(self, data: bytes) -> None:
        await self._host.publish(TX_CHANNEL, data)

    @property
    def peer_id(self) -> str:
        return self._host.peer_id

    def peers(self) -> list[str]:
        return self._host.peers()

    async def start(self) -> None:
        # No subscription: we only publish (gossipsub's fanout to the validators, which are
        # subscribed), so we do not pay for receiving every other client's batches.
        await self._host.start()

    async def send(self, tx: bytes) -> None:
        await self._batcher.add(tx)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._batcher.close()
        await self._host.close()
