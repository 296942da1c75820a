"""The Tendermint consensus core: ``step(state, event) -> (state, actions)``, pure.

It implements the upon-rules of "The latest gossip on BFT consensus" (Algorithm 1; spec 1.3)
literally, weighted by voting power with integer thresholds. Rule numbers in comments follow
spec 1.3. Why pure: the same code runs in the node, in the simulator and in WAL replay; it
touches no socket, clock, file or randomness. Signing is an action (the shell signs through the
signer guard and feeds the signed vote back as an event); timeouts are actions the shell turns
into timers; the value to propose and the validity of a received value come in as events, so
the application is asked by the shell and the answer is logged in the WAL.

Invalid events raise a typed :class:`ConsensusError` and leave the state unchanged (the old
state object is still valid, because states are immutable).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from alloranet.consensus import timeouts as T
from alloranet.consensus.errors import ConsensusError, NotProposerError
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.timeouts import TimeoutConfig
from alloranet.consensus.types import (
    NIL_BLOCK_ID,
    PRECOMMIT,
    PREVOTE,
    Commit,
    Proposal,
    Vote,
    compute_value_id,
)
from alloranet.consensus.validators import ValidatorSet
from alloranet.consensus.votes import VoteSet, is_one_third

# Steps (CometBFT's bookkeeping steps fold into these; COMMIT = decided, waiting to move on).
STEP_PROPOSE = 0
STEP_PREVOTE = 1
STEP_PRECOMMIT = 2
STEP_COMMIT = 3


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewHeight:
    """Start ``height`` with its validator set (the shell knows it from the application)."""

    height: int
    validators: ValidatorSet


@dataclass(frozen=True, slots=True)
class ProposalEvent:
    """A signature-checked proposal; ``valid`` is the application's verdict on its value."""

    proposal: Proposal
    valid: bool


@dataclass(frozen=True, slots=True)
class VoteEvent:
    """A signature-checked prevote or precommit (our own votes come back this way too)."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutEvent:
    kind: int
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ValueEvent:
    """The application's value for our proposal at (height, round), answering RequestValue."""

    height: int
    round: int
    value: bytes


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """A verified commit for the current height from a peer that is ahead (catch-up)."""

    height: int
    value: bytes
    commit: Commit


Event = NewHeight | ProposalEvent | VoteEvent | TimeoutEvent | ValueEvent | DecisionEvent


# --- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestValue:
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class SignProposal:
    height: int
    round: int
    pol_round: int
    value: bytes


@dataclass(frozen=True, slots=True)
class SignVote:
    vote_type: int
    height: int
    round: int
    block_id: bytes


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    kind: int
    height: int
    round: int
    delay: float


@dataclass(frozen=True, slots=True)
class Decide:
    """``value`` is decided at ``height`` with ``commit`` (> 2/3 of precommits)."""

    height: int
    round: int
    value: bytes
    commit: Commit


@dataclass(frozen=True, slots=True)
class FinishHeight:
    """The commit wait is over: the shell should start ``height + 1`` (NewHeight event)."""

    height: int


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    evidence: DuplicateVoteEvidence


Action = (
    RequestValue
    | SignProposal
    | SignVote
    | ScheduleTimeout
    | Decide
    | FinishHeight
    | ReportEvidence
)


# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decided:
    round: int
    value: bytes
    commit: Commit


@dataclass(frozen=True)
class ConsensusState:
    """Algorithm 1's variables for one height, plus the message log of that height."""

    my_key: bytes | None
    config: TimeoutConfig
    height: int = 0
    validators: ValidatorSet | None = None
    round: int = 0
    step: int = STEP_PROPOSE
    locked_value: bytes | None = None
    locked_round: int = -1
    valid_value: bytes | None = None
    valid_round: int = -1
    proposals: dict[int, tuple[Proposal, bool]] = field(default_factory=dict)
    prevotes: dict[int, VoteSet] = field(default_factory=dict)
    precommits: dict[int, VoteSet] = field(default_factory=dict)
    #: "first time" guards of rules 4, 5, 7: (rule, round)
    fired: frozenset[tuple[int, int]] = frozenset()
    decision: Decided | None = None
    finished: bool = False
    evidence_keys: frozenset[tuple[bytes, int, int, int]] = frozenset()
    #: rounds beyond round + 1 that each validator's votes opened (see MAX_CATCHUP_ROUNDS)
    catchup_rounds: dict[bytes, frozenset[int]] = field(default_factory=dict)


#: How many rounds beyond ``round + 1`` one validator's votes may open at a height. Why: every
#: opened round holds vote sets, so a Byzantine validator signing votes for rounds 10, 11, ...,
#: 2**62 would grow memory (and the per-vote copies) without bound. Honest validators ahead of
#: us need one such round each for rule 9's round skip (CometBFT's HeightVoteSet allows two
#: "catch-up" rounds per peer); after the skip their rounds are within ``round + 1``.
MAX_CATCHUP_ROUNDS = 2


def initial_state(my_key: bytes | None, config: TimeoutConfig) -> ConsensusState:
    """A core that has not started a height yet (feed it a NewHeight event)."""
    return ConsensusState(my_key, config)


def get_proposer(state: ConsensusState, round_: int) -> bytes:
    assert state.validators is not None
    return state.validators.get_proposer(round_)


# --- step --------------------------------------------------------------------------------


def step(state: ConsensusState, event: Event) -> tuple[ConsensusState, list[Action]]:
    """Apply one event; return the new state and the actions the shell must carry out."""
    actions: list[Action] = []
    if isinstance(event, NewHeight):
        return _on_new_height(state, event, actions), actions
    if state.validators is None:
        return state, actions
    if isinstance(event, VoteEvent):
        s = _on_vote(state, event.vote, actions)
    elif isinstance(event, ProposalEvent):
        s = _on_proposal(state, event, actions)
    elif isinstance(event, TimeoutEvent):
        s = _on_timeout(state, event, actions)
    elif isinstance(event, ValueEvent):
        s = _on_value(state, event, actions)
    elif isinstance(event, DecisionEvent):
        s = _on_decision(state, event, actions)
    else:  # pragma: no cover - the union is closed
        raise ConsensusError(f"unknown event {type(event).__name__}")
    return s, actions


def _on_new_height(s: ConsensusState, ev: NewHeight, actions: list[Action]) -> ConsensusState:
    if s.validators is not None and ev.height <= s.height:
        raise ConsensusError(f"cannot start height {ev.height} at height {s.height}")
    fresh = ConsensusState(s.my_key, s.config, ev.height, ev.validators)
    return _check_rules(_start_round(fresh, 0, actions), actions, None)


def _start_round(s: ConsensusState, r: int, actions: list[Action]) -> ConsensusState:
    """Rule 1: StartRound(r)."""
    s = replace(s, round=r, step=STEP_PROPOSE)
    if s.my_key is not None and get_proposer(s, r) == s.my_key:
        if s.valid_value is not None:
            actions.append(SignProposal(s.height, r, s.valid_round, s.valid_value))
        else:
            actions.append(RequestValue(s.height, r))
    # Also on the proposer (unlike the paper): a crash may lose our own proposal.
    delay = s.config.compute_timeout(T.PROPOSE, r)
    actions.append(ScheduleTimeout(T.PROPOSE, s.height, r, delay))
    return s


def _vote(s: ConsensusState, vote_type: int, block_id: bytes, actions: list[Action]) -> None:
    if s.my_key is not None and s.my_key in s.validators:  # type: ignore[operator]
        actions.append(SignVote(vote_type, s.height, s.round, block_id))


def _vote_set(s: ConsensusState, kind: int, r: int) -> VoteSet:
    sets = s.prevotes if kind == PREVOTE else s.precommits
    vs = sets.get(r)
    if vs is None:
        assert s.validators is not None
        vs = VoteSet(s.height, r, kind, s.validators)
    return vs


def _is_open_round(s: ConsensusState, r: int) -> bool:
    """Rounds whose messages are kept without counting against anyone's catch-up budget."""
    return r <= s.round + 1 or r in s.prevotes or r in s.precommits


def _on_vote(s: ConsensusState, vote: Vote, actions: list[Action]) -> ConsensusState:
    if vote.height != s.height:
        return s  # other heights are the shell's business (catch-up), not an error here
    catchup = None
    if not _is_open_round(s, vote.round):
        opened = s.catchup_rounds.get(vote.validator, frozenset())
        if len(opened) >= MAX_CATCHUP_ROUNDS:
            return s  # this validator already opened its far rounds: ignore, do not grow
        catchup = {**s.catchup_rounds, vote.validator: opened | {vote.round}}
    old = _vote_set(s, vote.vote_type, vote.round)
    vs, evidence = old.add(vote)  # raises for an unknown validator or a bad signature
    if catchup is not None:
        s = replace(s, catchup_rounds=catchup)
    if evidence is not None:
        key = evidence.key()
        if key not in s.evidence_keys:
            actions.append(ReportEvidence(evidence))
            s = replace(s, evidence_keys=s.evidence_keys | {key})
        if vs is old:
            return s
    if vote.vote_type == PREVOTE:
        s = replace(s, prevotes={**s.prevotes, vote.round: vs})
    else:
        s = replace(s, precommits={**s.precommits, vote.round: vs})
    return _check_rules(s, actions, vote.round)


def _on_proposal(s: ConsensusState, ev: ProposalEvent, actions: list[Action]) -> ConsensusState:
    p = ev.proposal
    if p.height != s.height:
        return s
    if p.proposer != get_proposer(s, p.round):
        raise NotProposerError(f"proposal for round {p.round} from a validator not its proposer")
    if p.round in s.proposals:
        return s  # the first proposal of a round counts; a second one is proposer equivocation
    if not _is_open_round(s, p.round):
        return s  # a far round nobody voted in yet: its proposer re-sends once we are there
    s = replace(s, proposals={**s.proposals, p.round: (p, ev.valid)})
    return _check_rules(s, actions, p.round)


def _on_value(s: ConsensusState, ev: ValueEvent, actions: list[Action]) -> ConsensusState:
    if (ev.height, ev.round) != (s.height, s.round) or s.step != STEP_PROPOSE:
        return s
    if s.round in s.proposals or s.my_key != get_proposer(s, s.round):
        return s
    pol_round = -1
    value = ev.value
    if s.valid_value is not None:  # rule 1 prefers the valid value
        value, pol_round = s.valid_value, s.valid_round
    actions.append(SignProposal(s.height, s.round, pol_round, value))
    return s


def _finish_soon(s: ConsensusState) -> ScheduleTimeout:
    """skip_timeout_commit: end the height through a zero-delay commit timeout, not at once.

    Why not FinishHeight right here: the caller may be inside the step that produced the last
    precommit (our own, when we hold every vote needed, e.g. a lone validator), and finishing
    would enter the next height, propose, sign and decide it within the same call, height
    after height, without returning to the event loop (and, in the replica, recursing). The
    timer hands control back first; the commit timeout then finishes the height (once: a
    second timeout finds ``finished`` set)."""
    assert s.decision is not None
    return ScheduleTimeout(T.COMMIT, s.height, s.decision.round, 0.0)


def _on_timeout(s: ConsensusState, ev: TimeoutEvent, actions: list[Action]) -> ConsensusState:
    if ev.height != s.height:
        return s
    if ev.kind == T.COMMIT:
        if s.step == STEP_COMMIT and not s.finished:
            actions.append(FinishHeight(s.height))
            return replace(s, finished=True)
        return s
    if ev.round != s.round or s.step == STEP_COMMIT:
        return s
    if ev.kind == T.PROPOSE and s.step == STEP_PROPOSE:  # rule 10 (propose)
        _vote(s, PREVOTE, NIL_BLOCK_ID, actions)
        s = replace(s, step=STEP_PREVOTE)
    elif ev.kind == T.PREVOTE_WAIT and s.step == STEP_PREVOTE:  # rule 10 (prevote)
        _vote(s, PRECOMMIT, NIL_BLOCK_ID, actions)
        s = replace(s, step=STEP_PRECOMMIT)
    elif ev.kind == T.PRECOMMIT_WAIT:  # rule 10 (precommit)
        s = _start_round(s, s.round + 1, actions)
    else:
        return s
    return _check_rules(s, actions, None)


def _on_decision(s: ConsensusState, ev: DecisionEvent, actions: list[Action]) -> ConsensusState:
    if ev.height != s.height or s.decision is not None:
        return s
    if compute_value_id(ev.value) != ev.commit.block_id or ev.commit.height != s.height:
        raise ConsensusError("decision value does not match its commit")
    s = _decide(s, ev.commit.round, ev.value, ev.commit, actions)
    actions.append(FinishHeight(s.height))  # we are behind: do not wait for stragglers
    return replace(s, finished=True)


def _decide(
    s: ConsensusState, r: int, value: bytes, commit: Commit, actions: list[Action]
) -> ConsensusState:
    actions.append(Decide(s.height, r, value, commit))
    return replace(s, step=STEP_COMMIT, decision=Decided(r, value, commit))


# --- the upon-rules ------------------------------------------------------------------------


def _check_rules(s: ConsensusState, actions: list[Action], touched: int | None) -> ConsensusState:
    """Fire every enabled rule until none is (each firing changes a step or a guard)."""
    while True:
        before = s
        s = _rules_once(s, actions, touched)
        if s is before:
            return s


def _rules_once(s: ConsensusState, actions: list[Action], touched: int | None) -> ConsensusState:
    # Rule 8: decide on proposal + >2/3 precommits for it in some round (only this commits).
    if s.decision is None:
        for r in {touched, s.round} - {None}:
            assert r is not None
            pv = s.proposals.get(r)
            pcs = s.precommits.get(r)
            if pv is not None and pcs is not None and pv[1]:
                bid = pv[0].block_id
                if pcs.has_two_thirds_for(bid):
                    s = _decide(s, r, pv[0].value, pcs.make_commit(bid), actions)
                    if s.config.skip_timeout_commit and pcs.has_all():
                        actions.append(_finish_soon(s))
                    else:
                        delay = s.config.compute_timeout(T.COMMIT, r)
                        actions.append(ScheduleTimeout(T.COMMIT, s.height, r, delay))
                    return s
    if s.step == STEP_COMMIT:
        # Straggler precommits: finish early once every validator's precommit is in.
        d = s.decision
        if (
            not s.finished
            and d is not None
            and touched == d.round
            and s.config.skip_timeout_commit
            and _vote_set(s, PRECOMMIT, d.round).has_all()
        ):
            actions.append(_finish_soon(s))
        return s
    # Rule 9: round skip on more than 1/3 of the power from a higher round.
    if touched is not None and touched > s.round and _is_round_skip(s, touched):
        return _start_round(s, touched, actions)
    r = s.round
    prop = s.proposals.get(r)
    pvs = s.prevotes.get(r)
    if s.step == STEP_PROPOSE and prop is not None:
        p, valid = prop
        v = p.value
        if p.pol_round == -1:  # rule 2
            ok = valid and (s.locked_round == -1 or s.locked_value == v)
            _vote(s, PREVOTE, p.block_id if ok else NIL_BLOCK_ID, actions)
            return replace(s, step=STEP_PREVOTE)
        vr = p.pol_round
        old = s.prevotes.get(vr)
        if 0 <= vr < r and old is not None and old.has_two_thirds_for(p.block_id):  # rule 3
            ok = valid and (s.locked_round <= vr or s.locked_value == v)
            _vote(s, PREVOTE, p.block_id if ok else NIL_BLOCK_ID, actions)
            return replace(s, step=STEP_PREVOTE)
    if pvs is not None:
        # Rule 4: >2/3 prevotes of any kind, first time, at step prevote.
        if s.step == STEP_PREVOTE and (4, r) not in s.fired and pvs.has_two_thirds_any():
            delay = s.config.compute_timeout(T.PREVOTE_WAIT, r)
            actions.append(ScheduleTimeout(T.PREVOTE_WAIT, s.height, r, delay))
            return replace(s, fired=s.fired | {(4, r)})
        # Rule 5: valid proposal + polka for it in this round, step >= prevote, first time.
        if (
            prop is not None
            and prop[1]
            and s.step >= STEP_PREVOTE
            and (5, r) not in s.fired
            and pvs.has_two_thirds_for(prop[0].block_id)
        ):
            v = prop[0].value
            s = replace(s, fired=s.fired | {(5, r)}, valid_value=v, valid_round=r)
            if s.step == STEP_PREVOTE:
                _vote(s, PRECOMMIT, prop[0].block_id, actions)
                s = replace(s, locked_value=v, locked_round=r, step=STEP_PRECOMMIT)
            return s
        # Rule 6: polka for nil at step prevote.
        if s.step == STEP_PREVOTE and pvs.has_two_thirds_for(NIL_BLOCK_ID):
            _vote(s, PRECOMMIT, NIL_BLOCK_ID, actions)
            return replace(s, step=STEP_PRECOMMIT)
    # Rule 7: >2/3 precommits of any kind, first time.
    pcs = s.precommits.get(r)
    if pcs is not None and (7, r) not in s.fired and pcs.has_two_thirds_any():
        delay = s.config.compute_timeout(T.PRECOMMIT_WAIT, r)
        actions.append(ScheduleTimeout(T.PRECOMMIT_WAIT, s.height, r, delay))
        return replace(s, fired=s.fired | {(7, r)})
    return s


def _is_round_skip(s: ConsensusState, r: int) -> bool:
    assert s.validators is not None
    senders: set[bytes] = set()
    if r in s.prevotes:
        senders.update(s.prevotes[r].votes)
    if r in s.precommits:
        senders.update(s.precommits[r].votes)
    if r in s.proposals:
        senders.add(s.proposals[r][0].proposer)
    power = sum(s.validators.power_of(k) for k in senders)
    return is_one_third(power, s.validators.total_power)


def is_all_precommits_in(state: ConsensusState) -> bool:
    """True once every validator's precommit for the decided round is in."""
    d = state.decision
    return d is not None and _vote_set(state, PRECOMMIT, d.round).has_all()
