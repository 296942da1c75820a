"""Double-sign evidence: two conflicting votes signed by one validator (spec 1.10).

Why its own type with a wire format: the chain puts it in a block and slashes on it, so every
node must verify it the same way from bytes alone: same validator, height, round and type,
different block ids (nil counts as a value), both signatures valid, validator in the set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alloranet.codec import decode, encode, expect_tuple
from alloranet.consensus.errors import (
    BadSignatureError,
    ConsensusError,
    UnknownValidatorError,
)
from alloranet.consensus.types import MAX_MESSAGE_SIZE, Verifier, Vote, real_verify
from alloranet.consensus.validators import ValidatorSet


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two votes with the same (validator, height, round, type) and different block ids.

    The pair is stored in a canonical order (by block id) so that the same equivocation seen
    by two nodes is byte-identical evidence and is committed once.
    """

    vote_a: Vote
    vote_b: Vote

    @classmethod
    def create(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        a, b = sorted((first, second), key=lambda v: (v.block_id, v.signature))
        return cls(a, b)

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    def key(self) -> tuple[bytes, int, int, int]:
        """(validator, height, round, type): one equivocation, whatever the pair."""
        a = self.vote_a
        return (a.validator, a.height, a.round, a.vote_type)

    def validate_shape(self) -> None:
        """Raise unless the two votes really conflict (no signature check)."""
        a, b = self.vote_a, self.vote_b
        if (a.validator, a.height, a.round, a.vote_type) != (
            b.validator,
            b.height,
            b.round,
            b.vote_type,
        ):
            raise ConsensusError("evidence votes differ in validator, height, round or type")
        if a.block_id == b.block_id:
            raise ConsensusError("evidence votes are for the same block id")
        if (a.block_id, a.signature) > (b.block_id, b.signature):
            raise ConsensusError("evidence votes are not in canonical order")

    def validate(
        self, chain_id: str, validators: ValidatorSet, verifier: Verifier = real_verify
    ) -> None:
        """Raise a typed error unless this is valid evidence against ``validators``' height."""
        self.validate_shape()
        if self.validator not in validators:
            raise UnknownValidatorError("evidence names a validator outside the set")
        for v in (self.vote_a, self.vote_b):
            if not v.is_signed_by(chain_id, verifier):
                raise BadSignatureError("an evidence vote's signature does not verify")

    def verify(
        self, chain_id: str, validators: ValidatorSet, verifier: Verifier = real_verify
    ) -> bool:
        """True iff :meth:`validate` passes."""
        try:
            self.validate(chain_id, validators, verifier)
        except ConsensusError:
            return False
        return True

    def to_wire(self) -> tuple[Any, ...]:
        return (self.vote_a.to_wire(), self.vote_b.to_wire())

    @classmethod
    def from_wire(cls, t: Any) -> DuplicateVoteEvidence:
        f = expect_tuple(t, "evidence", 2)
        ev = cls(Vote.from_wire(f[0]), Vote.from_wire(f[1]))
        try:
            ev.validate_shape()
        except ConsensusError as e:
            from alloranet.errors import DecodeError

            raise DecodeError(f"evidence: {e}") from e
        return ev

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> DuplicateVoteEvidence:
        return cls.from_wire(decode(data, max_size=MAX_MESSAGE_SIZE))
