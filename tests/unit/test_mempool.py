"""Mempool admission, bounds, reaping order and the re-check after a block."""

from __future__ import annotations

import pytest

from alloranet.codec import sha256
from alloranet.errors import ValidationError
from alloranet.mempool import (
    DuplicateTxError,
    Mempool,
    MempoolFullError,
    TxRejectedError,
    TxTooLargeError,
)


class SeqChecker:
    """A toy chain: tx = b"sender:seq"; committed sequences live in ``state``."""

    def __init__(self) -> None:
        self.state: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.rechecks = 0

    def check(self, tx: bytes, recheck: bool) -> None:
        if recheck:
            self.rechecks += 1
        sender, _, seq_text = tx.decode().partition(":")
        if not seq_text.isdigit():
            raise ValidationError("bad signature")
        expected = self.pending.get(sender, self.state.get(sender, 0))
        if int(seq_text) != expected:
            raise ValidationError(f"wrong sequence: expected {expected}, got {seq_text}")
        self.pending[sender] = expected + 1

    def reset(self) -> None:
        self.pending = {}


def test_admits_consecutive_sequences_and_refuses_gaps() -> None:
    pool = Mempool(SeqChecker())
    pool.add(b"a:0")
    pool.add(b"a:1")
    with pytest.raises(TxRejectedError, match="expected 2"):
        pool.add(b"a:3")
    with pytest.raises(DuplicateTxError):
        pool.add(b"a:1")
    assert len(pool) == 2
    assert pool.stats().rejected_total == 1


def test_bounds_give_back_pressure() -> None:
    pool = Mempool(SeqChecker(), max_txs=2, max_bytes=1000, max_tx_bytes=10)
    pool.add(b"a:0")
    pool.add(b"b:0")
    with pytest.raises(MempoolFullError):
        pool.add(b"c:0")
    with pytest.raises(TxTooLargeError):
        pool.add(b"x" * 11)
    byte_bound = Mempool(SeqChecker(), max_txs=100, max_bytes=6, max_tx_bytes=6)
    byte_bound.add(b"a:0")
    with pytest.raises(MempoolFullError):
        byte_bound.add(b"b:0:")


def test_reap_keeps_arrival_order_within_bounds() -> None:
    pool = Mempool(SeqChecker())
    txs = [b"a:0", b"b:0", b"a:1", b"c:0"]
    for tx in txs:
        pool.add(tx)
    assert pool.reap(10, 10_000) == txs
    assert pool.reap(2, 10_000) == txs[:2]
    assert pool.reap(10, 7) == txs[:2]
    assert len(pool) == 4  # reaping does not remove


def test_update_removes_committed_and_evicts_invalidated() -> None:
    checker = SeqChecker()
    pool = Mempool(checker)
    for tx in (b"a:0", b"a:1", b"b:0", b"b:1"):
        pool.add(tx)
    # A block commits a:0 and, from elsewhere, b's sequence 0 and 1 (so our b:0, b:1 are stale).
    checker.state = {"a": 1, "b": 2}
    evicted = pool.update([b"a:0"])
    assert evicted == 2
    assert pool.reap(10, 10_000) == [b"a:1"]
    assert checker.rechecks == 3
    with pytest.raises(DuplicateTxError):
        pool.add(b"a:0")  # committed: remembered, not re-admitted
    pool.add(b"a:2")


def test_listeners_see_admitted_txs_only() -> None:
    seen: list[bytes] = []
    pool = Mempool(SeqChecker())
    pool.on_admit(seen.append)
    pool.add(b"a:0")
    with pytest.raises(TxRejectedError):
        pool.add(b"a:9")
    assert seen == [b"a:0"]


def test_update_with_known_hashes_drops_the_same_txs() -> None:
    checker = SeqChecker()
    pool = Mempool(checker)
    txs = [b"a:0", b"a:1", b"a:2"]
    for tx in txs:
        pool.add(tx)
    checker.state["a"] = 1
    assert pool.update(txs[:1], [sha256(txs[0])]) == 0
    assert pool.reap(10, 10_000) == txs[1:]
    with pytest.raises(ValueError, match="one hash per"):
        pool.update(txs[1:], [])
