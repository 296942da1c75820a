"""The pure core's upon-rules (spec 1.3), driven event by event."""

from __future__ import annotations

import hashlib

import pytest

from alloranet.consensus import core
from alloranet.consensus import timeouts as T
from alloranet.consensus.core import (
    Decide,
    DecisionEvent,
    FinishHeight,
    NewHeight,
    ProposalEvent,
    ReportEvidence,
    RequestValue,
    ScheduleTimeout,
    SignProposal,
    SignVote,
    TimeoutEvent,
    ValueEvent,
    VoteEvent,
)
from alloranet.consensus.errors import NotProposerError, UnknownValidatorError
from alloranet.consensus.types import (
    NIL_BLOCK_ID,
    PRECOMMIT,
    PREVOTE,
    FakeKey,
    Proposal,
    Vote,
    compute_value_id,
)
from alloranet.consensus.validators import ValidatorSet

CHAIN = "test-chain"
CFG = T.TimeoutConfig(1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0, False)
KEYS = [FakeKey(hashlib.sha256(b"v%d" % i).digest()) for i in range(4)]


def vset(powers: tuple[int, ...] = (1, 1, 1, 1)) -> ValidatorSet:
    return ValidatorSet.new([(k.public_key, p) for k, p in zip(KEYS, powers, strict=True)])


def by_key(pub: bytes) -> FakeKey:
    return next(k for k in KEYS if k.public_key == pub)


def vote(k: FakeKey, t: int, h: int, r: int, value: bytes | None) -> Vote:
    bid = NIL_BLOCK_ID if value is None else compute_value_id(value)
    v = Vote(t, h, r, bid, k.public_key, b"")
    return Vote(t, h, r, bid, k.public_key, k.sign(v.sign_bytes(CHAIN)))


def proposal(vals: ValidatorSet, h: int, r: int, value: bytes, pol: int = -1) -> Proposal:
    k = by_key(vals.get_proposer(r))
    p = Proposal(h, r, pol, value, k.public_key, b"")
    return Proposal(h, r, pol, value, k.public_key, k.sign(p.sign_bytes(CHAIN)))


def start(me: int | None, powers: tuple[int, ...] = (1, 1, 1, 1), cfg: T.TimeoutConfig = CFG):
    vals = vset(powers)
    my = None if me is None else KEYS[me].public_key
    s, acts = core.step(core.initial_state(my, cfg), NewHeight(1, vals))
    return vals, s, acts


def non_proposer(vals: ValidatorSet, r: int = 0) -> int:
    return next(i for i, k in enumerate(KEYS) if k.public_key != vals.get_proposer(r))


def feed(s, events):
    out = []
    for e in events:
        s, acts = core.step(s, e)
        out += acts
    return s, out


def test_proposer_requests_value_then_signs_proposal() -> None:
    vals = vset()
    me = next(i for i, k in enumerate(KEYS) if k.public_key == vals.get_proposer(0))
    _, s, acts = start(me)
    assert RequestValue(1, 0) in acts
    assert ScheduleTimeout(T.PROPOSE, 1, 0, 1.0) in acts
    s, acts = core.step(s, ValueEvent(1, 0, b"block"))
    assert acts == [SignProposal(1, 0, -1, b"block")]


def test_happy_path_locks_precommits_and_decides() -> None:
    vals, s, _ = start(None)
    me = non_proposer(vals)
    vals, s, _ = start(me)
    v = b"value-1"
    s, acts = core.step(s, ProposalEvent(proposal(vals, 1, 0, v), True))
    assert SignVote(PREVOTE, 1, 0, compute_value_id(v)) in acts  # rule 2
    s, acts = feed(s, [VoteEvent(vote(k, PREVOTE, 1, 0, v)) for k in KEYS[:3]])
    assert SignVote(PRECOMMIT, 1, 0, compute_value_id(v)) in acts  # rule 5
    assert s.locked_value == v and s.locked_round == 0 and s.valid_round == 0
    s, acts = feed(s, [VoteEvent(vote(k, PRECOMMIT, 1, 0, v)) for k in KEYS[:3]])
    decides = [a for a in acts if isinstance(a, Decide)]
    assert len(decides) == 1 and decides[0].value == v
    assert len(decides[0].commit.signatures) == 3
    assert ScheduleTimeout(T.COMMIT, 1, 0, 1.0) in acts  # timeout_commit, no skip configured
    s, acts = core.step(s, TimeoutEvent(T.COMMIT, 1, 0))
    assert acts == [FinishHeight(1)]


def test_skip_timeout_commit_when_all_precommits_are_in() -> None:
    cfg = T.TimeoutConfig(1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0, True)
    vals, s, _ = start(0, cfg=cfg)
    v = b"v"
    s, _ = feed(s, [ProposalEvent(proposal(vals, 1, 0, v), True)])
    s, _ = feed(s, [VoteEvent(vote(k, PREVOTE, 1, 0, v)) for k in KEYS])
    s, acts = feed(s, [VoteEvent(vote(k, PRECOMMIT, 1, 0, v)) for k in KEYS[:3]])
    assert any(isinstance(a, Decide) for a in acts) and FinishHeight(1) not in acts
    s, acts = core.step(s, VoteEvent(vote(KEYS[3], PRECOMMIT, 1, 0, v)))
    # not at once (the caller may be stepping its own precommit): a zero-delay commit timeout
    assert acts == [ScheduleTimeout(T.COMMIT, 1, 0, 0.0)]
    s, acts = core.step(s, TimeoutEvent(T.COMMIT, 1, 0))
    assert acts == [FinishHeight(1)]
    s, acts = core.step(s, TimeoutEvent(T.COMMIT, 1, 0))  # the normal timeout, later: no-op
    assert acts == []


def test_invalid_value_gets_a_nil_prevote() -> None:
    vals, s, _ = start(0)
    s, acts = core.step(s, ProposalEvent(proposal(vals, 1, 0, b"bad"), False))
    assert SignVote(PREVOTE, 1, 0, NIL_BLOCK_ID) in acts


def test_timeouts_prevote_nil_precommit_nil_and_next_round_with_linear_growth() -> None:
    _vals, s, _ = start(0)
    s, acts = core.step(s, TimeoutEvent(T.PROPOSE, 1, 0))
    assert acts == [SignVote(PREVOTE, 1, 0, NIL_BLOCK_ID)]
    # rule 4: >2/3 prevotes of any kind schedule the prevote wait, once
    s, acts = feed(
        s,
        [
            VoteEvent(vote(KEYS[0], PREVOTE, 1, 0, b"x")),
            VoteEvent(vote(KEYS[1], PREVOTE, 1, 0, None)),
            VoteEvent(vote(KEYS[2], PREVOTE, 1, 0, b"y")),
        ],
    )
    assert acts == [ScheduleTimeout(T.PREVOTE_WAIT, 1, 0, 1.0)]
    s, acts = core.step(s, TimeoutEvent(T.PREVOTE_WAIT, 1, 0))
    assert acts == [SignVote(PRECOMMIT, 1, 0, NIL_BLOCK_ID)]
    s, acts = feed(s, [VoteEvent(vote(k, PRECOMMIT, 1, 0, None)) for k in KEYS[:3]])
    assert ScheduleTimeout(T.PRECOMMIT_WAIT, 1, 0, 1.0) in acts  # rule 7
    s, acts = core.step(s, TimeoutEvent(T.PRECOMMIT_WAIT, 1, 0))
    assert s.round == 1
    assert ScheduleTimeout(T.PROPOSE, 1, 1, 1.5) in acts  # init + round * delta
    # stale timeouts are ignored
    s2, acts = core.step(s, TimeoutEvent(T.PROPOSE, 1, 0))
    assert acts == [] and s2 is s


def test_nil_polka_precommits_nil() -> None:
    _vals, s, _ = start(0)
    s, _ = core.step(s, TimeoutEvent(T.PROPOSE, 1, 0))
    s, acts = feed(s, [VoteEvent(vote(k, PREVOTE, 1, 0, None)) for k in KEYS[:3]])
    assert SignVote(PRECOMMIT, 1, 0, NIL_BLOCK_ID) in acts  # rule 6


def lock_on(s, vals, v: bytes, r: int = 0):
    s, _ = feed(s, [ProposalEvent(proposal(vals, 1, r, v), True)])
    s, _ = feed(s, [VoteEvent(vote(k, PREVOTE, 1, r, v)) for k in KEYS[:3]])
    assert s.locked_value == v
    s, _ = feed(s, [VoteEvent(vote(k, PRECOMMIT, 1, r, None)) for k in KEYS[:3]])
    s, _ = core.step(s, TimeoutEvent(T.PRECOMMIT_WAIT, 1, r))
    assert s.round == r + 1
    return s


def test_locked_process_prevotes_nil_for_a_fresh_other_value() -> None:
    vals, s, _ = start(0)
    s = lock_on(s, vals, b"v")
    s, acts = core.step(s, ProposalEvent(proposal(vals, 1, 1, b"w"), True))
    assert SignVote(PREVOTE, 1, 1, NIL_BLOCK_ID) in acts  # rule 2 with a lock


def test_relock_on_newer_polka_via_valid_round() -> None:
    vals, s, _ = start(0)
    s = lock_on(s, vals, b"v")  # locked round 0
    # round 1: a polka for w forms (we prevoted nil), then round 2 re-proposes w with vr=1
    s, _ = feed(s, [ProposalEvent(proposal(vals, 1, 1, b"w"), True)])
    s, _ = feed(s, [VoteEvent(vote(KEYS[0], PREVOTE, 1, 1, None))])
    s, _ = feed(s, [VoteEvent(vote(k, PREVOTE, 1, 1, b"w")) for k in KEYS[1:3]])
    s, acts = core.step(s, TimeoutEvent(T.PREVOTE_WAIT, 1, 1))
    assert acts == [SignVote(PRECOMMIT, 1, 1, NIL_BLOCK_ID)]
    s, _ = feed(s, [VoteEvent(vote(KEYS[3], PREVOTE, 1, 1, b"w"))])  # the polka, late
    assert s.valid_value == b"w" and s.valid_round == 1 and s.locked_value == b"v"
    s, _ = feed(s, [VoteEvent(vote(k, PRECOMMIT, 1, 1, None)) for k in KEYS[:3]])
    s, _ = core.step(s, TimeoutEvent(T.PRECOMMIT_WAIT, 1, 1))
    s, acts = core.step(s, ProposalEvent(proposal(vals, 1, 2, b"w", pol=1), True))
    assert SignVote(PREVOTE, 1, 2, compute_value_id(b"w")) in acts  # rule 3: lockedRound <= vr


def test_round_skip_on_more_than_a_third_of_power() -> None:
    _vals, s, _ = start(0, powers=(4, 3, 2, 1))
    # power 3 of 10 from round 5: not more than 1/3
    s, acts = core.step(s, VoteEvent(vote(KEYS[1], PREVOTE, 1, 5, None)))
    assert s.round == 0
    s, acts = core.step(s, VoteEvent(vote(KEYS[3], PRECOMMIT, 1, 5, None)))  # 3 + 1 = 4 > 10/3
    assert s.round == 5 and ScheduleTimeout(T.PROPOSE, 1, 5, 3.5) in acts


def test_far_round_votes_are_bounded_per_validator_and_round_skip_still_works() -> None:
    """A Byzantine validator signing votes for ever higher rounds opens at most
    MAX_CATCHUP_ROUNDS of them (memory stays bounded); honest validators ahead of us still
    trigger rule 9's round skip, each with its own budget."""
    _vals, s, _ = start(0, powers=(4, 3, 2, 1))
    for r in range(10, 500):
        for kind in (PREVOTE, PRECOMMIT):
            s, _ = core.step(s, VoteEvent(vote(KEYS[3], kind, 1, r, None)))
    opened = set(s.prevotes) | set(s.precommits)
    assert opened - {0, 1} == {10, 11}
    assert s.catchup_rounds == {KEYS[3].public_key: frozenset({10, 11})}
    assert s.round == 0  # power 1 of 10 is not more than 1/3
    # votes in rounds that are already open cost nothing and still count
    s, acts = core.step(s, VoteEvent(vote(KEYS[1], PREVOTE, 1, 11, None)))  # 3 + 1 = 4 > 10/3
    assert s.round == 11 and ScheduleTimeout(T.PROPOSE, 1, 11, 6.5) in acts
    s, _ = core.step(s, VoteEvent(vote(KEYS[2], PREVOTE, 1, 40, None)))
    assert 40 in s.prevotes  # another validator's own budget


def test_proposals_for_far_rounds_are_dropped_until_the_round_is_open() -> None:
    vals, s, _ = start(None)
    s, _ = core.step(s, ProposalEvent(proposal(vals, 1, 1, b"next"), True))
    assert 1 in s.proposals  # round + 1 is open
    s, _ = core.step(s, ProposalEvent(proposal(vals, 1, 9, b"far"), True))
    assert 9 not in s.proposals
    s, _ = core.step(s, VoteEvent(vote(KEYS[0], PREVOTE, 1, 9, None)))
    s, _ = core.step(s, ProposalEvent(proposal(vals, 1, 9, b"far"), True))
    assert 9 in s.proposals  # somebody voted there: the round is open


def test_thresholds_are_weighted_by_power() -> None:
    vals, s, _ = start(1, powers=(5, 1, 1, 1))
    v = b"v"
    s, _ = feed(s, [ProposalEvent(proposal(vals, 1, 0, v), True)])
    s, acts = core.step(s, VoteEvent(vote(KEYS[0], PREVOTE, 1, 0, v)))  # 5/8 is not > 2/3
    assert not any(isinstance(a, SignVote) and a.vote_type == PRECOMMIT for a in acts)
    s, acts = core.step(s, VoteEvent(vote(KEYS[2], PREVOTE, 1, 0, v)))  # 6/8 > 2/3
    assert SignVote(PRECOMMIT, 1, 0, compute_value_id(v)) in acts


def test_equivocation_reports_evidence_once() -> None:
    _vals, s, _ = start(0)
    s, _ = core.step(s, VoteEvent(vote(KEYS[1], PREVOTE, 1, 0, b"a")))
    s, acts = core.step(s, VoteEvent(vote(KEYS[1], PREVOTE, 1, 0, b"b")))
    ev = [a for a in acts if isinstance(a, ReportEvidence)]
    assert len(ev) == 1 and ev[0].evidence.validator == KEYS[1].public_key
    s, acts = core.step(s, VoteEvent(vote(KEYS[1], PREVOTE, 1, 0, None)))
    assert not any(isinstance(a, ReportEvidence) for a in acts)


def test_bad_inputs_raise_typed_errors_and_leave_state() -> None:
    vals, s, _ = start(0)
    stranger = FakeKey(b"\x09" * 32)
    with pytest.raises(UnknownValidatorError):
        core.step(s, VoteEvent(vote(stranger, PREVOTE, 1, 0, None)))
    wrong = next(k for k in KEYS if k.public_key != vals.get_proposer(0))
    p = Proposal(1, 0, -1, b"x", wrong.public_key, b"")
    with pytest.raises(NotProposerError):
        core.step(s, ProposalEvent(p, True))
    assert s.round == 0 and not s.proposals and not s.prevotes


def test_decision_event_catches_up() -> None:
    vals, s, _ = start(0)
    v = b"v"
    from alloranet.consensus.votes import VoteSet

    vs = VoteSet(1, 3, PRECOMMIT, vals)
    for k in KEYS[:3]:
        vs, _ = vs.add(vote(k, PRECOMMIT, 1, 3, v))
    commit = vs.make_commit(compute_value_id(v))
    s, acts = core.step(s, DecisionEvent(1, v, commit))
    assert isinstance(acts[0], Decide) and acts[-1] == FinishHeight(1)
