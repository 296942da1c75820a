"""Blocks: a header that commits to everything, plus txs, evidence and the last commit.

Header fields (in encoding order): chain_id, height, time_ms (the proposer's clock; must exceed
the previous block's), prev_block_hash, app_hash (the state after the previous block, as in
CometBFT), proposer (public key), last_commit_hash, txs_hash, evidence_hash. The block hash is
SHA-256 of the header's canonical encoding; the three content hashes bind the body to it.
``last_commit`` is opaque bytes defined by the consensus layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from alloranet.chain.errors import BlockError
from alloranet.codec import (
    decode,
    encode,
    expect_bytes,
    expect_int,
    expect_str,
    expect_tuple,
    hash_value,
    sha256,
)
from alloranet.crypto import PUBLIC_KEY_SIZE
from alloranet.errors import AlloraError

MAX_BLOCK_BYTES: Final = 8 * 1024 * 1024
MAX_BLOCK_TXS: Final = 20_000
MAX_EVIDENCE: Final = 64


@dataclass(frozen=True, slots=True)
class Header:
    chain_id: str
    height: int
    time_ms: int
    prev_block_hash: bytes
    app_hash: bytes
    proposer: bytes
    last_commit_hash: bytes
    txs_hash: bytes
    evidence_hash: bytes

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.chain_id,
            self.height,
            self.time_ms,
            self.prev_block_hash,
            self.app_hash,
            self.proposer,
            self.last_commit_hash,
            self.txs_hash,
            self.evidence_hash,
        )

    @classmethod
    def from_wire(cls, wire: Any) -> Header:
        f = expect_tuple(wire, "header", 9)
        return cls(
            expect_str(f[0], "header.chain_id", 64),
            expect_int(f[1], "header.height", 1, 2**63 - 1),
            expect_int(f[2], "header.time_ms", 0, 2**63 - 1),
            expect_bytes(f[3], "header.prev_block_hash", max_size=32),
            expect_bytes(f[4], "header.app_hash", 32),
            expect_bytes(f[5], "header.proposer", PUBLIC_KEY_SIZE),
            expect_bytes(f[6], "header.last_commit_hash", 32),
            expect_bytes(f[7], "header.txs_hash", 32),
            expect_bytes(f[8], "header.evidence_hash", 32),
        )

    @property
    def hash(self) -> bytes:
        return hash_value(self.to_wire())


def compute_txs_hash(txs: tuple[bytes, ...]) -> bytes:
    return hash_value(tuple(sha256(tx) for tx in txs))


def compute_evidence_hash(evidence: tuple[tuple[Any, ...], ...]) -> bytes:
    return hash_value(evidence)


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[bytes, ...]
    evidence: tuple[tuple[Any, ...], ...]
    last_commit: bytes

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def to_wire(self) -> tuple[Any, ...]:
        return (self.header.to_wire(), self.txs, self.evidence, self.last_commit)

    def to_bytes(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def from_wire(cls, wire: Any) -> Block:
        f = expect_tuple(wire, "block", 4)
        txs = expect_tuple(f[1], "block.txs", max_len=MAX_BLOCK_TXS)
        evidence = expect_tuple(f[2], "block.evidence", max_len=MAX_EVIDENCE)
        block = cls(
            Header.from_wire(f[0]),
            tuple(expect_bytes(tx, "block.txs[]") for tx in txs),
            tuple(expect_tuple(ev, "block.evidence[]", 8) for ev in evidence),
            expect_bytes(f[3], "block.last_commit"),
        )
        block.validate_body_hashes()
        return block

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        try:
            return cls.from_wire(decode(data, max_size=MAX_BLOCK_BYTES, max_depth=16))
        except BlockError:
            raise
        except AlloraError as exc:
            raise BlockError(f"malformed block: {exc}") from None

    def validate_body_hashes(self) -> None:
        if self.header.txs_hash != compute_txs_hash(self.txs):
            raise BlockError("block: txs do not match the header's txs_hash")
        if self.header.evidence_hash != compute_evidence_hash(self.evidence):
            raise BlockError("block: evidence does not match the header's evidence_hash")
        if self.header.last_commit_hash != sha256(self.last_commit):
            raise BlockError("block: last commit does not match the header's last_commit_hash")
