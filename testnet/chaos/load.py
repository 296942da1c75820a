"""Steady transaction load during faults, and the record of what the nodes acknowledged.

Why a client that re-submits: a node's mempool is not durable (CometBFT's is not either), so a
transaction acknowledged by a node that is then killed may vanish from the network. A real
wallet re-broadcasts a pending transaction until it sees it in a block; the driver does the
same after the last fault heals, and the checker then demands that every acknowledged
transaction sits in exactly one block. The same signed bytes are re-sent, so a transaction can
never be committed twice by a correct chain, which is what the check probes.

Accounts: several funded load accounts, round robin, each with its own sequence; a submission
that was refused (HTTP 4xx/5xx, node down) does not consume the sequence.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from alloranet.chain.msgs import MsgSend
from alloranet.chain.tx import sign_tx
from alloranet.codec import sha256
from alloranet.crypto import PrivateKey
from testnet.client import ApiError, post_json

SEND_AMOUNT = 1_000


@dataclass
class LoadRecord:
    acknowledged: dict[str, bytes] = field(default_factory=dict)  # tx hash hex -> tx bytes
    refused: int = 0
    submitted: int = 0


class LoadDriver:
    """Submits signed bank transfers at ``tps`` to live nodes from a background thread."""

    def __init__(
        self,
        chain_id: str,
        keys: list[PrivateKey],
        live_apis: Callable[[], list[str]],
        tps: float,
        seed: int,
    ) -> None:
        self.chain_id = chain_id
        self.keys = keys
        self.sequences = [0] * len(keys)
        self.live_apis = live_apis
        self.tps = tps
        self.rng = random.Random(seed)
        self.record = LoadRecord()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.tps <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="chaos-load", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _run(self) -> None:
        interval = 1.0 / self.tps
        turn = 0
        while not self._stop.wait(interval):
            apis = self.live_apis()
            if not apis:
                continue
            index = turn % len(self.keys)
            turn += 1
            key = self.keys[index]
            recipient = self.keys[(index + 1) % len(self.keys)].address
            tx = sign_tx(
                key, self.chain_id, self.sequences[index], 0, [MsgSend(recipient, SEND_AMOUNT)]
            )
            api = self.rng.choice(apis)
            with self._lock:
                self.record.submitted += 1
            if self._submit(api, tx):
                with self._lock:
                    self.record.acknowledged[sha256(tx).hex()] = tx
                self.sequences[index] += 1
            else:
                with self._lock:
                    self.record.refused += 1

    @staticmethod
    def _submit(api: str, tx: bytes) -> bool:
        try:
            answer = post_json(f"{api}/v1/txs", {"tx": tx.hex()}, timeout=2.0)
        except (ApiError, OSError, ValueError):
            return False
        return isinstance(answer, dict) and answer.get("status") in ("pending", "known")

    def rebroadcast(self, included: set[str], apis: list[str]) -> int:
        """Re-send every acknowledged transaction not yet in a block to every live node."""
        with self._lock:
            # In acknowledgement order, which is sequence order per account: a node admits a
            # sender's transaction only after the one before it.
            pending = [tx for h, tx in self.record.acknowledged.items() if h not in included]
        for tx in pending:
            for api in apis:
                self._submit(api, tx)
        return len(pending)

    def wait_included(
        self, fetch_included: Callable[[], set[str]], apis: Callable[[], list[str]], timeout: float
    ) -> set[str]:
        """Re-broadcast until every acknowledged tx is included or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            included = fetch_included()
            with self._lock:
                missing = set(self.record.acknowledged) - included
            if not missing or time.monotonic() > deadline:
                return included
            self.rebroadcast(included, apis())
            time.sleep(0.5)
