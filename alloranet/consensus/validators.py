"""Validator sets and CometBFT's weighted round-robin proposer priority (spec 1.6), exactly.

Why exact: every node must pick the same proposer for every (height, round); the rescale,
center and tie-break rules below mirror ``types/validator_set.go`` including Go's integer
division semantics (truncation for the rescale, floor for the average) and int64 clipping.
Sets are immutable: every operation returns a new set, so a core state can share them freely.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from alloranet.codec import encode, sha256
from alloranet.errors import ValidationError

INT64_MAX: Final = 2**63 - 1
INT64_MIN: Final = -(2**63)
#: Total power must stay at or below this (CometBFT's MaxTotalVotingPower).
MAX_TOTAL_VOTING_POWER: Final = INT64_MAX // 8
PRIORITY_WINDOW_SIZE_FACTOR: Final = 2


def _clip(v: int) -> int:
    return INT64_MAX if v > INT64_MAX else INT64_MIN if v < INT64_MIN else v


def _trunc_div(a: int, b: int) -> int:
    """Go's integer division for b > 0: truncation toward zero (not Python's floor)."""
    return a // b if a >= 0 else -((-a) // b)


def compute_validator_address(public_key: bytes) -> bytes:
    """The 20-byte address CometBFT breaks proposer ties with (first 20 bytes of SHA-256)."""
    return sha256(public_key)[:20]


@dataclass(frozen=True, slots=True)
class Validator:
    public_key: bytes
    power: int
    priority: int
    address: bytes


@dataclass(frozen=True)
class ValidatorSet:
    """Validators sorted by (power desc, address asc), with the current proposer.

    ``proposer`` is the validator chosen by the last increment (proposer of round 0 at the
    height this set belongs to). Rounds above 0 are derived by :meth:`get_proposer`.
    """

    validators: tuple[Validator, ...]
    proposer_key: bytes | None = None
    total_power: int = 0
    _index: dict[bytes, int] = field(default_factory=dict, compare=False, repr=False)
    _round_cache: dict[int, bytes] = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def _make(vals: Sequence[Validator], proposer_key: bytes | None) -> ValidatorSet:
        ordered = tuple(sorted(vals, key=lambda v: (-v.power, v.address)))
        return ValidatorSet(
            ordered,
            proposer_key,
            sum(v.power for v in ordered),
            {v.public_key: i for i, v in enumerate(ordered)},
        )

    # --- construction -------------------------------------------------------------------

    @classmethod
    def new(cls, members: Iterable[tuple[bytes, int]]) -> ValidatorSet:
        """NewValidatorSet: apply the members as updates to an empty set, then one increment."""
        s = cls._make((), None).with_updates(members)
        return s.increment_proposer_priority(1)

    def with_updates(self, updates: Iterable[tuple[bytes, int]]) -> ValidatorSet:
        """updateWithChangeSet: power 0 removes; new validators start at -1.125 * P'."""
        ups: dict[bytes, int] = {}
        for key, power in updates:
            if len(key) != 32:
                raise ValidationError("a validator key is 32 bytes")
            if power < 0:
                raise ValidationError(f"validator power must be >= 0, got {power}")
            if key in ups:
                raise ValidationError("duplicate validator in one update")
            ups[key] = power
        removals = {k for k, p in ups.items() if p == 0}
        for k in removals:
            if k not in self._index:
                raise ValidationError("cannot remove a validator that is not in the set")
        changes = {k: p for k, p in ups.items() if p > 0}
        removed_power = sum(self.validators[self._index[k]].power for k in removals)
        delta = sum(
            p - (self.validators[self._index[k]].power if k in self._index else 0)
            for k, p in changes.items()
        )
        tvp_after_updates_before_removals = self.total_power + delta
        if tvp_after_updates_before_removals - removed_power > MAX_TOTAL_VOTING_POWER:
            raise ValidationError("total voting power would exceed the maximum")
        by_key = {v.public_key: v for v in self.validators}
        for k, p in changes.items():
            old = by_key.get(k)
            prio = (
                old.priority
                if old is not None
                else -(tvp_after_updates_before_removals + (tvp_after_updates_before_removals >> 3))
            )
            by_key[k] = Validator(k, p, prio, compute_validator_address(k))
        for k in removals:
            del by_key[k]
        if not by_key:
            raise ValidationError("a validator set cannot become empty")
        vals = list(by_key.values())
        total = sum(v.power for v in vals)
        vals = _rescale(vals, PRIORITY_WINDOW_SIZE_FACTOR * total)
        vals = _center(vals)
        return self._make(vals, self.proposer_key)

    # --- proposer priority ----------------------------------------------------------------

    def increment_proposer_priority(self, times: int) -> ValidatorSet:
        """IncrementProposerPriority(times): rescale and center once, then ``times`` rounds."""
        if times <= 0:
            raise ValidationError("increment_proposer_priority needs times >= 1")
        vals = _rescale(list(self.validators), PRIORITY_WINDOW_SIZE_FACTOR * self.total_power)
        vals = _center(vals)
        total = self.total_power
        proposer = None
        for _ in range(times):
            vals = [
                Validator(v.public_key, v.power, _clip(v.priority + v.power), v.address)
                for v in vals
            ]
            best = 0
            for i in range(1, len(vals)):
                a, b = vals[i], vals[best]
                if a.priority > b.priority or (a.priority == b.priority and a.address < b.address):
                    best = i
            w = vals[best]
            vals[best] = Validator(w.public_key, w.power, _clip(w.priority - total), w.address)
            proposer = w.public_key
        return self._make(vals, proposer)

    def get_proposer(self, round_: int = 0) -> bytes:
        """The proposer of ``round_`` at this set's height (a copy incremented ``round_`` times)."""
        if round_ == 0 and self.proposer_key is not None:
            return self.proposer_key
        cached = self._round_cache.get(round_)
        if cached is None:
            if round_ == 0:
                best = max(self.validators, key=lambda v: (v.priority, _neg(v.address)))
                cached = best.public_key
            else:
                key = self.increment_proposer_priority(round_).proposer_key
                assert key is not None
                cached = key
            self._round_cache[round_] = cached
        return cached

    # --- lookups --------------------------------------------------------------------------

    def power_of(self, public_key: bytes) -> int:
        i = self._index.get(public_key)
        return 0 if i is None else self.validators[i].power

    def __contains__(self, public_key: object) -> bool:
        return public_key in self._index

    def __len__(self) -> int:
        return len(self.validators)

    def members(self) -> tuple[tuple[bytes, int], ...]:
        return tuple((v.public_key, v.power) for v in self.validators)

    def compute_hash(self) -> bytes:
        """Commits to keys and powers (not priorities), like CometBFT's ValidatorsHash."""
        return sha256(encode(tuple((v.public_key, v.power) for v in self.validators)))


def _neg(address: bytes) -> tuple[int, ...]:
    return tuple(-b for b in address)


def _rescale(vals: list[Validator], diff_max: int) -> list[Validator]:
    if diff_max <= 0 or not vals:
        return vals
    prios = [v.priority for v in vals]
    diff = max(prios) - min(prios)
    if diff <= diff_max:
        return vals
    ratio = (diff + diff_max - 1) // diff_max
    return [
        Validator(v.public_key, v.power, _trunc_div(v.priority, ratio), v.address) for v in vals
    ]


def _center(vals: list[Validator]) -> list[Validator]:
    if not vals:
        return vals
    avg = sum(v.priority for v in vals) // len(vals)
    if avg == 0:
        return vals
    return [Validator(v.public_key, v.power, _clip(v.priority - avg), v.address) for v in vals]


def compute_genesis_sets(members: Iterable[tuple[bytes, int]]) -> tuple[ValidatorSet, ValidatorSet]:
    """(Validators, NextValidators) at genesis: NextValidators = one more increment."""
    vals = ValidatorSet.new(members)
    return vals, vals.increment_proposer_priority(1)


def compute_next_sets(
    next_validators: ValidatorSet, updates: Iterable[tuple[bytes, int]]
) -> tuple[ValidatorSet, ValidatorSet]:
    """After committing block H with ``updates``: (Validators for H+1, NextValidators for H+2).

    The updates from block H change the set that votes at H+2 (spec 1.7).
    """
    ups = list(updates)
    new = next_validators.with_updates(ups) if ups else next_validators
    return next_validators, new.increment_proposer_priority(1)
