"""``python -m alloranet.worker.sim --testnet ROOT --api URL``: the testnet's simulated actors.

One process, one libp2p host, every simulated worker, forecaster and reputer of the testnet
(keys from ``ROOT/actors/keys``). It first creates and funds the sample topic with the faucet
key (if topic 1 does not exist yet), registers every actor (reputers also stake), then runs the
SDK's :class:`Worker` and :class:`Reputer` loops until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any

from alloranet.chain.msgs import MsgCreateTopic, MsgFundTopic
from alloranet.crypto import load_key
from alloranet.types import UALLO_PER_ALLO
from alloranet.worker.client import ApiError, NodeClient
from alloranet.worker.sdk import Account, Receipt, Reputer, Worker
from alloranet.worker.simulation import World
from alloranet.worker.transport import P2PTransport, Transport

log = logging.getLogger("alloranet.worker.sim")

#: The sample topic: short epochs so a local network shows inferences within seconds.
SAMPLE_TOPIC = MsgCreateTopic(
    metadata="sample: synthetic price, context-dependent models",
    loss_method="mse",
    epoch_length=8,
    ground_truth_lag=8,
    worker_submission_window=4,
    p_norm=3.0,
    alpha_regret=0.5,
    allow_negative=False,
    epsilon=0.01,
    merit_sortition_alpha=0.1,
    active_inferer_quantile=0.25,
    active_forecaster_quantile=0.25,
    active_reputer_quantile=0.25,
)
TOPIC_FUNDING = 1_000 * UALLO_PER_ALLO
REPUTER_STAKE = 1_000 * UALLO_PER_ALLO


class SharedTransport:
    """Lets every actor send through one p2p host (started and closed once, here)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def start(self) -> None:
        return None

    async def send(self, tx: bytes) -> None:
        await self.inner.send(tx)

    async def close(self) -> None:
        return None


async def wait_included(client: NodeClient, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await client.tx(bytes.fromhex(tx_hash))
        except ApiError as exc:
            if exc.status not in (0, 404) or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.3)


async def ensure_topic(client: NodeClient, faucet_path: Path, transport: Transport) -> int:
    try:
        await client.topic(1)
        return 1
    except ApiError as exc:
        if exc.status != 404:
            raise
    faucet = Account(load_key(faucet_path), client)
    from alloranet.codec import sha256

    tx = await faucet.sign([SAMPLE_TOPIC, MsgFundTopic(1, TOPIC_FUNDING)])
    await transport.send(tx)
    info = await wait_included(client, sha256(tx).hex())
    if info["code"] != 0:
        raise SystemExit(f"creating the sample topic failed: {info.get('log')}")
    log.info("created and funded topic 1 at height %s", info["height"])
    return 1


async def run(root: Path, api: str) -> None:
    manifest = json.loads((root / "testnet.json").read_text())
    seed = int(manifest["seed"])
    actors = manifest.get("actors", [])
    workers = [a for a in actors if a["role"] == "worker"]
    world = World(seed, max(1, len(workers)))
    bootstrap = tuple(n["p2p"] for n in manifest["nodes"])
    p2p = P2PTransport(root / "actors" / "node_key.json", bootstrap, manifest["chain_id"])
    await p2p.start()
    shared = SharedTransport(p2p)
    client = NodeClient(api)
    while True:
        try:
            await client.status()
            break
        except ApiError:
            await asyncio.sleep(0.5)
    # Our host must be in the validators' mesh before the first publish.
    while len(p2p.peers()) < 1:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)
    topic_id = await ensure_topic(client, Path(manifest["faucet_key"]), shared)

    address_index = {load_key(Path(a["key"])).address: a["index"] for a in workers}

    def receipt_logger(receipt: Receipt) -> None:
        if receipt.status != "included":
            log.info("receipt %s", receipt.as_dict())

    clients: list[Worker | Reputer] = []
    for actor in actors:
        key = load_key(Path(actor["key"]))
        index = int(actor["index"])
        if actor["role"] == "worker":

            def predict(nonce: int, index: int = index) -> float:
                return world.predict(index, nonce)

            clients.append(
                Worker(key, topic_id, predict, api, transport=shared, on_receipt=receipt_logger)
            )
        elif actor["role"] == "forecaster":

            def forecast(nonce: int, inferers: list[str], index: int = index) -> dict[str, float]:
                return {
                    a: world.forecast_loss(index, address_index[a], nonce)
                    for a in inferers
                    if a in address_index
                }

            clients.append(
                Worker(
                    key,
                    topic_id,
                    None,
                    api,
                    forecast=forecast,
                    transport=shared,
                    on_receipt=receipt_logger,
                )
            )
        else:
            lag = SAMPLE_TOPIC.ground_truth_lag

            async def truth(nonce: int, lag: int = lag) -> float | None:
                status = await client.status()
                return world.ground_truth(nonce) if status["height"] >= nonce + lag else None

            clients.append(
                Reputer(key, topic_id, truth, api, transport=shared, on_receipt=receipt_logger)
            )
    for actor_client in clients:
        await actor_client.register(isinstance(actor_client, Reputer), REPUTER_STAKE)
    log.info("registered %d actors in topic %d", len(clients), topic_id)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(c.run()) for c in clients]
    await stop.wait()
    for c in clients:
        c.stop()
    await asyncio.wait(tasks, timeout=5.0)
    await p2p.close()
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--testnet", type=Path, required=True, help="testnet root directory")
    parser.add_argument("--api", required=True, help="a node's HTTP API URL")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("libp2p", "multiaddr", "trio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import uvloop

    uvloop.run(run(args.testnet, args.api))


if __name__ == "__main__":
    main()
