"""Consensus messages (proposal, vote, commit, evidence) and their wire formats.

Why arrays in a fixed field order: every node must hash and sign the same bytes, and the
canonical codec gives one encoding per tuple. Each ``from_wire`` checks every field's type and
bounds, so a malformed message becomes a :class:`DecodeError` naming the field, never a crash.
Signatures are checked by the caller against the validator set of the message's height
(``verify_*`` helpers here), because only the caller knows that set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from alloranet import crypto
from alloranet.chain.signbytes import (
    NIL_BLOCK_ID,
    PRECOMMIT,
    PREVOTE,
    PROPOSAL,
    VOTE_TYPES,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from alloranet.codec import (
    decode,
    encode,
    expect_bytes,
    expect_int,
    expect_tuple,
    sha256,
)
from alloranet.errors import DecodeError

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MAX_VALUE_SIZE",
    "NIL_BLOCK_ID",
    "PRECOMMIT",
    "PREVOTE",
    "PROPOSAL",
    "Commit",
    "CommitSig",
    "Decision",
    "DecisionRequest",
    "FakeKey",
    "KeySigner",
    "Proposal",
    "Verifier",
    "Vote",
    "compute_value_id",
    "decode_message",
    "encode_message",
    "fake_verify",
]

#: One consensus message on the wire stays under this (the p2p layer carries opaque bytes).
MAX_MESSAGE_SIZE: Final = 1024 * 1024
#: A proposed value (the encoded block) leaves room for the proposal's other fields.
MAX_VALUE_SIZE: Final = MAX_MESSAGE_SIZE - 4096
MAX_HEIGHT: Final = 2**62
MAX_ROUND: Final = 2**31
KEY_SIZE: Final = 32
MAX_SIG_SIZE: Final = 64
MAX_COMMIT_SIGS: Final = 10_000

#: Verifies (public_key, message, signature); real nodes use :func:`alloranet.crypto.verify`.
Verifier = Callable[[bytes, bytes, bytes], bool]


class KeySigner(Protocol):
    """Something that signs with one validator key (a crypto.Signer, or a fake in simulations)."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class FakeKey:
    """A keyed-hash "signature" for fast simulations: deterministic, cheap, never for real use.

    Why: the simulator runs thousands of schedules in CI; Ed25519 would dominate its CPU. The
    fake is still bound to the key and the message, so forged or mismatched votes still fail.
    """

    __slots__ = ("public_key",)

    def __init__(self, public_key: bytes) -> None:
        self.public_key = public_key

    def sign(self, message: bytes) -> bytes:
        return hashlib.blake2b(message, key=self.public_key, digest_size=64).digest()


def fake_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The verifier matching :class:`FakeKey`."""
    return hashlib.blake2b(message, key=public_key, digest_size=64).digest() == signature


def real_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification (the production verifier)."""
    return crypto.verify(public_key, message, signature)


def compute_value_id(value: bytes) -> bytes:
    """The id of a value (block) = SHA-256 of its bytes."""
    return sha256(value)


def _height(v: Any, name: str) -> int:
    return expect_int(v, name, 0, MAX_HEIGHT)


def _round(v: Any, name: str, lo: int = 0) -> int:
    return expect_int(v, name, lo, MAX_ROUND)


def _block_id(v: Any, name: str) -> bytes:
    b = expect_bytes(v, name, max_size=32)
    if len(b) not in (0, 32):
        raise DecodeError(f"{name}: a block id is 32 bytes or empty (nil), got {len(b)}")
    return b


@dataclass(frozen=True, slots=True)
class Vote:
    """A signed prevote or precommit for ``block_id`` (b"" = nil) at (height, round)."""

    vote_type: int
    height: int
    round: int
    block_id: bytes
    validator: bytes
    signature: bytes

    def sign_bytes(self, chain_id: str) -> bytes:
        return vote_sign_bytes(chain_id, self.vote_type, self.height, self.round, self.block_id)

    def is_signed_by(self, chain_id: str, verify: Verifier) -> bool:
        return verify(self.validator, self.sign_bytes(chain_id), self.signature)

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.vote_type,
            self.height,
            self.round,
            self.block_id,
            self.validator,
            self.signature,
        )

    @classmethod
    def from_wire(cls, t: Any) -> Vote:
        f = expect_tuple(t, "vote", 6)
        vote_type = expect_int(f[0], "vote.type")
        if vote_type not in VOTE_TYPES:
            raise DecodeError(f"vote.type: {vote_type} is not a prevote or precommit")
        return cls(
            vote_type,
            _height(f[1], "vote.height"),
            _round(f[2], "vote.round"),
            _block_id(f[3], "vote.block_id"),
            expect_bytes(f[4], "vote.validator", size=KEY_SIZE),
            expect_bytes(f[5], "vote.signature", max_size=MAX_SIG_SIZE),
        )


@dataclass(frozen=True, slots=True)
class Proposal:
    """A signed proposal of ``value`` at (height, round); ``pol_round`` = the paper's validRound."""

    height: int
    round: int
    pol_round: int
    value: bytes
    proposer: bytes
    signature: bytes

    @property
    def block_id(self) -> bytes:
        return compute_value_id(self.value)

    def sign_bytes(self, chain_id: str) -> bytes:
        return proposal_sign_bytes(chain_id, self.height, self.round, self.pol_round, self.block_id)

    def is_signed_by(self, chain_id: str, verify: Verifier) -> bool:
        return verify(self.proposer, self.sign_bytes(chain_id), self.signature)

    def to_wire(self) -> tuple[Any, ...]:
        return (self.height, self.round, self.pol_round, self.value, self.proposer, self.signature)

    @classmethod
    def from_wire(cls, t: Any) -> Proposal:
        f = expect_tuple(t, "proposal", 6)
        rnd = _round(f[1], "proposal.round")
        pol = _round(f[2], "proposal.pol_round", lo=-1)
        if pol >= rnd:
            raise DecodeError(f"proposal.pol_round: {pol} must be below the round {rnd}")
        return cls(
            _height(f[0], "proposal.height"),
            rnd,
            pol,
            expect_bytes(f[3], "proposal.value", max_size=MAX_VALUE_SIZE),
            expect_bytes(f[4], "proposal.proposer", size=KEY_SIZE),
            expect_bytes(f[5], "proposal.signature", max_size=MAX_SIG_SIZE),
        )


@dataclass(frozen=True, slots=True)
class CommitSig:
    """One validator's precommit signature inside a commit."""

    validator: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """More than 2/3 of the power's precommits for ``block_id`` at (height, round).

    Why only (validator, signature) pairs: every precommit in a commit signs the same
    (height, round, block_id), so the sign bytes are rebuilt rather than repeated.
    """

    height: int
    round: int
    block_id: bytes
    signatures: tuple[CommitSig, ...]

    def votes(self) -> tuple[Vote, ...]:
        return tuple(
            Vote(PRECOMMIT, self.height, self.round, self.block_id, s.validator, s.signature)
            for s in self.signatures
        )

    def to_wire(self) -> tuple[Any, ...]:
        return (
            self.height,
            self.round,
            self.block_id,
            tuple((s.validator, s.signature) for s in self.signatures),
        )

    @classmethod
    def from_wire(cls, t: Any) -> Commit:
        f = expect_tuple(t, "commit", 4)
        sigs = expect_tuple(f[3], "commit.signatures", max_len=MAX_COMMIT_SIGS)
        out = []
        for i, s in enumerate(sigs):
            pair = expect_tuple(s, f"commit.signatures[{i}]", 2)
            out.append(
                CommitSig(
                    expect_bytes(pair[0], f"commit.signatures[{i}].validator", size=KEY_SIZE),
                    expect_bytes(
                        pair[1], f"commit.signatures[{i}].signature", max_size=MAX_SIG_SIZE
                    ),
                )
            )
        block_id = _block_id(f[2], "commit.block_id")
        if block_id == NIL_BLOCK_ID:
            raise DecodeError("commit.block_id: a commit is never for nil")
        return cls(
            _height(f[0], "commit.height"), _round(f[1], "commit.round"), block_id, tuple(out)
        )

    def encode(self) -> bytes:
        return encode(self.to_wire())

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        return cls.from_wire(decode(data, max_size=MAX_MESSAGE_SIZE))


@dataclass(frozen=True, slots=True)
class Decision:
    """A decided value with its commit: what a node sends a peer that lags behind a height."""

    value: bytes
    commit: Commit

    def to_wire(self) -> tuple[Any, ...]:
        return (self.value, self.commit.to_wire())

    @classmethod
    def from_wire(cls, t: Any) -> Decision:
        f = expect_tuple(t, "decision", 2)
        d = cls(
            expect_bytes(f[0], "decision.value", max_size=MAX_VALUE_SIZE), Commit.from_wire(f[1])
        )
        if compute_value_id(d.value) != d.commit.block_id:
            raise DecodeError("decision: the value does not match the commit's block id")
        return d


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """ "I am at ``height``; send me its decision if you have it" (a lagging node asks)."""

    height: int

    def to_wire(self) -> tuple[Any, ...]:
        return (self.height,)

    @classmethod
    def from_wire(cls, t: Any) -> DecisionRequest:
        f = expect_tuple(t, "decision_request", 1)
        return cls(_height(f[0], "decision_request.height"))


# --- the message envelope --------------------------------------------------------------------

_KIND_PROPOSAL: Final = 1
_KIND_VOTE: Final = 2
_KIND_DECISION: Final = 3
_KIND_DECISION_REQUEST: Final = 4

Message = Proposal | Vote | Decision | DecisionRequest


def encode_message(msg: Message) -> bytes:
    """Wire bytes of one consensus message: (kind, payload)."""
    if isinstance(msg, Proposal):
        kind = _KIND_PROPOSAL
    elif isinstance(msg, Vote):
        kind = _KIND_VOTE
    elif isinstance(msg, Decision):
        kind = _KIND_DECISION
    else:
        kind = _KIND_DECISION_REQUEST
    data = encode((kind, msg.to_wire()))
    if len(data) > MAX_MESSAGE_SIZE:
        raise DecodeError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    return data


def decode_message(data: bytes) -> Message:
    """Decode one consensus message with size and depth limits; raises DecodeError."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise DecodeError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
    t = expect_tuple(decode(data, max_size=MAX_MESSAGE_SIZE, max_depth=6), "message", 2)
    kind = expect_int(t[0], "message.kind")
    if kind == _KIND_PROPOSAL:
        return Proposal.from_wire(t[1])
    if kind == _KIND_VOTE:
        return Vote.from_wire(t[1])
    if kind == _KIND_DECISION:
        return Decision.from_wire(t[1])
    if kind == _KIND_DECISION_REQUEST:
        return DecisionRequest.from_wire(t[1])
    raise DecodeError(f"message.kind: unknown kind {kind}")
