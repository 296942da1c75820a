"""The synchronous shell around the pure core: decode, verify, log, step, act.

Why a separate synchronous class: the asyncio driver and the in-process simulator must run the
*same* crash-relevant code (WAL ordering, signer guard, replay), so both wrap a :class:`Replica`
and only differ in how timers and the network are provided (the :class:`Outbox`).

Order for every input: verify -> step (pure; an invalid event raises and nothing changes) ->
append to the WAL -> adopt the new state -> carry out the actions. Before any signature the WAL
is fsynced, and our own signed message is appended with fsync before it is stepped or sent
(spec 1.9), so a restart replays to exactly the state that asked for it and the signer guard
hands back the same signature instead of a new one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from alloranet.consensus import core
from alloranet.consensus.core import (
    Action,
    ConsensusState,
    Decide,
    DecisionEvent,
    Event,
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
from alloranet.consensus.errors import (
    BadSignatureError,
    ConsensusError,
    DuplicateVoteError,
    SignerRefusedError,
    UnknownValidatorError,
)
from alloranet.consensus.evidence import DuplicateVoteEvidence
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.storage import FailPoint, no_failpoint
from alloranet.consensus.timeouts import TimeoutConfig
from alloranet.consensus.types import (
    PREVOTE,
    Commit,
    Decision,
    DecisionRequest,
    Message,
    Proposal,
    Verifier,
    Vote,
    compute_value_id,
    decode_message,
    encode_message,
)
from alloranet.consensus.validators import ValidatorSet
from alloranet.consensus.votes import verify_commit
from alloranet.consensus.wal import WAL, decode_record, encode_end_height, encode_event
from alloranet.errors import AlloraError, DecodeError

#: Compact the WAL at a height boundary once it is bigger than this.
WAL_COMPACT_BYTES = 1 << 20

#: How many stored decisions one peer may draw from us per rebroadcast tick. A decision carries a
#: whole block while the message that triggers it can be a 100-byte vote, so answering every
#: stale message would let one peer amplify its bandwidth many times over; a lagging honest peer
#: needs one decision per height and asks again on the next tick (heights far behind go through
#: block sync instead).
HELP_PER_PEER_PER_TICK = 2

#: Messages of the next height kept while this replica finishes its own (timeout_commit, or
#: executing the block): per validator this many votes, and this many proposals in all. Why:
#: the next proposer broadcasts its proposal the moment it enters the height; a replica a few
#: milliseconds behind used to drop it and wait for the proposer's rebroadcast (a second) with
#: its own prevote missing. Bounded so that no peer can grow memory; signatures are checked
#: before keeping, so a forger cannot take an honest validator's slots.
NEXT_HEIGHT_VOTES_PER_VALIDATOR = 4
NEXT_HEIGHT_PROPOSALS = 2


class Application(Protocol):
    """What consensus needs from the chain (node.py fills it in from chain + state)."""

    def get_last_height(self) -> int:
        """The last committed height (0 before the first block)."""
        ...

    def get_validators(self, height: int) -> ValidatorSet:
        """The validator set that votes at ``height`` (last height + 1 at most one ahead)."""
        ...

    def propose_value(self, height: int, round_: int) -> bytes:
        """A fresh value (encoded block) to propose."""
        ...

    def is_valid_value(self, height: int, value: bytes) -> bool:
        """Whether ``value`` is a valid block at ``height`` (pure; no side effects)."""
        ...

    def commit_value(self, height: int, value: bytes, commit: Commit) -> None:
        """Durably apply and store block ``height`` with its commit (one transaction)."""
        ...

    def get_decision(self, height: int) -> Decision | None:
        """A stored block with its commit, to help a peer that lags (None if unknown)."""
        ...


@runtime_checkable
class RecordsFinalCommit(Protocol):
    """Optional for an :class:`Application`: take the fullest commit of the height just finished.

    Why: the commit that decides a height holds the first precommits past 2/3 of the power; the
    ones that arrive during timeout_commit are lost unless kept. The chain counts the signers of a
    block's last commit for downtime (a validator absent from a commit looks offline), so the
    proposer of the next height should carry every precommit it has, as CometBFT's LastCommit does.
    """

    def record_final_commit(self, commit: Commit) -> None:
        """Called once per finished height with a commit at least as full as the deciding one."""
        ...


class Outbox(Protocol):
    """Where a replica's outputs go: the network, timers, peer scoring, evidence."""

    def broadcast(self, data: bytes) -> None: ...

    def send(self, peer: str, data: bytes) -> None: ...

    def schedule(self, delay: float, event: TimeoutEvent) -> None: ...

    def penalise(self, peer: str, error: AlloraError) -> None: ...

    def report_evidence(self, evidence: DuplicateVoteEvidence) -> None: ...


@dataclass
class _Pending:
    """Actions emitted during replay that the log shows were not yet carried out."""

    signs: dict[tuple[int, int, int], Action] = field(default_factory=dict)
    timeouts: list[ScheduleTimeout] = field(default_factory=list)


class Replica:
    """One consensus participant: core state + WAL + signer guard + application."""

    def __init__(
        self,
        chain_id: str,
        app: Application,
        wal: WAL,
        outbox: Outbox,
        config: TimeoutConfig,
        signer: SignerGuard | None = None,
        verifier: Verifier | None = None,
        failpoint: FailPoint = no_failpoint,
    ) -> None:
        from alloranet.consensus.types import real_verify

        self.chain_id = chain_id
        self.app = app
        self.wal = wal
        self.outbox = outbox
        self.signer = signer
        self.verifier: Verifier = verifier or real_verify
        self.failpoint = failpoint
        self.state: ConsensusState = core.initial_state(
            signer.public_key if signer else None, config
        )
        #: our signed messages of the current height, re-sent on a timer (lossy links)
        self.own_messages: list[bytes] = []
        self._replaying = False
        self._pending = _Pending()
        self._asked: set[str] = set()
        #: (peer, height) decisions sent since the last rebroadcast tick
        self._helped: set[tuple[str, int]] = set()
        #: early messages of height + 1, stepped once we enter it (NEXT_HEIGHT_*)
        self._next_height: list[tuple[Vote | Proposal, str]] = []
        self.refusals = 0  # signer-guard refusals (a replay that did not match)
        self.step_seconds = 0.0  # CPU time inside core.step (benchmarks)

    @property
    def height(self) -> int:
        return self.state.height

    # --- start and replay ---------------------------------------------------------------

    def start(self, repair_wal: bool = False) -> None:
        """Start at the application's height + 1 and replay that height's WAL records."""
        records = self.wal.load(repair_wal)
        start = self.app.get_last_height() + 1
        self._replaying = True
        try:
            self._enter_height(start)
            for payload in records:
                height, event = decode_record(payload)
                if event is None or height != self.state.height:
                    continue
                try:
                    self._apply(event)
                except ConsensusError:
                    continue
        finally:
            self._replaying = False
        pending, self._pending = self._pending, _Pending()
        for t in pending.timeouts:
            if t.height == self.state.height:
                self.outbox.schedule(t.delay, TimeoutEvent(t.kind, t.height, t.round))
        for action in pending.signs.values():
            if isinstance(action, SignVote) and self._has_own_vote(action):
                continue  # a twin's identical vote was logged in place of ours
            self._act(action)
        self.rebroadcast()

    def _enter_height(self, height: int) -> None:
        self.own_messages = []
        self._asked.clear()
        if self.wal.size > WAL_COMPACT_BYTES and not self._replaying:
            self.wal.compact(height - 1)
        self._apply(NewHeight(height, self.app.get_validators(height)), log=False)

    # --- inputs ---------------------------------------------------------------------------

    def on_message(self, data: bytes, peer: str) -> None:
        """Decode, check and step one peer message; a bad one penalises the peer."""
        try:
            msg = decode_message(data)
        except DecodeError as e:
            self.outbox.penalise(peer, e)
            return
        self._step_from_peer(msg, peer)
        self._step_early_messages()

    def _step_from_peer(self, msg: Message, peer: str) -> None:
        """Check and step one decoded peer message; a bad one penalises the peer."""
        try:
            self._on_decoded(msg, peer)
        except DuplicateVoteError:
            return
        except (DecodeError, ConsensusError) as e:
            self.outbox.penalise(peer, e)

    def on_timeout(self, event: TimeoutEvent) -> None:
        self._apply(event)
        self._step_early_messages()

    def _keep_for_next_height(self, msg: Vote | Proposal, peer: str) -> None:
        """Keep a verified message of height + 1 within the NEXT_HEIGHT_* bounds."""
        s = self.state
        assert s.validators is not None
        signer = msg.validator if isinstance(msg, Vote) else msg.proposer
        if signer not in s.validators:
            return  # the next set is almost always this one; a newcomer's proposer re-sends
        if isinstance(msg, Vote):
            if any(m == msg for m, _ in self._next_height):
                return
            same = sum(
                1 for m, _ in self._next_height if isinstance(m, Vote) and m.validator == signer
            )
            if same >= NEXT_HEIGHT_VOTES_PER_VALIDATOR:
                return
        elif sum(1 for m, _ in self._next_height if isinstance(m, Proposal)) >= (
            NEXT_HEIGHT_PROPOSALS
        ):
            return
        if not msg.is_signed_by(self.chain_id, self.verifier):
            raise BadSignatureError("early message signature does not verify")
        self._next_height.append((msg, peer))

    def _step_early_messages(self) -> None:
        """Step the kept messages of the height we have now entered (older ones are dropped).
        Called from the entry points, never from inside a step, so nothing re-enters."""
        while self._next_height and not self._replaying:
            h = self.state.height
            ready = [(m, p) for m, p in self._next_height if m.height == h]
            self._next_height = [(m, p) for m, p in self._next_height if m.height > h]
            if not ready:
                return
            for msg, peer in ready:
                self._step_from_peer(msg, peer)

    def _on_decoded(self, msg: Message, peer: str) -> None:
        s = self.state
        if isinstance(msg, Decision):
            if msg.commit.height != s.height or s.decision is not None:
                return
            assert s.validators is not None
            verify_commit(
                self.chain_id,
                s.validators,
                s.height,
                msg.commit.block_id,
                msg.commit,
                self.verifier,
            )
            self._apply(DecisionEvent(s.height, msg.value, msg.commit))
            return
        if isinstance(msg, DecisionRequest):
            if msg.height < s.height:
                self._help_lagging_peer(msg.height, peer)
            return
        height = msg.height
        if height < s.height:
            self._help_lagging_peer(height, peer)
            return
        if height > s.height:
            if height == s.height + 1:
                self._keep_for_next_height(msg, peer)
            # We lag: ask this peer for our height's decision (once per peer per resend tick).
            if peer not in self._asked:
                self._asked.add(peer)
                self.outbox.send(peer, encode_message(DecisionRequest(s.height)))
            return
        assert s.validators is not None
        if isinstance(msg, Vote):
            if msg.validator not in s.validators:
                raise UnknownValidatorError("vote from a validator outside the set")
            if not msg.is_signed_by(self.chain_id, self.verifier):
                raise BadSignatureError("vote signature does not verify")
            self._apply(VoteEvent(msg))
        else:
            if msg.round in s.proposals:
                return
            if not msg.is_signed_by(self.chain_id, self.verifier):
                raise BadSignatureError("proposal signature does not verify")
            valid = self.app.is_valid_value(height, msg.value)
            self._apply(ProposalEvent(msg, valid))

    def _help_lagging_peer(self, height: int, peer: str) -> None:
        """Send a lagging peer our stored decision for ``height``, rate-limited per peer."""
        if (peer, height) in self._helped:
            return
        if sum(1 for p, _ in self._helped if p == peer) >= HELP_PER_PEER_PER_TICK:
            return
        self._helped.add((peer, height))
        decision = self.app.get_decision(height)
        if decision is not None:
            self.outbox.send(peer, encode_message(decision))

    # --- the loop body ------------------------------------------------------------------

    def _apply(self, event: Event, log: bool = True) -> None:
        from time import process_time

        t0 = process_time()
        new_state, actions = core.step(self.state, event)
        self.step_seconds += process_time() - t0
        if self._replaying:
            self._note_replayed(event)
        if new_state is self.state and not actions:
            return
        if log and not self._replaying:
            own = isinstance(event, VoteEvent | ProposalEvent) and self._is_own(event)
            self.wal.append(encode_event(event), sync=own)
        self.state = new_state
        for action in actions:
            self._act(action)

    def _is_own(self, event: VoteEvent | ProposalEvent) -> bool:
        key = self.state.my_key
        if isinstance(event, VoteEvent):
            return event.vote.validator == key
        return event.proposal.proposer == key

    def _note_replayed(self, event: Event) -> None:
        """Drop pending sign actions that the log shows were carried out."""
        p = self._pending.signs
        if isinstance(event, VoteEvent) and event.vote.validator == self.state.my_key:
            v = event.vote
            p.pop((v.height, v.round, v.vote_type), None)
            if v.height == self.state.height:
                self.own_messages.append(encode_message(v))
        elif isinstance(event, ProposalEvent) and event.proposal.proposer == self.state.my_key:
            pr = event.proposal
            p.pop((pr.height, pr.round, 0), None)
            p.pop((pr.height, pr.round, -1), None)
            if pr.height == self.state.height:
                self.own_messages.append(encode_message(pr))
        elif isinstance(event, ValueEvent):
            p.pop((event.height, event.round, -1), None)

    def _act(self, action: Action) -> None:
        if isinstance(action, ScheduleTimeout):
            if self._replaying:
                self._pending.timeouts.append(action)
            else:
                self.outbox.schedule(
                    action.delay, TimeoutEvent(action.kind, action.height, action.round)
                )
        elif isinstance(action, SignVote):
            if self._replaying:
                key = (action.height, action.round, action.vote_type)
                self._pending.signs[key] = action
            else:
                self._sign_vote(action)
        elif isinstance(action, SignProposal):
            if self._replaying:
                self._pending.signs[(action.height, action.round, 0)] = action
            else:
                self._sign_proposal(action)
        elif isinstance(action, RequestValue):
            if self._replaying:
                self._pending.signs[(action.height, action.round, -1)] = action
            else:
                value = self.app.propose_value(action.height, action.round)
                self._apply(ValueEvent(action.height, action.round, value))
        elif isinstance(action, Decide):
            if self.app.get_last_height() < action.height:
                self.app.commit_value(action.height, action.value, action.commit)
            self.wal.append(encode_end_height(action.height), sync=True)
        elif isinstance(action, FinishHeight):
            self._offer_final_commit()
            self._pending = _Pending()
            self._enter_height(action.height + 1)
        elif isinstance(action, ReportEvidence):
            self.outbox.report_evidence(action.evidence)

    def _offer_final_commit(self) -> None:
        """Hand the application every precommit for the decided block (see RecordsFinalCommit)."""
        d = self.state.decision
        if d is None or self._replaying or not isinstance(self.app, RecordsFinalCommit):
            return
        precommits = self.state.precommits.get(d.commit.round)
        if precommits is None or not precommits.has_two_thirds_for(d.commit.block_id):
            return  # decided from a peer's Decision: its commit is all we have
        full = precommits.make_commit(d.commit.block_id)
        if len(full.signatures) > len(d.commit.signatures):
            self.app.record_final_commit(full)

    def _has_own_vote(self, a: SignVote) -> bool:
        sets = self.state.prevotes if a.vote_type == PREVOTE else self.state.precommits
        vs = sets.get(a.round)
        return vs is not None and self.state.my_key in vs.votes

    def _sign_vote(self, a: SignVote) -> None:
        assert self.signer is not None
        self.wal.sync()  # the inputs that led here are durable before we sign
        try:
            sig = self.signer.sign_vote(a.vote_type, a.height, a.round, a.block_id)
        except SignerRefusedError:
            self.refusals += 1  # never sign twice; the simulator flags this on honest nodes
            return
        vote = Vote(a.vote_type, a.height, a.round, a.block_id, self.signer.public_key, sig)
        with contextlib.suppress(DuplicateVoteError):  # a twin with our key sent these bytes
            self._apply(VoteEvent(vote))  # appended with fsync, then stepped
        data = encode_message(vote)
        self.own_messages.append(data)
        self.failpoint("send")
        self.outbox.broadcast(data)

    def _sign_proposal(self, a: SignProposal) -> None:
        assert self.signer is not None
        self.wal.sync()
        block_id = compute_value_id(a.value)
        try:
            sig = self.signer.sign_proposal(a.height, a.round, a.pol_round, block_id)
        except SignerRefusedError:
            self.refusals += 1
            return
        prop = Proposal(a.height, a.round, a.pol_round, a.value, self.signer.public_key, sig)
        self._apply(ProposalEvent(prop, True))
        data = encode_message(prop)
        self.own_messages.append(data)
        # Send the polka that justifies re-proposing (rule 3 needs it at the receivers; some of
        # them may have missed those prevotes, or seen an equivocator's other vote).
        pol = self.state.prevotes.get(a.pol_round) if a.pol_round >= 0 else None
        if pol is not None:
            self.own_messages.extend(encode_message(v) for v in pol.votes_for(block_id))
        self.failpoint("send")
        self.outbox.broadcast(data)

    def rebroadcast(self) -> None:
        """Re-send our messages of this height: links may drop, the paper assumes they don't."""
        self._asked.clear()
        self._helped.clear()
        for data in self.own_messages:
            self.outbox.broadcast(data)
