"""The mempool: admitted-but-uncommitted transactions, in arrival order, bounded.

Why it looks like this:
- Admission runs the chain's own check (decode with limits, signature, sequence, fee balance)
  against a *check state* that already includes the pending transactions, so a client can send
  sequence n, n+1, n+2 without waiting for blocks (CometBFT's CheckTx state).
- Bounds by count and bytes give back-pressure: a full pool raises :class:`MempoolFullError`
  (the HTTP API turns it into 503 + Retry-After) instead of growing without limit.
- Reaping takes a prefix in arrival order, so a sender's transactions stay in sequence order.
- After each block, committed transactions leave and the rest are re-checked against the new
  state (a cheaper re-check: the signature was already verified at admission), dropping the ones
  the block made invalid.
- Gossip is not done here: :meth:`Mempool.add` reports whether the transaction is new and local,
  and the node hands those to the p2p batcher.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from alloranet.codec import sha256
from alloranet.errors import AlloraError, ValidationError


class MempoolError(AlloraError):
    """A transaction the mempool will not take."""


class MempoolFullError(MempoolError):
    """The pool is at its bound: back off and retry (HTTP 503)."""


class TxTooLargeError(MempoolError):
    """Larger than ``max_tx_bytes``; it can never be admitted."""


class DuplicateTxError(MempoolError):
    """Already in the pool (or just committed)."""


class TxRejectedError(MempoolError, ValidationError):
    """The chain's check refused it; the message says why."""


class TxChecker(Protocol):
    """The chain side of admission, filled in by the node.

    ``check`` validates ``tx`` against the check state and, if it passes, applies its
    sequence/fee effects to that state. ``reset`` starts a fresh check state from the latest
    committed state (called after each block, before the re-check)."""

    def check(self, tx: bytes, recheck: bool) -> None: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class MempoolStats:
    size: int
    bytes: int
    admitted_total: int
    rejected_total: int
    full_total: int
    evicted_total: int


class Mempool:
    def __init__(
        self,
        checker: TxChecker,
        max_txs: int = 20_000,
        max_bytes: int = 64 << 20,
        max_tx_bytes: int = 64 << 10,
        recent_cache: int = 50_000,
    ) -> None:
        if max_txs <= 0 or max_bytes <= 0 or max_tx_bytes <= 0:
            raise ValueError("mempool bounds must be positive")
        self._checker = checker
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_tx_bytes = max_tx_bytes
        self._txs: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0
        # Hashes recently committed or rejected: a gossiped duplicate costs a dict lookup, not
        # a signature check.
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._recent_cap = recent_cache
        self._admitted = 0
        self._rejected = 0
        self._full = 0
        self._evicted = 0
        self._listeners: list[Callable[[bytes], None]] = []

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._txs

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def stats(self) -> MempoolStats:
        return MempoolStats(
            len(self._txs), self._bytes, self._admitted, self._rejected, self._full, self._evicted
        )

    def on_admit(self, listener: Callable[[bytes], None]) -> None:
        """Call ``listener(tx)`` for every newly admitted transaction (e.g. to gossip it)."""
        self._listeners.append(listener)

    def is_full(self, extra_bytes: int = 0) -> bool:
        return len(self._txs) >= self.max_txs or self._bytes + extra_bytes > self.max_bytes

    def add(self, tx: bytes) -> bytes:
        """Admit ``tx`` and return its hash; raises a :class:`MempoolError` subclass if not."""
        if len(tx) > self.max_tx_bytes:
            self._rejected += 1
            raise TxTooLargeError(
                f"transaction is {len(tx)} bytes, the limit is {self.max_tx_bytes}"
            )
        tx_hash = sha256(tx)
        if tx_hash in self._txs or tx_hash in self._recent:
            raise DuplicateTxError(f"transaction {tx_hash.hex()} is already known")
        if self.is_full(len(tx)):
            self._full += 1
            raise MempoolFullError(
                f"mempool is full ({len(self._txs)} txs, {self._bytes} bytes): retry later"
            )
        try:
            self._checker.check(tx, recheck=False)
        except AlloraError as exc:
            self._rejected += 1
            raise TxRejectedError(str(exc)) from exc
        self._txs[tx_hash] = tx
        self._bytes += len(tx)
        self._admitted += 1
        for listener in self._listeners:
            listener(tx)
        return tx_hash

    def reap(self, max_txs: int, max_bytes: int) -> list[bytes]:
        """The oldest transactions that fit both bounds (they stay until committed)."""
        out: list[bytes] = []
        used = 0
        for tx in self._txs.values():
            if len(out) >= max_txs or used + len(tx) > max_bytes:
                break
            out.append(tx)
            used += len(tx)
        return out

    def _remember(self, tx_hash: bytes) -> None:
        self._recent[tx_hash] = None
        while len(self._recent) > self._recent_cap:
            self._recent.popitem(last=False)

    def update(self, committed: Iterable[bytes], hashes: Iterable[bytes] | None = None) -> int:
        """After a block: drop committed txs, reset the check state, re-check the rest in order.

        ``hashes`` are the committed transactions' hashes if the caller has them already.
        Returns how many remaining transactions the re-check evicted."""
        txs = list(committed)
        tx_hashes = list(hashes) if hashes is not None else [sha256(tx) for tx in txs]
        if len(tx_hashes) != len(txs):
            raise ValueError("update: one hash per committed transaction")
        for tx_hash in tx_hashes:
            removed = self._txs.pop(tx_hash, None)
            if removed is not None:
                self._bytes -= len(removed)
            self._remember(tx_hash)
        self._checker.reset()
        evicted = 0
        for tx_hash, tx in list(self._txs.items()):
            try:
                self._checker.check(tx, recheck=True)
            except AlloraError:
                del self._txs[tx_hash]
                self._bytes -= len(tx)
                self._remember(tx_hash)
                evicted += 1
        self._evicted += evicted
        return evicted
