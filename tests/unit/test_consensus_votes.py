"""Vote sets, evidence, commits and wire formats: typed errors for every bad input."""

from __future__ import annotations

import pytest

from alloranet.consensus.errors import (
    BadSignatureError,
    ConsensusError,
    DuplicateVoteError,
    InsufficientPowerError,
    UnknownValidatorError,
    WrongHeightError,
    WrongRoundError,
    WrongVoteTypeError,
)
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.types import (
    MAX_MESSAGE_SIZE,
    NIL_BLOCK_ID,
    PRECOMMIT,
    PREVOTE,
    Commit,
    CommitSig,
    Decision,
    DecisionRequest,
    Proposal,
    Vote,
    compute_value_id,
    decode_message,
    encode_message,
    real_verify,
)
from alloranet.consensus.validators import ValidatorSet
from alloranet.consensus.votes import VoteSet, is_one_third, is_two_thirds, verify_commit
from alloranet.crypto import PrivateKey
from alloranet.errors import DecodeError

CHAIN = "test-chain"
KEYS = [PrivateKey.from_label(f"votes-{i}").signer() for i in range(4)]
VALS = ValidatorSet.new([(k.public_key, p) for k, p in zip(KEYS, (4, 3, 2, 1), strict=True)])
V = compute_value_id(b"block")


def vote(i: int, t: int = PREVOTE, h: int = 1, r: int = 0, bid: bytes = V) -> Vote:
    v = Vote(t, h, r, bid, KEYS[i].public_key, b"")
    return Vote(t, h, r, bid, KEYS[i].public_key, KEYS[i].sign(v.sign_bytes(CHAIN)))


def test_integer_thresholds() -> None:
    assert not is_two_thirds(2, 3) and is_two_thirds(3, 4) and is_two_thirds(7, 10)
    assert not is_one_third(1, 3) and is_one_third(2, 5)


def test_vote_set_tallies_by_power_and_rejects_bad_votes_by_kind() -> None:
    vs = VoteSet(1, 0, PREVOTE, VALS)
    vs, ev = vs.add(vote(0), CHAIN, real_verify)
    assert ev is None and vs.power_for(V) == 4 and not vs.has_two_thirds_for(V)
    vs, _ = vs.add(vote(1), CHAIN, real_verify)
    assert vs.has_two_thirds_for(V) and vs.two_thirds_majority() == V
    with pytest.raises(WrongHeightError):
        vs.add(vote(2, h=2))
    with pytest.raises(WrongRoundError):
        vs.add(vote(2, r=1))
    with pytest.raises(WrongVoteTypeError):
        vs.add(vote(2, t=PRECOMMIT))
    stranger = PrivateKey.from_label("stranger").signer()
    with pytest.raises(UnknownValidatorError):
        vs.add(Vote(PREVOTE, 1, 0, V, stranger.public_key, b"\0" * 64))
    forged = Vote(PREVOTE, 1, 0, V, KEYS[2].public_key, b"\0" * 64)
    with pytest.raises(BadSignatureError):
        vs.add(forged, CHAIN, real_verify)
    with pytest.raises(DuplicateVoteError):
        vs.add(vote(0))
    assert vs.power_any == 7  # errors changed nothing


def test_conflicting_vote_becomes_verifiable_evidence() -> None:
    vs, _ = VoteSet(1, 0, PREVOTE, VALS).add(vote(2))
    vs2, ev = vs.add(vote(2, bid=NIL_BLOCK_ID))
    assert ev is not None and ev.key() == (KEYS[2].public_key, 1, 0, PREVOTE)
    assert vs2.power_for(NIL_BLOCK_ID) == 2 and vs2.power_any == 2  # counted once in "any"
    ev.validate(CHAIN, VALS)
    assert ev.verify(CHAIN, VALS)
    again = DuplicateVoteEvidence.decode(ev.encode())
    assert again == ev
    # the same equivocation seen in the other order is byte-identical evidence
    assert DuplicateVoteEvidence.create(ev.vote_b, ev.vote_a) == ev
    assert not ev.verify("other-chain", VALS)
    bad = DuplicateVoteEvidence(vote(2), vote(2))
    with pytest.raises(ConsensusError):
        bad.validate(CHAIN, VALS)
    with pytest.raises(DecodeError):
        DuplicateVoteEvidence.from_wire(bad.to_wire())


def make_commit(signers: list[int], r: int = 0) -> Commit:
    """A commit signed by ``signers`` (possibly too weak: built directly, not via VoteSet)."""
    sigs = sorted(
        (CommitSig(KEYS[i].public_key, vote(i, t=PRECOMMIT, r=r).signature) for i in signers),
        key=lambda c: c.validator,
    )
    return Commit(1, r, V, tuple(sigs))


def test_verify_commit() -> None:
    good = make_commit([0, 1, 3])
    vs = VoteSet(1, 0, PRECOMMIT, VALS)
    for i in (3, 1, 0):
        vs, _ = vs.add(vote(i, t=PRECOMMIT))
    assert vs.make_commit(V) == good  # canonical: sorted by validator key
    verify_commit(CHAIN, VALS, 1, V, good)
    assert Commit.decode(good.encode()) == good
    with pytest.raises(InsufficientPowerError):
        verify_commit(CHAIN, VALS, 1, V, make_commit([0, 3]))
    with pytest.raises(WrongHeightError):
        verify_commit(CHAIN, VALS, 2, V, good)
    with pytest.raises(ConsensusError):
        verify_commit(CHAIN, VALS, 1, compute_value_id(b"other"), good)
    dup = Commit(1, 0, V, (good.signatures[0], *good.signatures))
    with pytest.raises(ConsensusError):
        verify_commit(CHAIN, VALS, 1, V, dup)
    forged = Commit(
        1, 0, V, (*good.signatures[:2], CommitSig(good.signatures[2].validator, b"\1" * 64))
    )
    with pytest.raises(BadSignatureError):
        verify_commit(CHAIN, VALS, 1, V, forged)


def test_message_wire_round_trip_and_limits() -> None:
    p = Proposal(1, 2, 0, b"value", KEYS[0].public_key, b"\0" * 64)
    d = Decision(b"block", make_commit([0, 1, 2]))
    for m in (vote(1), p, d, DecisionRequest(7)):
        assert decode_message(encode_message(m)) == m
    with pytest.raises(DecodeError):
        decode_message(b"\xc1")
    with pytest.raises(DecodeError):
        decode_message(b"\0" * (MAX_MESSAGE_SIZE + 1))
    from alloranet.codec import encode

    bad = [
        (2, (9, 1, 0, V, KEYS[0].public_key, b"")),  # unknown vote type
        (2, (1, -1, 0, V, KEYS[0].public_key, b"")),  # negative height
        (2, (1, 1, 0, b"short", KEYS[0].public_key, b"")),  # bad block id
        (1, (1, 2, 2, b"v", KEYS[0].public_key, b"")),  # pol_round >= round
        (3, (b"other block", make_commit([0, 1, 2]).to_wire())),  # value/commit mismatch
        (9, ()),
    ]
    for msg in bad:
        with pytest.raises(DecodeError):
            decode_message(encode(msg))
