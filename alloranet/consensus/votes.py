"""Vote sets: one vote per validator per (height, round, type), power tallied by block id.

Why immutable (``add`` returns a new set): the consensus core is a pure function of its state,
and an invalid vote must leave the old state untouched. Sets are small (one entry per
validator), so copying two small dicts per accepted vote is cheap.

A second, different vote from the same validator is returned as
:class:`DuplicateVoteEvidence` and also counted for its block id (at most
``MAX_CONFLICTING_VOTES`` per validator, which bounds memory under equivocation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    NIL_BLOCK_ID,
    PRECOMMIT,
    Commit,
    CommitSig,
    Verifier,
    Vote,
    real_verify,
)
from alloranet.consensus.validators import ValidatorSet

#: How many extra, conflicting votes of one validator per (height, round, type) are kept.
MAX_CONFLICTING_VOTES = 2


def is_two_thirds(power: int, total: int) -> bool:
    """More than 2/3 of the total, in integers: ``3*power > 2*total``."""
    return 3 * power > 2 * total


def is_one_third(power: int, total: int) -> bool:
    """More than 1/3 of the total, in integers: ``3*power > total``."""
    return 3 * power > total


@dataclass(frozen=True, slots=True)
class VoteSet:
    height: int
    round: int
    vote_type: int
    validators: ValidatorSet
    votes: dict[bytes, Vote] = field(default_factory=dict)
    power_by_block: dict[bytes, int] = field(default_factory=dict)
    power_any: int = 0
    #: further votes of equivocating validators (at most MAX_CONFLICTING_VOTES each)
    conflicting: dict[bytes, tuple[Vote, ...]] = field(default_factory=dict)

    def add(
        self, vote: Vote, chain_id: str = "", verifier: Verifier | None = None
    ) -> tuple[VoteSet, DuplicateVoteEvidence | None]:
        """Return (new set, None), or (this set, evidence) for a conflicting vote.

        Raises a typed :class:`ConsensusError` for a wrong height, round or type, an unknown
        validator, a bad signature (when ``verifier`` is given) or an exact duplicate.
        """
        if vote.height != self.height:
            raise WrongHeightError(f"vote for height {vote.height}, set is {self.height}")
        if vote.round != self.round:
            raise WrongRoundError(f"vote for round {vote.round}, set is {self.round}")
        if vote.vote_type != self.vote_type:
            raise WrongVoteTypeError(f"vote of type {vote.vote_type}, set is {self.vote_type}")
        power = self.validators.power_of(vote.validator)
        if power == 0:
            raise UnknownValidatorError("vote from a validator outside the set")
        if verifier is not None and not vote.is_signed_by(chain_id, verifier):
            raise BadSignatureError("vote signature does not verify")
        old = self.votes.get(vote.validator)
        if old is not None:
            if old.block_id == vote.block_id:
                raise DuplicateVoteError("vote already counted")
            evidence = DuplicateVoteEvidence.create(old, vote)
            others = self.conflicting.get(vote.validator, ())
            if any(o.block_id == vote.block_id for o in others):
                raise DuplicateVoteError("conflicting vote already counted")
            if len(others) >= MAX_CONFLICTING_VOTES:
                return self, evidence
            # Count the equivocator for this block id too, as the paper's message log does:
            # quorum intersection already charges Byzantine power to both sides, so this is
            # safe, and without it honest nodes that saw different halves of an equivocation
            # could never agree on a polka (a liveness failure).
            conflicting = dict(self.conflicting)
            conflicting[vote.validator] = (*others, vote)
            pbb = dict(self.power_by_block)
            pbb[vote.block_id] = pbb.get(vote.block_id, 0) + power
            new = VoteSet(
                self.height,
                self.round,
                self.vote_type,
                self.validators,
                self.votes,
                pbb,
                self.power_any,
                conflicting,
            )
            return new, evidence
        votes = dict(self.votes)
        votes[vote.validator] = vote
        pbb = dict(self.power_by_block)
        pbb[vote.block_id] = pbb.get(vote.block_id, 0) + power
        new = VoteSet(
            self.height,
            self.round,
            self.vote_type,
            self.validators,
            votes,
            pbb,
            self.power_any + power,
            self.conflicting,
        )
        return new, None

    def votes_for(self, block_id: bytes) -> list[Vote]:
        """Every counted vote for ``block_id`` (the proof of a polka, to relay)."""
        out = [v for v in self.votes.values() if v.block_id == block_id]
        out += [v for vs in self.conflicting.values() for v in vs if v.block_id == block_id]
        return out

    def power_for(self, block_id: bytes) -> int:
        return self.power_by_block.get(block_id, 0)

    def has_two_thirds_for(self, block_id: bytes) -> bool:
        return is_two_thirds(self.power_for(block_id), self.validators.total_power)

    def has_two_thirds_any(self) -> bool:
        return is_two_thirds(self.power_any, self.validators.total_power)

    def has_all(self) -> bool:
        return self.power_any == self.validators.total_power

    def two_thirds_majority(self) -> bytes | None:
        """The block id (possibly nil) with more than 2/3 of the power, if any."""
        total = self.validators.total_power
        for block_id, p in self.power_by_block.items():
            if is_two_thirds(p, total):
                return block_id
        return None

    def make_commit(self, block_id: bytes) -> Commit:
        """The commit for ``block_id`` (sorted by validator key, so it is canonical)."""
        if self.vote_type != PRECOMMIT or block_id == NIL_BLOCK_ID:
            raise ConsensusError("a commit is made of precommits for a block")
        if not self.has_two_thirds_for(block_id):
            raise InsufficientPowerError("no more than 2/3 of precommits for this block")
        chosen: dict[bytes, Vote] = {}
        for v in self.votes.values():
            if v.block_id == block_id:
                chosen[v.validator] = v
        for vs in self.conflicting.values():
            for v in vs:
                if v.block_id == block_id:
                    chosen[v.validator] = v
        sigs = tuple(CommitSig(k, chosen[k].signature) for k in sorted(chosen))
        return Commit(self.height, self.round, block_id, sigs)


def verify_commit(
    chain_id: str,
    validator_set: ValidatorSet,
    height: int,
    block_id: bytes,
    commit: Commit,
    verifier: Verifier = real_verify,
) -> None:
    """Raise a typed error unless ``commit`` proves ``block_id`` was decided at ``height``.

    Checks: height and block id match, no repeated or unknown signer, every signature valid,
    and the signers hold more than 2/3 of ``validator_set``'s power. Used by block sync (block
    H is verified with the commit for H) and by consensus catch-up.
    """
    if commit.height != height:
        raise WrongHeightError(f"commit for height {commit.height}, expected {height}")
    if commit.block_id != block_id or block_id == NIL_BLOCK_ID:
        raise ConsensusError("commit is for another block id")
    seen: set[bytes] = set()
    power = 0
    for vote in commit.votes():
        if vote.validator in seen:
            raise ConsensusError("commit repeats a validator")
        seen.add(vote.validator)
        p = validator_set.power_of(vote.validator)
        if p == 0:
            raise UnknownValidatorError("commit signed by a validator outside the set")
        if not vote.is_signed_by(chain_id, verifier):
            raise BadSignatureError("a commit signature does not verify")
        power += p
    if not is_two_thirds(power, validator_set.total_power):
        raise InsufficientPowerError(
            f"commit holds {power} of {validator_set.total_power} power, needs more than 2/3"
        )
