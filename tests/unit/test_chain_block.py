"""Blocks and genesis: header rules, body hashes, encoding, allocation and invariants."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.chain.app import (
    build_block,
    compute_total_supply,
    execute_block,
    get_balance,
    get_height,
    validate_block,
    validate_invariants,
)
from alloranet.chain.block import Block
from alloranet.chain.errors import BlockError, InvalidMessageError
from alloranet.chain.genesis import (
    Genesis,
    build_genesis_state,
    compute_allocation,
    compute_locked_vesting,
    validate_genesis,
)
from alloranet.chain.ledger import BONDED_POOL, ECOSYSTEM, FEE_COLLECTOR, REWARDS
from alloranet.chain.msgs import MsgSend
from alloranet.chain.params import EmissionsParams, StakingParams
from alloranet.chain.testkit import TestChain, make_genesis, topic_msg
from alloranet.codec import decode, encode
from alloranet.synthesis.emissions import MintParams, compute_monthly_emission
from alloranet.types import MAX_SUPPLY_UALLO, UALLO_PER_ALLO


def test_genesis_allocation_and_supply() -> None:
    allocation = compute_allocation()
    assert sum(allocation.values()) == MAX_SUPPLY_UALLO
    assert allocation["network_emissions"] == 214_500_000 * UALLO_PER_ALLO
    chain = TestChain.create()
    assert compute_total_supply(chain.state) == 785_500_000 * UALLO_PER_ALLO
    validate_invariants(chain.state)


def test_genesis_roundtrip_and_determinism() -> None:
    genesis, _ = make_genesis()
    again = Genesis.from_wire(decode(encode(genesis.to_wire())))
    assert again == genesis
    assert Genesis.from_bytes(genesis.to_bytes()) == genesis
    assert Genesis.from_bytes(genesis.to_bytes()).hash == genesis.hash
    with pytest.raises(InvalidMessageError):
        Genesis.from_bytes(genesis.to_bytes()[:-1])
    assert build_genesis_state(again).app_hash == build_genesis_state(genesis).app_hash


def test_genesis_rejections() -> None:
    genesis, _ = make_genesis()
    with pytest.raises(InvalidMessageError, match="twice"):
        validate_genesis(replace(genesis, accounts=genesis.accounts + genesis.accounts[:1]))
    with pytest.raises(InvalidMessageError, match="community"):
        validate_genesis(replace(genesis, accounts=((genesis.accounts[0][0], 10**27),)))
    with pytest.raises(InvalidMessageError, match="chain_id"):
        validate_genesis(replace(genesis, chain_id=""))


def test_vesting_schedule() -> None:
    month = 1000
    total = compute_locked_vesting(0, month)
    assert (
        total
        == compute_allocation()["early_supporters"] + compute_allocation()["core_contributors"]
    )
    assert compute_locked_vesting(12 * month - 1, month) == total
    assert compute_locked_vesting(12 * month, month) == total * 24 // 36
    assert compute_locked_vesting(36 * month, month) == 0


def test_fixed_emission_is_minted() -> None:
    chain = TestChain.create(staking=StakingParams(emission_per_block=100 * UALLO_PER_ALLO))
    supply = compute_total_supply(chain.state)
    operator = get_balance(chain.state, chain.address("val0"))
    chain.block()
    assert compute_total_supply(chain.state) == supply + 100 * UALLO_PER_ALLO
    assert get_balance(chain.state, REWARDS) == 75 * UALLO_PER_ALLO
    # the validators' 25 % went through the fee collector to the only validator's delegator
    assert get_balance(chain.state, FEE_COLLECTOR) == 0
    assert get_balance(chain.state, chain.address("val0")) == operator + 25 * UALLO_PER_ALLO
    validate_invariants(chain.state)


def test_emission_schedule_of_spec_6() -> None:
    month = 10
    chain = TestChain.create(emissions=EmissionsParams(blocks_per_month=month))
    supply = compute_total_supply(chain.state)
    operator = get_balance(chain.state, chain.address("val0"))
    staked = get_balance(chain.state, BONDED_POOL)
    cap = compute_allocation()["network_emissions"]
    params = MintParams(ecosystem_treasury_percent=cap / MAX_SUPPLY_UALLO, blocks_per_month=month)
    expected = compute_monthly_emission(1, staked, 0, 0, None, 0.3, params)
    chain.block()
    per_block = expected.per_block
    assert per_block > 0
    assert compute_total_supply(chain.state) == supply + per_block
    to_validators = per_block * 250_000 // 1_000_000
    assert get_balance(chain.state, chain.address("val0")) == operator + to_validators
    assert get_balance(chain.state, FEE_COLLECTOR) == 0
    # topic fees in the ecosystem account pay the next emissions before anything is minted
    chain.block([chain.tx("alice", topic_msg())])  # 75,000 uallo fee, far below per_block
    minted_before = compute_total_supply(chain.state)
    chain.block()
    assert compute_total_supply(chain.state) == minted_before + per_block - 75_000
    assert get_balance(chain.state, ECOSYSTEM) == 0
    # recomputed at the month boundary (height 11) with the smoothed rate as "previous"
    chain.advance_to(10)
    before = compute_total_supply(chain.state)
    chain.block()
    again = compute_monthly_emission(
        11,
        get_balance(chain.state, BONDED_POOL),
        0,
        cap_minted(chain),
        expected.smoothed_rate,
        0.3,
        params,
    )
    assert compute_total_supply(chain.state) - before == again.per_block
    validate_invariants(chain.state)


def cap_minted(chain: TestChain) -> int:
    """``minted`` as the chain saw it when recomputing, i.e. before the last block's mint."""
    from alloranet.chain.kv import Overlay
    from alloranet.chain.ledger import Ledger

    minted: int = Ledger(Overlay(chain.results[-2].state)).get_meta("minted")
    return minted


def test_emission_stops_at_the_cap() -> None:
    from alloranet.chain.kv import Overlay
    from alloranet.chain.ledger import Ledger

    chain = TestChain.create(staking=StakingParams(emission_per_block=10**27))
    chain.block()
    chain.block()
    cap = compute_allocation()["network_emissions"]
    assert Ledger(Overlay(chain.state)).get_meta("minted") == cap
    assert compute_total_supply(chain.state) == MAX_SUPPLY_UALLO
    validate_invariants(chain.state)


def test_block_roundtrip_and_hash() -> None:
    chain = TestChain.create()
    raw = chain.build([chain.tx("alice", MsgSend(chain.address("bob"), 1))])
    block = Block.from_bytes(raw)
    assert block.to_bytes() == raw
    assert validate_block(chain.state, raw) == block


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_block_byte_flip_rejected_or_rehashed(data: st.DataObject) -> None:
    chain = TestChain.create(accounts=("alice", "bob"))
    raw = chain.build([chain.tx("alice", MsgSend(chain.address("bob"), 1))])
    index = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    mutated = raw[:index] + bytes([byte]) + raw[index + 1 :]
    try:
        block = validate_block(chain.state, mutated)
    except BlockError:
        return
    # only the last commit is free-form; any accepted change must change the block hash
    assert block.hash != Block.from_bytes(raw).hash


def test_header_rules() -> None:
    chain = TestChain.create()
    good = Block.from_bytes(chain.build())
    h = good.header

    def check(header, match: str) -> None:  # type: ignore[no-untyped-def]
        block = replace(good, header=header)
        with pytest.raises(BlockError, match=match):
            validate_block(chain.state, block.to_bytes())
        with pytest.raises(BlockError, match=match):
            execute_block(chain.state, block)

    check(replace(h, height=2), "height")
    check(replace(h, time_ms=chain.genesis.time_ms), "time")
    check(replace(h, prev_block_hash=b"\x01" * 32), "previous block hash")
    check(replace(h, app_hash=b"\x00" * 32), "app hash")
    check(replace(h, proposer=b"\x07" * 32), "proposer")
    check(replace(h, chain_id="other"), "chain")
    check(replace(h, txs_hash=b"\x00" * 32), "txs_hash")
    with pytest.raises(BlockError, match="malformed"):
        validate_block(chain.state, b"\x00garbage")


def test_chain_of_blocks_links() -> None:
    chain = TestChain.create()
    first = chain.block()
    second = Block.from_bytes(chain.build())
    assert second.header.prev_block_hash == first.block_hash
    assert second.header.app_hash == first.app_hash
    assert get_height(chain.state) == 1


def test_build_block_is_deterministic() -> None:
    chain = TestChain.create()
    txs = [chain.tx("alice", MsgSend(chain.address("bob"), 1))]
    a = build_block(chain.state, time_ms=5 + chain.time_ms, proposer=chain.proposer, txs=txs)
    b = build_block(chain.state, time_ms=5 + chain.time_ms, proposer=chain.proposer, txs=txs)
    assert a.to_bytes() == b.to_bytes()
    r1 = execute_block(chain.state, a)
    r2 = execute_block(chain.state, b.to_bytes())
    assert r1.app_hash == r2.app_hash and r1.changes == r2.changes
