"""Downtime: missed blocks from the last commit, jail + slash over the limit, MsgUnjail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.app import (
    compute_total_supply,
    get_latest_validator_set,
    validate_block,
    validate_invariants,
)
from alloranet.chain.errors import (
    BlockError,
    InvalidMessageError,
    StakeError,
    UnauthorizedError,
)
from alloranet.chain.ledger import ledger_of
from alloranet.chain.liveness import compute_commit_signers, compute_max_missed
from alloranet.chain.msgs import MsgUnjail, msg_from_wire
from alloranet.chain.params import StakingParams
from alloranet.chain.testkit import TestChain
from alloranet.codec import encode
from alloranet.types import UALLO_PER_ALLO

VALIDATORS = ("val0", "val1", "val2")
WINDOW = 8
PARAMS = StakingParams(
    signed_blocks_window=WINDOW,
    min_signed_per_window_ppm=500_000,  # more than 4 misses of the last 8 jails
    downtime_jail_ms=5_000,
    slash_fraction_downtime_ppm=10_000,
    emission_per_block=100 * UALLO_PER_ALLO,
)


def _chain() -> TestChain:
    return TestChain.create(accounts=("alice",), validators=VALIDATORS, staking=PARAMS)


def _jailed(chain: TestChain, label: str) -> bool:
    validator = ledger_of(chain.state).get_validator(chain.signers[label].public_key)
    assert validator is not None
    return validator.jailed


def test_max_missed_follows_min_signed() -> None:
    assert compute_max_missed(100, 500_000) == 50
    assert compute_max_missed(8, 500_000) == 4
    assert compute_max_missed(10, 0) == 10  # never jails: at most 10 of 10 can be missed


def test_commit_parsing_rejects_malformed_or_foreign_commits() -> None:
    key = bytes(range(32))
    good = encode((4, 0, bytes(32), ((key, bytes(64)),)))
    assert compute_commit_signers(good, 5) == frozenset({key})
    assert compute_commit_signers(b"", 5) is None
    with pytest.raises(BlockError, match="height 4, expected 5"):
        compute_commit_signers(good, 6)
    with pytest.raises(BlockError, match="malformed"):
        compute_commit_signers(b"\x01\x02", 5)
    with pytest.raises(BlockError, match="malformed"):
        compute_commit_signers(encode((4, 0, bytes(32), ((b"short", bytes(64)),))), 5)


def test_a_block_with_a_bad_last_commit_is_invalid() -> None:
    from alloranet.chain.app import build_block

    chain = _chain()
    chain.block()
    block = build_block(
        chain.state, time_ms=chain.time_ms + 1000, proposer=chain.proposer, last_commit=b"\x01"
    )
    with pytest.raises(BlockError, match="last commit"):
        validate_block(chain.state, block.to_bytes())


def test_absent_validator_is_jailed_slashed_and_leaves_the_set() -> None:
    chain = _chain()
    key = chain.signers["val2"].public_key
    chain.block()  # height 1: no previous block, empty commit
    tokens = ledger_of(chain.state).get_validator(key).tokens  # type: ignore[union-attr]
    supply = compute_total_supply(chain.state)
    # val2 misses heights 1..5 (5 > 4 misses), but a window is only complete at height 8
    jailed_at = None
    blocks = 0
    for _ in range(10):
        blocks += 1
        result = chain.block(signers=("val0", "val1"))
        if ("jail_downtime", key.hex()) in result.events:
            jailed_at = result.height
            break
        assert not _jailed(chain, "val2")
    # block 9 carries the commit of height 8 = start (1) + window (8) - 1
    assert jailed_at == 9
    validator = ledger_of(chain.state).get_validator(key)
    assert validator is not None and validator.jailed and not validator.tombstoned
    assert validator.tokens == tokens - tokens // 100
    assert validator.jailed_until_ms == chain.time_ms + 5_000
    # burnt, not moved: the supply grew by the block emissions and shrank by the slash
    emitted = blocks * 100 * UALLO_PER_ALLO
    assert compute_total_supply(chain.state) == supply + emitted - tokens // 100
    assert key not in dict(get_latest_validator_set(chain.state))
    assert ledger_of(chain.state).get_signing_info(key) is None
    validate_invariants(chain.state)


def test_occasional_misses_within_the_limit_never_jail() -> None:
    chain = _chain()
    chain.block()
    for height in range(2, 40):
        present = ("val0", "val1", "val2") if height % 2 else ("val0", "val1")
        chain.block(signers=present)  # val2 misses every other block: 4 of 8, the limit
    assert not _jailed(chain, "val2")
    start, missed, _ = ledger_of(chain.state).get_signing_info(  # type: ignore[misc]
        chain.signers["val2"].public_key
    )
    assert start == 1 and missed == 4


def test_unjail_rules_and_a_fresh_window_after_return() -> None:
    chain = _chain()
    key = chain.signers["val2"].public_key
    chain.block()
    while not _jailed(chain, "val2"):
        chain.block(signers=("val0", "val1"))
    # too early, and not the operator
    early = chain.block(
        [chain.tx("val2", MsgUnjail(key)), chain.tx("alice", MsgUnjail(key))],
        signers=("val0", "val1", "val2"),
    )
    assert early.tx_results[0].code == StakeError.code and "jailed until" in early.tx_results[0].log
    assert early.tx_results[1].code == UnauthorizedError.code
    for _ in range(5):  # 5 s of block time pass
        chain.block(signers=("val0", "val1"))
    result = chain.block([chain.tx("val2", MsgUnjail(key))], signers=("val0", "val1"))
    assert result.tx_results[0].code == 0, result.tx_results[0].log
    assert not _jailed(chain, "val2")
    assert key in dict(get_latest_validator_set(chain.state))
    start, missed, _ = ledger_of(chain.state).get_signing_info(key)  # type: ignore[misc]
    assert start == result.height + 2 and missed == 0
    again = chain.block([chain.tx("val2", MsgUnjail(key))], signers=("val0", "val1"))
    assert again.tx_results[0].code == InvalidMessageError.code
    # it is in the set from height start; missing before then does not count
    for _ in range(3):
        chain.block(signers=("val0", "val1", "val2"))
    assert not _jailed(chain, "val2")
    validate_invariants(chain.state)


def test_unjail_message_roundtrip() -> None:
    msg = MsgUnjail(bytes(range(32)))
    assert msg_from_wire(msg.to_wire()) == msg


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_jailed_exactly_when_the_sliding_window_says_so(signed: list[bool]) -> None:
    """Reference: the misses among the last WINDOW heights since start, counted directly."""
    chain = _chain()
    chain.block()
    history: list[bool] = []  # history[i] = val2 signed height i + 1
    expected_jail = None
    for present in signed:
        signed_height = len(chain.results)
        history.append(present)
        recent = history[max(0, signed_height - WINDOW) :]
        missed = sum(1 for ok in recent if not ok)
        labels = ("val0", "val1", "val2") if present else ("val0", "val1")
        result = chain.block(signers=labels)
        jailed_now = ("jail_downtime", chain.signers["val2"].public_key.hex()) in result.events
        should = (
            not present and missed > compute_max_missed(WINDOW, 500_000) and signed_height >= WINDOW
        )
        assert jailed_now == should, (signed, signed_height)
        if should:
            expected_jail = signed_height
            break
    assert _jailed(chain, "val2") == (expected_jail is not None)


def test_default_params_tolerate_a_slow_validator_but_jail_a_dead_one() -> None:
    """Spec defaults (window 100, min signed 0.5): val3, missing from every other commit (a slow
    validator whose precommits often arrive after the commit was built), is never jailed; val2,
    absent from every commit for a window, is jailed when that window completes."""
    labels = ("val0", "val1", "val2", "val3")
    chain = TestChain.create(accounts=("alice",), validators=labels)
    params = StakingParams()
    window = params.signed_blocks_window
    assert params.min_signed_per_window_ppm == 500_000
    chain.block()
    jailed_at = None
    for height in range(2, window + 10):
        present = ["val0", "val1"] + (["val3"] if height % 2 == 0 else [])
        result = chain.block(signers=present)
        if ("jail_downtime", chain.signers["val2"].public_key.hex()) in result.events:
            jailed_at = height
    assert jailed_at == window + 1  # the commit of height `window` completes val2's window
    assert not _jailed(chain, "val3") and _jailed(chain, "val2")
