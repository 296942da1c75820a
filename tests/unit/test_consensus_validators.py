"""Proposer priority (spec 1.6) against CometBFT's known sequences, and set updates (1.7)."""

from __future__ import annotations

import hashlib

import pytest

from alloranet.consensus.validators import (
    Validator,
    ValidatorSet,
    compute_genesis_sets,
    compute_next_sets,
    compute_validator_address,
)
from alloranet.errors import ValidationError


def key(i: int) -> bytes:
    return hashlib.sha256(b"k%d" % i).digest()


def named_set(members: list[tuple[str, int]]) -> ValidatorSet:
    """A set whose addresses are the given names, as in CometBFT's tests."""
    vals = [Validator(n.encode().ljust(32, b"\0"), p, 0, n.encode()) for n, p in members]
    return ValidatorSet._make(vals, None).increment_proposer_priority(1)


def sequence(s: ValidatorSet, n: int) -> list[str]:
    out = []
    for _ in range(n):
        out.append(s.get_proposer().rstrip(b"\0").decode())
        s = s.increment_proposer_priority(1)
    return out


def test_cometbft_proposer_selection1_sequence() -> None:
    # types/validator_set_test.go TestProposerSelection1 (foo 1000, bar 300, baz 330)
    expected = (
        "foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
        " foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
        " foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz"
        " foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo"
        " foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo"
    )
    s = named_set([("foo", 1000), ("bar", 300), ("baz", 330)])
    assert " ".join(sequence(s, 99)) == expected


def test_spec_sanity_sequence_p1_1_p2_3() -> None:
    s = named_set([("p1", 1), ("p2", 3)])
    assert sequence(s, 12) == ["p2", "p1", "p2", "p2"] * 3


def test_equal_power_ties_go_to_the_smaller_address() -> None:
    s = named_set([("c", 1), ("a", 1), ("b", 1)])
    assert sequence(s, 6) == ["a", "b", "c", "a", "b", "c"]


def test_round_r_proposer_is_the_set_incremented_r_times() -> None:
    vals, _ = compute_genesis_sets([(key(i), p) for i, p in enumerate((5, 3, 1, 1))])
    for r in range(1, 8):
        assert vals.get_proposer(r) == vals.increment_proposer_priority(r).proposer_key
    # rounds do not leak into the set itself
    assert vals.get_proposer(0) == vals.proposer_key


def test_new_validator_starts_at_minus_one_and_an_eighth_of_total() -> None:
    s = ValidatorSet.new([(key(1), 10), (key(2), 10)])
    s2 = s.with_updates([(key(3), 12)])
    total = 32
    pr = {v.public_key: v.priority for v in s2.validators}
    # before centering the joiner had -(P' + P'>>3); centering shifts everyone by the average
    raw = {
        key(1): s.validators[s._index[key(1)]].priority,
        key(2): s.validators[s._index[key(2)]].priority,
        key(3): -(total + (total >> 3)),
    }
    avg = sum(raw.values()) // 3
    assert pr == {k: v - avg for k, v in raw.items()}


def test_rescale_uses_truncating_division() -> None:
    vals = [
        Validator(key(1), 1, 1000, compute_validator_address(key(1))),
        Validator(key(2), 1, -1001, compute_validator_address(key(2))),
    ]
    s = ValidatorSet._make(vals, None)
    # diff 2001 > 2*P = 4 -> ratio ceil(2001/4) = 501; 1000/501 -> 1, -1001/501 -> -1 (not -2)
    out = s.increment_proposer_priority(1)
    prios = sorted(v.priority for v in out.validators)
    # after rescale (1, -1), center (avg 0), +power (2, 0), proposer -= 2 -> (0, 0)
    assert prios == [0, 0]


def test_updates_take_effect_at_h_plus_2() -> None:
    _vals1, next1 = compute_genesis_sets([(key(1), 5), (key(2), 5)])
    # block 1 carries an update adding key 3
    vals2, next2 = compute_next_sets(next1, [(key(3), 5)])
    assert key(3) not in vals2  # H+1: still the old set
    vals3, _ = compute_next_sets(next2, [])
    assert key(3) in vals3 and vals3.total_power == 15  # H+2: the new set votes


def test_removal_and_bad_updates() -> None:
    s = ValidatorSet.new([(key(1), 5), (key(2), 5)])
    assert key(2) not in s.with_updates([(key(2), 0)])
    with pytest.raises(ValidationError):
        s.with_updates([(key(3), 0)])  # removing an unknown validator
    with pytest.raises(ValidationError):
        s.with_updates([(key(1), -1)])
    with pytest.raises(ValidationError):
        s.with_updates([(key(1), 0), (key(2), 0)])  # empty set
    with pytest.raises(ValidationError):
        s.with_updates([(key(1), 1), (key(1), 2)])
    with pytest.raises(ValidationError):
        s.with_updates([(key(3), 2**62)])  # beyond MaxTotalVotingPower


def test_sorted_by_power_then_address_and_hash_ignores_priority() -> None:
    s = ValidatorSet.new([(key(1), 1), (key(2), 7), (key(3), 7)])
    powers = [v.power for v in s.validators]
    assert powers == [7, 7, 1]
    assert s.validators[0].address < s.validators[1].address
    assert s.compute_hash() == s.increment_proposer_priority(3).compute_hash()
