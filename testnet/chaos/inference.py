"""The inference load of a chaos run: simulated workers, a forecaster and reputers at work.

Why: the check "identical synthesis results on every node" needs syntheses to compare. The
actors are the testnet's own (``alloranet.worker``): the SDK's :class:`Worker` and
:class:`Reputer` loops, the simulated :class:`World`, and the sample topic created and funded by
a faucet, exactly as ``alloranet testnet up`` runs them. Each actor talks to one node's API
(round robin over the genesis validators), so a fault on one node stalls only its actors until
that node is back; their transactions are ordinary SDK submissions, not part of the bank load
whose every acknowledged transaction must land.

Everything runs on one asyncio loop in a background thread, started and stopped by the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from alloranet.crypto import load_key
from alloranet.errors import AlloraError
from alloranet.node.localnet import ActorPlan
from alloranet.worker.client import NodeClient
from alloranet.worker.sdk import Reputer, Worker
from alloranet.worker.sim import REPUTER_STAKE, SAMPLE_TOPIC, ensure_topic
from alloranet.worker.simulation import World
from alloranet.worker.transport import HttpTransport

log = logging.getLogger("testnet.chaos.inference")

#: Topic polling period of each actor: slower than the SDK default, the nodes are busy.
POLL_INTERVAL_S = 0.5
#: Send the registration again if the topic does not list the actor this long after.
REGISTER_RETRY_S = 8.0


@dataclass
class InferenceRecord:
    topic_id: int | None = None
    #: receipt status counts per kind, e.g. {("inference", "included"): 12}
    receipts: Counter[tuple[str, str]] = field(default_factory=Counter)
    error: str | None = None

    def count(self, kind: str, status: str = "included") -> int:
        return self.receipts[(kind, status)]


class InferenceLoad:
    """Runs the actors of ``actors`` against ``apis`` (one API URL per actor, round robin)."""

    def __init__(self, actors: list[ActorPlan], faucet: Path, apis: list[str], seed: int) -> None:
        if not apis:
            raise ValueError("the inference load needs at least one node API")
        self.actors = actors
        self.faucet = faucet
        self.apis = apis
        self.seed = seed
        self.record = InferenceRecord()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._extra_clients: list[NodeClient] = []

    def start(self) -> None:
        # The SDK logs every refused call while a node is down (expected here) at WARNING.
        logging.getLogger("alloranet.worker").setLevel(logging.ERROR)
        self._thread = threading.Thread(target=self._main, name="chaos-inference", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15.0)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # ensure_topic raises SystemExit on a refused topic
            self.record.error = repr(exc)
            log.warning("inference load stopped: %r", exc)

    async def _run(self) -> None:
        topic_id = await self._ensure_topic()
        if topic_id is None:
            return
        self.record.topic_id = topic_id
        workers = [a for a in self.actors if a.role == "worker"]
        world = World(self.seed, max(1, len(workers)))
        index_of = {load_key(Path(a.key)).address: a.index for a in workers}
        clients: list[Worker | Reputer] = []
        for turn, actor in enumerate(self.actors):
            api = self.apis[turn % len(self.apis)]
            clients.append(self._client(actor, api, topic_id, world, index_of))
        tasks = [asyncio.create_task(self._actor(c)) for c in clients]
        while not self._stop.is_set():
            await asyncio.sleep(0.2)
        for c in clients:
            c.stop()
        await asyncio.wait(tasks, timeout=5.0)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        for c in clients:
            for receipt in c.receipts.values():
                self.record.receipts[(receipt.kind, receipt.status)] += 1
        for extra in [*self._extra_clients, *(c.client for c in clients)]:
            await extra.close()  # idempotent; a cancelled actor never reached its own close

    async def _ensure_topic(self) -> int | None:
        """Create and fund the sample topic through whichever node answers: the run may kill
        or isolate any node at any time, including the first one asked."""
        turn = 0
        while not self._stop.is_set():
            client = NodeClient(self.apis[turn % len(self.apis)])
            task = asyncio.create_task(ensure_topic(client, self.faucet, HttpTransport(client)))
            try:
                while not task.done() and not self._stop.is_set():
                    await asyncio.wait({task}, timeout=0.2)
                if not task.done():  # the run ended first: give up quietly
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    break
                return task.result()
            except AlloraError as exc:
                log.info("topic creation via %s failed (%s): next node", client.api, exc)
            finally:
                await client.close()
            turn += 1
            await asyncio.sleep(0.5)
        return None  # the run ended before the topic existed (a short run): nothing to drive

    async def _actor(self, actor: Worker | Reputer) -> None:
        """Register (again, until the topic lists the actor: its node may die with the
        transaction in its mempool), then run the SDK loop."""
        is_reputer = isinstance(actor, Reputer)
        role = "reputers" if is_reputer else "workers"
        loop = asyncio.get_running_loop()
        last_try = -REGISTER_RETRY_S
        while not self._stop.is_set():
            try:
                topic = await actor.client.topic(actor.topic_id)
                if actor.address in topic.get(role, []):
                    break
                if loop.time() - last_try >= REGISTER_RETRY_S:
                    last_try = loop.time()
                    # The same sequence as a lost attempt: identical bytes, never two txs.
                    actor.account.invalidate()
                    await actor.register(is_reputer, REPUTER_STAKE)
            except AlloraError:
                pass
            await asyncio.sleep(0.5)
        await actor.run()

    def _client(
        self, actor: ActorPlan, api: str, topic_id: int, world: World, index_of: dict[str, int]
    ) -> Worker | Reputer:
        key = load_key(Path(actor.key))
        index = actor.index
        if actor.role == "worker":

            def predict(nonce: int) -> float:
                return world.predict(index, nonce)

            return Worker(key, topic_id, predict, api, poll_interval=POLL_INTERVAL_S)
        if actor.role == "forecaster":

            def forecast(nonce: int, inferers: list[str]) -> dict[str, float]:
                return {
                    a: world.forecast_loss(index, index_of[a], nonce)
                    for a in inferers
                    if a in index_of
                }

            return Worker(
                key, topic_id, None, api, forecast=forecast, poll_interval=POLL_INTERVAL_S
            )
        status_client = NodeClient(api)
        self._extra_clients.append(status_client)
        lag = SAMPLE_TOPIC.ground_truth_lag

        async def truth(nonce: int) -> float | None:
            status = await status_client.status()
            return world.ground_truth(nonce) if status["height"] >= nonce + lag else None

        return Reputer(key, topic_id, truth, api, poll_interval=POLL_INTERVAL_S)
