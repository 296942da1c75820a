"""The worker and reputer SDK: plug in a model, get submissions, receipts and rewards.

A worker in ten lines::

    from alloranet.crypto import load_key
    from alloranet.worker import Worker

    def predict(nonce: int) -> float:
        return my_model.predict_next()

    worker = Worker(load_key(Path("worker.json")), topic_id=1, predict=predict,
                    api="http://127.0.0.1:1317", bootstrap=["/ip4/127.0.0.1/tcp/26656/p2p/12D3..."])
    asyncio.run(worker.run())

Why it is built like this:
- The chain opens one worker nonce per topic epoch; the SDK polls the topic's windows over the
  HTTP API and submits **exactly once per nonce** (a nonce is marked before the model runs, so a
  slow or failing model never leads to a second submission for the same nonce).
- Sequence numbers are tracked locally (so several submissions can be in flight) and re-read
  from the chain when a receipt says the sequence was wrong.
- Every submission gets a :class:`Receipt`: ``included`` at height H, ``failed`` with the
  chain's reason (e.g. "window closed", "not registered"), or ``expired`` when its window closed
  without inclusion (the usual cause: it reached the validators too late).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from alloranet.chain.msgs import (
    Msg,
    MsgAddStake,
    MsgInsertReputerPayload,
    MsgInsertWorkerPayload,
    MsgRegister,
    ValueBundle,
)
from alloranet.chain.tx import sign_tx
from alloranet.crypto import PrivateKey
from alloranet.errors import AlloraError
from alloranet.worker.client import ApiError, NodeClient
from alloranet.worker.transport import HttpTransport, Transport

log = logging.getLogger("alloranet.worker")

PredictFn = Callable[[int], float | Awaitable[float]]
ForecastFn = Callable[[int, list[str]], dict[str, float] | Awaitable[dict[str, float]]]


@dataclass
class Receipt:
    """What happened to one submission."""

    kind: str  # "inference" | "losses" | "register" | ...
    topic_id: int
    nonce: int
    tx_hash: str
    status: str = "pending"  # pending | included | failed | expired
    height: int | None = None
    reason: str = ""
    submitted_at: float = field(default_factory=time.monotonic)
    deadline_height: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "topic_id": self.topic_id,
            "nonce": self.nonce,
            "tx_hash": self.tx_hash,
            "status": self.status,
            "height": self.height,
            "reason": self.reason,
        }


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


class Account:
    """Signs transactions for one key and keeps its next sequence number."""

    def __init__(self, key: PrivateKey, client: NodeClient, chain_id: str | None = None) -> None:
        self.key = key
        self.address = key.address
        self._client = client
        self.chain_id = chain_id
        self._sequence: int | None = None
        self._lock = asyncio.Lock()
        self.fee = 0

    async def sync(self) -> None:
        account = await self._client.account(self.address)
        self._sequence = int(account.get("sequence", 0))
        if self.chain_id is None:
            self.chain_id = str((await self._client.status())["chain_id"])

    def invalidate(self) -> None:
        self._sequence = None

    async def sign(self, msgs: list[Msg]) -> bytes:
        async with self._lock:
            if self._sequence is None or self.chain_id is None:
                await self.sync()
            assert self._sequence is not None and self.chain_id is not None
            tx = sign_tx(self.key, self.chain_id, self._sequence, self.fee, msgs)
            self._sequence += 1
            return tx


class _Client(abc.ABC):
    """What workers and reputers share: the account, transport, receipts and the poll loop."""

    def __init__(
        self,
        key: PrivateKey,
        topic_id: int,
        api: str,
        transport: Transport | None = None,
        poll_interval: float = 0.25,
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        self.topic_id = topic_id
        self.client = NodeClient(api)
        self.account = Account(key, self.client)
        self.transport: Transport = transport or HttpTransport(self.client)
        self.poll_interval = poll_interval
        self.receipts: dict[str, Receipt] = {}
        self._on_receipt = on_receipt
        self._stop = asyncio.Event()
        self._owns_transport = transport is None

    @property
    def address(self) -> str:
        return self.account.address

    def stop(self) -> None:
        self._stop.set()

    async def submit(self, kind: str, nonce: int, msgs: list[Msg], deadline: int | None) -> Receipt:
        from alloranet.codec import sha256

        tx = await self.account.sign(msgs)
        receipt = Receipt(kind, self.topic_id, nonce, sha256(tx).hex(), deadline_height=deadline)
        self.receipts[receipt.tx_hash] = receipt
        try:
            await self.transport.send(tx)
        except AlloraError as exc:
            self._finish(receipt, "failed", None, f"not sent: {exc}")
            self.account.invalidate()
        return receipt

    def _finish(self, receipt: Receipt, status: str, height: int | None, reason: str) -> None:
        receipt.status = status
        receipt.height = height
        receipt.reason = reason
        if status == "failed" and "sequence" in reason:
            self.account.invalidate()
        log.info(
            "%s %s for topic %d nonce %d%s%s",
            receipt.kind,
            status,
            receipt.topic_id,
            receipt.nonce,
            f" at height {height}" if height is not None else "",
            f": {reason}" if reason else "",
            extra={"fields": receipt.as_dict()},
        )
        if self._on_receipt is not None:
            self._on_receipt(receipt)

    async def check_receipts(self, height: int) -> None:
        for receipt in [r for r in self.receipts.values() if r.status == "pending"]:
            try:
                info = await self.client.tx(bytes.fromhex(receipt.tx_hash))
            except ApiError as exc:
                if exc.status != 404:
                    continue
                if receipt.deadline_height is not None and height > receipt.deadline_height + 2:
                    self._finish(receipt, "expired", None, "window closed before inclusion")
                    self.account.invalidate()
                continue
            code = int(info.get("code", 0))
            if code == 0:
                self._finish(receipt, "included", int(info["height"]), "")
            else:
                self._finish(receipt, "failed", int(info["height"]), str(info.get("log", "")))

    async def register(self, is_reputer: bool, stake: int = 0) -> Receipt | None:
        """Register in the topic (and stake, for reputers) unless already registered."""
        topic = await self.client.topic(self.topic_id)
        role = "reputers" if is_reputer else "workers"
        if self.address in topic.get(role, []):
            return None
        msgs: list[Msg] = [MsgRegister(self.topic_id, is_reputer)]
        if is_reputer and stake > 0:
            msgs.append(MsgAddStake(self.topic_id, stake))
        return await self.submit("register", 0, msgs, None)

    @abc.abstractmethod
    async def _tick(self, topic: dict[str, Any], height: int) -> None:
        """React to the topic's windows at ``height`` (submit what is due)."""

    async def run(self) -> None:
        """Poll the topic and act until :meth:`stop` (or cancellation)."""
        await self.transport.start()
        try:
            while not self._stop.is_set():
                try:
                    topic = await self.client.topic(self.topic_id)
                    height = int(topic["height"])
                    await self._tick(topic, height)
                    await self.check_receipts(height)
                except ApiError as exc:
                    log.warning("node API unavailable: %s", exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.poll_interval)
        finally:
            if self._owns_transport:
                await self.transport.close()
            await self.client.close()


class Worker(_Client):
    """Submits ``predict(nonce)`` (and ``forecast(nonce, inferers)``) once per worker nonce."""

    def __init__(
        self,
        key: PrivateKey,
        topic_id: int,
        predict: PredictFn | None,
        api: str,
        forecast: ForecastFn | None = None,
        transport: Transport | None = None,
        poll_interval: float = 0.25,
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        if predict is None and forecast is None:
            raise ValueError("a worker needs predict(), forecast() or both")
        super().__init__(key, topic_id, api, transport, poll_interval, on_receipt)
        self._predict = predict
        self._forecast = forecast
        self.submitted: set[int] = set()

    async def _tick(self, topic: dict[str, Any], height: int) -> None:
        window = topic.get("worker_nonce")
        if not window:
            return
        nonce = int(window["nonce"])
        closes = int(window["window_closes_at"])
        if nonce in self.submitted or height >= closes:
            return
        self.submitted.add(nonce)  # before the model runs: never twice for one nonce
        try:
            inference = None
            if self._predict is not None:
                inference = float(await _maybe_await(self._predict(nonce)))
            forecast: tuple[tuple[str, float], ...] = ()
            if self._forecast is not None:
                inferers = sorted(set(topic.get("workers", [])) - {self.address})
                predicted = await _maybe_await(self._forecast(nonce, inferers))
                forecast = tuple(sorted((a, float(v)) for a, v in predicted.items()))
        except Exception as exc:  # a model error must not stop the worker
            log.warning("model failed for nonce %d: %s", nonce, exc)
            return
        if inference is None and not forecast:
            return
        msg = MsgInsertWorkerPayload(self.topic_id, nonce, inference, forecast)
        await self.submit("inference", nonce, [msg], closes)


LossFn = Callable[[float, float], float]
GroundTruthFn = Callable[[int], float | Awaitable[float | None] | None]


def log10_squared_error(truth: float, value: float) -> float:
    """The default loss: log10 of the squared error, floored so a perfect hit stays finite."""
    import math

    return math.log10(max((truth - value) ** 2, 1e-18))


def _values(items: Any) -> list[tuple[str, float]]:
    return [(str(i["worker"]), float(i["value"])) for i in items or ()]


def compute_loss_bundle(inference: dict[str, Any], truth: float, loss: LossFn) -> ValueBundle:
    """A reputer's bundle: the loss of every value the network reported for one nonce."""
    bundle = inference["network_inferences"]

    def pairs(key: str) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((w, loss(truth, v)) for w, v in _values(bundle.get(key))))

    nested = tuple(
        sorted(
            (
                str(item["forecaster"]),
                tuple(sorted((w, loss(truth, v)) for w, v in _values(item.get("values")))),
            )
            for item in bundle.get("one_out_inferer_forecaster_values", []) or ()
        )
    )
    return ValueBundle(
        combined=loss(truth, float(bundle["combined_value"])),
        naive=loss(truth, float(bundle["naive_value"])),
        inferer_values=pairs("inferer_values"),
        forecaster_values=pairs("forecaster_values"),
        one_out_inferer_values=pairs("one_out_inferer_values"),
        one_out_forecaster_values=pairs("one_out_forecaster_values"),
        one_in_forecaster_values=pairs("one_in_forecaster_values"),
        one_out_inferer_forecaster_values=nested,
    )


class Reputer(_Client):
    """Reports the losses of each open reputer nonce once its ground truth is known."""

    def __init__(
        self,
        key: PrivateKey,
        topic_id: int,
        ground_truth: GroundTruthFn,
        api: str,
        loss: LossFn = log10_squared_error,
        transport: Transport | None = None,
        poll_interval: float = 0.25,
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        super().__init__(key, topic_id, api, transport, poll_interval, on_receipt)
        self._truth = ground_truth
        self._loss = loss
        self.submitted: set[int] = set()

    async def _tick(self, topic: dict[str, Any], height: int) -> None:
        for window in topic.get("reputer_nonces", []):
            nonce = int(window["nonce"])
            closes = int(window["window_closes_at"])
            if nonce in self.submitted or height >= closes:
                continue
            truth = await _maybe_await(self._truth(nonce))
            if truth is None:
                continue  # ground truth not known yet: try again next poll
            try:
                inference = await self.client.network_inference(self.topic_id, nonce)
            except ApiError as exc:
                if exc.status == 404:
                    self.submitted.add(nonce)  # nothing was inferred for this nonce
                    continue
                raise
            self.submitted.add(nonce)
            bundle = compute_loss_bundle(inference, float(truth), self._loss)
            msg = MsgInsertReputerPayload(self.topic_id, nonce, bundle)
            await self.submit("losses", nonce, [msg], closes)
