"""Double-sign evidence: two conflicting votes signed by the same validator.

Why the checks are exactly these (spec/consensus.md 1.10): the votes must share validator,
height, round and type and differ in block id (nil, the empty id, counts as a value), and both
signatures must verify over :mod:`alloranet.chain.signbytes` for this chain id. The two block
ids are stored in ascending order so one equivocation has exactly one encoding and one hash,
which the chain uses to punish it at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alloranet.chain.errors import EvidenceError
from alloranet.chain.signbytes import VOTE_TYPES, vote_sign_bytes
from alloranet.codec import expect_bytes, expect_int, expect_tuple, hash_value
from alloranet.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, verify
from alloranet.errors import DecodeError

_MAX_BLOCK_ID = 64


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Votes (block_id_a, sig_a) and (block_id_b, sig_b) by ``pubkey`` at (height, round, type)."""

    pubkey: bytes
    vote_type: int
    height: int
    round: int
    block_id_a: bytes
    signature_a: bytes
    block_id_b: bytes
    signature_b: bytes

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.pubkey,
            self.vote_type,
            self.height,
            self.round,
            self.block_id_a,
            self.signature_a,
            self.block_id_b,
            self.signature_b,
        )

    @classmethod
    def from_wire(cls, wire: Any) -> DuplicateVoteEvidence:
        f = expect_tuple(wire, "evidence", 8)
        ev = cls(
            expect_bytes(f[0], "evidence.pubkey", PUBLIC_KEY_SIZE),
            expect_int(f[1], "evidence.vote_type"),
            expect_int(f[2], "evidence.height", 1, 2**63 - 1),
            expect_int(f[3], "evidence.round", 0, 2**31),
            expect_bytes(f[4], "evidence.block_id_a", max_size=_MAX_BLOCK_ID),
            expect_bytes(f[5], "evidence.signature_a", SIGNATURE_SIZE),
            expect_bytes(f[6], "evidence.block_id_b", max_size=_MAX_BLOCK_ID),
            expect_bytes(f[7], "evidence.signature_b", SIGNATURE_SIZE),
        )
        if ev.vote_type not in VOTE_TYPES:
            raise DecodeError(f"evidence.vote_type: {ev.vote_type} is not a vote type")
        if not ev.block_id_a < ev.block_id_b:
            raise DecodeError("evidence: block ids must differ and be in ascending order")
        return ev

    @classmethod
    def create(
        cls,
        pubkey: bytes,
        vote_type: int,
        height: int,
        round_: int,
        vote_a: tuple[bytes, bytes],
        vote_b: tuple[bytes, bytes],
    ) -> DuplicateVoteEvidence:
        """Build evidence from two (block_id, signature) votes in either order."""
        first, second = sorted((vote_a, vote_b))
        return cls(pubkey, vote_type, height, round_, first[0], first[1], second[0], second[1])

    @property
    def hash(self) -> bytes:
        return hash_value(self.to_wire())

    def validate_signatures(self, chain_id: str) -> None:
        """Raise :class:`EvidenceError` unless both votes verify for ``chain_id``."""
        if self.block_id_a == self.block_id_b:
            raise EvidenceError("evidence: the two votes are for the same block")
        for block_id, signature in (
            (self.block_id_a, self.signature_a),
            (self.block_id_b, self.signature_b),
        ):
            message = vote_sign_bytes(chain_id, self.vote_type, self.height, self.round, block_id)
            if not verify(self.pubkey, message, signature):
                raise EvidenceError(
                    f"evidence: a vote signature does not verify for chain {chain_id!r}"
                )
