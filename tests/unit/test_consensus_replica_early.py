"""Messages of the next height that arrive while a replica finishes its own are kept, bounded.

Why it matters: the next proposer broadcasts its proposal as soon as it enters the height; a
replica still in timeout_commit used to drop it and sit out the round until the proposer's
rebroadcast, its prevote missing.
"""

from __future__ import annotations

import hashlib

from alloranet.consensus import timeouts as T
from alloranet.consensus.core import TimeoutEvent
from alloranet.consensus.errors import ConsensusError
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.replica import (
    NEXT_HEIGHT_PROPOSALS,
    NEXT_HEIGHT_VOTES_PER_VALIDATOR,
    Replica,
)
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.storage import MemoryDisk
from alloranet.consensus.types import (
    NIL_BLOCK_ID,
    PRECOMMIT,
    PREVOTE,
    Commit,
    Decision,
    FakeKey,
    Proposal,
    Vote,
    compute_value_id,
    decode_message,
    encode_message,
    fake_verify,
)
from alloranet.consensus.validators import ValidatorSet, compute_genesis_sets
from alloranet.consensus.wal import WAL

CHAIN = "early"
KEYS = [FakeKey(hashlib.sha256(b"early%d" % i).digest()) for i in range(4)]


class App:
    def __init__(self) -> None:
        self.validators, _ = compute_genesis_sets([(k.public_key, 1) for k in KEYS])
        self.height = 0

    def get_last_height(self) -> int:
        return self.height

    def get_validators(self, height: int) -> ValidatorSet:
        return self.validators

    def propose_value(self, height: int, round_: int) -> bytes:
        return b"mine-%d" % height

    def is_valid_value(self, height: int, value: bytes) -> bool:
        return True

    def commit_value(self, height: int, value: bytes, commit: Commit) -> None:
        self.height = height

    def get_decision(self, height: int) -> Decision | None:
        return None


class Net:
    def __init__(self) -> None:
        self.broadcasts: list[object] = []
        self.timeouts: list[TimeoutEvent] = []
        self.penalised: list[tuple[str, str]] = []

    def broadcast(self, data: bytes) -> None:
        self.broadcasts.append(decode_message(data))

    def send(self, peer: str, data: bytes) -> None:
        pass

    def schedule(self, delay: float, event: TimeoutEvent) -> None:
        self.timeouts.append(event)

    def penalise(self, peer: str, error: ConsensusError | Exception) -> None:
        self.penalised.append((peer, type(error).__name__))

    def report_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        pass


def by_key(pub: bytes) -> FakeKey:
    return next(k for k in KEYS if k.public_key == pub)


def signed_vote(k: FakeKey, kind: int, h: int, r: int, block_id: bytes) -> Vote:
    v = Vote(kind, h, r, block_id, k.public_key, b"")
    return Vote(kind, h, r, block_id, k.public_key, k.sign(v.sign_bytes(CHAIN)))


def signed_proposal(vals: ValidatorSet, h: int, value: bytes) -> Proposal:
    k = by_key(vals.get_proposer(0))
    p = Proposal(h, 0, -1, value, k.public_key, b"")
    return Proposal(h, 0, -1, value, k.public_key, k.sign(p.sign_bytes(CHAIN)))


def make(me: int) -> tuple[Replica, App, Net]:
    app, net = App(), Net()
    signer = SignerGuard(KEYS[me], MemoryDisk(), CHAIN)
    replica = Replica(CHAIN, app, WAL(MemoryDisk()), net, T.LOCAL, signer, fake_verify)
    replica.start()
    return replica, app, net


def finish_height_one(replica: Replica, app: App, net: Net) -> None:
    """Decide height 1 by a proposal and three precommits, then fire its commit timeout."""
    vals = app.validators
    me = replica.state.my_key
    if vals.get_proposer(0) == me:
        value = b"mine-1"  # our own proposal (App.propose_value)
    else:
        value = b"block-1"
        replica.on_message(encode_message(signed_proposal(vals, 1, value)), "peer")
    for k in [k for k in KEYS if k.public_key != me][:3]:
        vote = signed_vote(k, PRECOMMIT, 1, 0, compute_value_id(value))
        replica.on_message(encode_message(vote), "peer")
    assert app.height == 1 and replica.height == 1  # decided, waiting out timeout_commit
    commit_timeout = next(t for t in net.timeouts if t.height == 1 and t.kind == T.COMMIT)
    replica.on_timeout(commit_timeout)
    assert replica.height == 2


def test_a_next_height_proposal_is_prevoted_on_entering_the_height() -> None:
    vals = App().validators
    me = next(i for i, k in enumerate(KEYS) if k.public_key != vals.get_proposer(0))
    replica, app, net = make(me)
    proposal = signed_proposal(vals, 2, b"block-2")
    early_vote = signed_vote(KEYS[(me + 1) % 4], PREVOTE, 2, 0, compute_value_id(b"block-2"))
    replica.on_message(encode_message(proposal), "peer")
    replica.on_message(encode_message(early_vote), "peer")
    assert replica.height == 1 and not net.penalised
    finish_height_one(replica, app, net)
    my_prevotes = [
        m
        for m in net.broadcasts
        if isinstance(m, Vote) and m.height == 2 and m.vote_type == PREVOTE
    ]
    assert [m.block_id for m in my_prevotes] == [compute_value_id(b"block-2")]
    assert 0 in replica.state.proposals
    assert early_vote.validator in replica.state.prevotes[0].votes


def test_kept_messages_are_bounded_and_forgeries_penalised() -> None:
    vals = App().validators
    replica, app, net = make(0)
    for r in range(50):  # one validator's votes for many rounds: only a few are kept
        for kind in (PREVOTE, PRECOMMIT):
            replica.on_message(encode_message(signed_vote(KEYS[1], kind, 2, r, NIL_BLOCK_ID)), "p")
    forged = Vote(PREVOTE, 2, 0, NIL_BLOCK_ID, KEYS[2].public_key, b"\x01" * 64)
    replica.on_message(encode_message(forged), "liar")
    assert ("liar", "BadSignatureError") in net.penalised
    for i in range(5):
        replica.on_message(encode_message(signed_proposal(vals, 2, b"p%d" % i)), "p")
    kept = replica._next_height
    assert sum(isinstance(m, Vote) for m, _ in kept) == NEXT_HEIGHT_VOTES_PER_VALIDATOR
    assert sum(isinstance(m, Proposal) for m, _ in kept) == NEXT_HEIGHT_PROPOSALS
    # two heights ahead: never kept
    replica.on_message(encode_message(signed_vote(KEYS[3], PREVOTE, 3, 0, NIL_BLOCK_ID)), "p")
    assert all(m.height == 2 for m, _ in replica._next_height)
    finish_height_one(replica, app, net)
    assert replica._next_height == []
    assert KEYS[1].public_key in replica.state.prevotes[0].votes


def test_messages_for_a_height_already_left_are_not_kept() -> None:
    replica, app, net = make(0)
    finish_height_one(replica, app, net)
    replica.on_message(encode_message(signed_vote(KEYS[1], PREVOTE, 1, 0, NIL_BLOCK_ID)), "p")
    assert replica._next_height == [] and not net.penalised
